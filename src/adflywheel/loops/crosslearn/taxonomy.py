"""The niche taxonomy cross-account learning pools within (documented in docs/cross-account.md).

Each niche is described by the words its advertisers use: a short description, keywords, and the
platform categories (Meta's page categories) that map to it. The detector turns each niche's
description into a TF-IDF centroid; nothing here is learned from any account's data, so the
taxonomy can be read, reviewed and extended by hand. The first six are the simulated market's
niches (``sim/market/config.py``); the rest cover common verticals outside it.
"""

from __future__ import annotations

from dataclasses import dataclass


def words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


@dataclass(frozen=True, slots=True)
class NicheSpec:
    key: str
    label: str
    description: str
    keywords: tuple[str, ...]
    categories: tuple[str, ...] = ()

    def document(self) -> str:
        """The niche's text for the TF-IDF centroid: label, description, keywords, categories."""
        return " ".join((self.label, self.description, *self.keywords, *self.categories))


TAXONOMY: tuple[NicheSpec, ...] = (
    NicheSpec(
        "beauty",
        "Beauty and personal care",
        "Skincare, make-up, cosmetics, hair and personal care products for face and body.",
        words(
            "skin skincare serum face cream moisturiser moisturizer cleanser make-up makeup "
            "glowing complexion breakouts sunscreen facials lines hydrate cosmetic beauty "
            "lipstick hair shampoo"
        ),
        ("Beauty, cosmetic & personal care", "Cosmetics store", "Beauty salon", "Skin care"),
    ),
    NicheSpec(
        "fitness",
        "Sports and fitness",
        "Workouts, training plans, gyms, running, supplements and fitness equipment.",
        words(
            "workout training gym muscle protein shake run runners 5k fat belly core stamina "
            "strength crunches warm-up cardio lifter resistance band plateau fitness stronger "
            "leaner"
        ),
        ("Sports & fitness", "Gym/physical fitness centre", "Sports & recreation"),
    ),
    NicheSpec(
        "finance",
        "Financial services",
        "Banking, savings, credit, budgeting, investing and personal-finance apps.",
        words(
            "savings account debt credit card score budgeting budget investing investor "
            "paycheck fees bank bills nest egg financial advisor cash money loan mortgage "
            "saved"
        ),
        ("Financial service", "Bank", "Insurance company", "Investing service"),
    ),
    NicheSpec(
        "ecommerce_fashion",
        "Fashion and apparel e-commerce",
        "Clothing, shoes and accessories sold online: style, fit and wardrobe.",
        words(
            "jeans denim dress shirt linen wardrobe closet style fashion fit wear clothes "
            "capsule sneakerhead stylist fabrics outfit shoes apparel"
        ),
        ("Clothing store", "Clothing (brand)", "Shoe store", "Fashion designer"),
    ),
    NicheSpec(
        "saas",
        "Software and SaaS",
        "Business software: CRM, project management, reporting, automation and productivity.",
        words(
            "software dashboard crm project tool reports reporting automate spreadsheets "
            "deadlines pipeline deals sales teams productivity founders marketers admin "
            "analyst code meetings ship launch app platform"
        ),
        ("Software company", "Software", "App page", "Internet company"),
    ),
    NicheSpec(
        "food",
        "Food and beverage",
        "Meal kits, groceries, restaurants, coffee, snacks and cooking.",
        words(
            "dinner meal kit cook cooking recipe takeout prep coffee blend sauce pasta "
            "foodies kitchen restaurant fridge fresh food healthier eat culinary snack order"
        ),
        ("Food & beverage", "Restaurant", "Grocery store", "Coffee shop"),
    ),
    NicheSpec(
        "travel",
        "Travel and hospitality",
        "Flights, hotels, holidays, tours and travel booking.",
        words(
            "travel trip flight flights hotel holiday vacation tour booking beach destination "
            "luggage resort getaway"
        ),
        ("Travel company", "Hotel", "Airline company", "Tour agency"),
    ),
    NicheSpec(
        "education",
        "Education and courses",
        "Online courses, tutoring, languages, certificates and learning apps.",
        words(
            "course courses learn learning class lesson tutor students language certificate "
            "skills exam study teacher"
        ),
        ("Education", "Education website", "School", "Tutor/teacher"),
    ),
    NicheSpec(
        "gaming",
        "Games and entertainment apps",
        "Mobile and PC games, streaming and entertainment apps.",
        words(
            "game games play player level levels puzzle quest install free-to-play stream "
            "streaming rpg battle"
        ),
        ("Video game", "Games/toys", "Entertainment website"),
    ),
    NicheSpec(
        "home",
        "Home and garden",
        "Furniture, decor, bedding, cleaning, appliances and garden products.",
        words(
            "home sofa furniture decor mattress sleep bedding garden cleaning vacuum "
            "kitchenware lamp rug appliance"
        ),
        ("Home decor", "Furniture store", "Home improvement", "Garden centre"),
    ),
    NicheSpec(
        "pets",
        "Pets",
        "Pet food, toys, grooming, vets and accessories for dogs and cats.",
        words("dog dogs cat cats pet pets puppy kitten treats vet grooming leash litter kibble"),
        ("Pet supplies", "Pet service", "Veterinarian"),
    ),
    NicheSpec(
        "health",
        "Health and wellness",
        "Supplements, sleep, mental health, telehealth and wellness products.",
        words(
            "health wellness supplement vitamins sleep stress anxiety therapy doctor "
            "telehealth gut immune mindfulness pain"
        ),
        ("Health/beauty", "Medical & health", "Doctor", "Mental health service"),
    ),
)
NICHE_KEYS: tuple[str, ...] = tuple(spec.key for spec in TAXONOMY)
BY_KEY: dict[str, NicheSpec] = {spec.key: spec for spec in TAXONOMY}
