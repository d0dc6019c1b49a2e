"""The niche taxonomy cross-account learning pools within (documented in docs/cross-account.md).

Each niche is described by the words its advertisers use: a short description, keywords, and the
platform categories (Meta's page categories) that map to it. The detector turns each niche's
description into a TF-IDF centroid; nothing here is learned from any account's data, so the
taxonomy can be read, reviewed and extended by hand. The first six are the simulated market's
niches (``sim/market/config.py``; ``ecommerce_fashion`` is apparel); the rest cover common verticals
outside it. ``tests/fixtures/niche_texts.json`` is a labelled set of ad texts to check changes on.
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
            "lipstick hair shampoo conditioner frizz curls foundation concealer mascara lashes "
            "brows eyeliner eyeshadow blush nail nails polish manicure retinol collagen "
            "wrinkles anti-aging fragrance perfume salon dermatologist vegan-beauty glow"
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
            "leaner dumbbells dumbbell weights kettlebell barbell squat deadlift hiit spin "
            "boxing pilates yoga classes personal trainer marathon pace athletes whey recovery "
            "reps sweat treadmill"
        ),
        ("Sports & fitness", "Gym/physical fitness centre", "Sports & recreation"),
    ),
    NicheSpec(
        "finance",
        "Financial services",
        "Banking, savings, credit, budgeting, investing and personal-finance apps.",
        words(
            "savings account debt credit card score budgeting budget investing investor "
            "paycheck fees bank bills nest egg financial advisor cash money loan loans mortgage "
            "saved refinance interest rate apr cashback stocks etfs crypto trading portfolio "
            "retirement pension insurance quotes premiums approved payments tax taxes"
        ),
        ("Financial service", "Bank", "Insurance company", "Investing service"),
    ),
    NicheSpec(
        "ecommerce_fashion",
        "Fashion and apparel e-commerce",
        "Clothing, shoes and accessories sold online: style, fit and wardrobe.",
        words(
            "jeans denim dress shirt linen wardrobe closet style fashion fit wear clothes "
            "capsule sneakerhead stylist fabrics outfit shoes apparel jacket jackets coat "
            "coats hoodie sweater sweaters knitwear t-shirt shirts tee tees cotton wool merino "
            "leather boots sneakers trainers heels sandals leggings activewear sizes size xs "
            "xxl collection trousers pants skirt blouse socks underwear swimwear handbag "
            "jewellery jewelry sunglasses"
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
            "analyst code meetings ship launch app platform saas cloud backup file sharing "
            "invoicing payroll accounting businesses business trial integrations api workflow "
            "schedule scheduling posts engagement analytics reps emails collaboration "
            "security"
        ),
        ("Software company", "Software", "App page", "Internet company"),
    ),
    NicheSpec(
        "food",
        "Food and beverage",
        "Meal kits, groceries, restaurants, coffee, snacks and cooking.",
        words(
            "dinner meal kit cook cooking recipe takeout prep coffee blend sauce pasta "
            "foodies restaurant fresh food healthier eat culinary snack snacks pizza burger "
            "burgers plant-based grocery groceries delivery bread sourdough bakery pastries "
            "baked beans roasted roast single-origin tea wine beer drinks chocolate cheese "
            "nuts fruit organic vegan tasty delicious taste craving lunch breakfast bars"
        ),
        ("Food & beverage", "Restaurant", "Grocery store", "Coffee shop"),
    ),
    NicheSpec(
        "travel",
        "Travel and hospitality",
        "Flights, hotels, holidays, tours and travel booking.",
        words(
            "travel trip flight flights hotel holiday vacation tour booking beach destination "
            "luggage resort resorts getaway all-inclusive cruise islands camper explore "
            "national parks sightseeing airport airfare book-your-stay stay nights "
            "cancellation boutique city-break abroad passport adventure backpacking"
        ),
        ("Travel company", "Hotel", "Airline company", "Tour agency"),
    ),
    NicheSpec(
        "education",
        "Education and courses",
        "Online courses, tutoring, languages, certificates and learning apps.",
        words(
            "course courses learn learning class lesson tutor students language certificate "
            "skills exam study teacher tutoring maths math bootcamp career degree mba "
            "university college accredited online-course classes lessons kids coding "
            "curriculum spanish french english gcse a-level graduate diploma students"
        ),
        ("Education", "Education website", "School", "Tutor/teacher"),
    ),
    NicheSpec(
        "gaming",
        "Games and entertainment apps",
        "Mobile and PC games, streaming and entertainment apps.",
        words(
            "game games play player level levels puzzle quest install free-to-play stream "
            "streaming rpg battle gamer gamers gaming console pc playstation xbox nintendo "
            "open-world royale clans kingdom conquer army multiplayer pre-order download "
            "addictive esports controller keyboard rgb mouse"
        ),
        ("Video game", "Games/toys", "Entertainment website"),
    ),
    NicheSpec(
        "home",
        "Home and garden",
        "Furniture, decor, bedding, cleaning, appliances and garden products.",
        words(
            "home sofa furniture decor mattress sleep bedding garden cleaning vacuum "
            "kitchenware lamp rug appliance appliances coffee maker espresso machine blender "
            "toaster kettle air fryer cookware pans pots kitchen sofa bed bedroom curtains "
            "linen pillows duvet robot floors rooms living-room planters beds gardening "
            "tomatoes diy tools renovation interior candle candles storage"
        ),
        ("Home decor", "Furniture store", "Home improvement", "Garden centre"),
    ),
    NicheSpec(
        "pets",
        "Pets",
        "Pet food, toys, grooming, vets and accessories for dogs and cats.",
        words(
            "dog dogs cat cats pet pets puppy puppies kitten kittens treats vet vets grooming "
            "leash litter kibble flea fleas tick chew toys furry paws collar aquarium fish "
            "bird human-grade"
        ),
        ("Pet supplies", "Pet service", "Veterinarian"),
    ),
    NicheSpec(
        "health",
        "Health and wellness",
        "Supplements, sleep, mental health, telehealth and wellness products.",
        words(
            "health wellness supplement vitamins sleep stress anxiety therapy doctor "
            "telehealth gut immune mindfulness pain therapist licensed online-doctor "
            "appointment prescription pharmacy probiotics digestion magnesium melatonin "
            "gummies hearing aids test dental teeth eye glasses contact lenses clinic "
            "symptoms medical care nurse health-insurance"
        ),
        ("Health/beauty", "Medical & health", "Doctor", "Mental health service"),
    ),
    NicheSpec(
        "auto",
        "Automotive",
        "Cars, electric vehicles, dealerships, car buying and selling, parts, tyres and repairs.",
        words(
            "car cars vehicle vehicles suv sedan truck hybrid electric ev dealership dealer "
            "test drive lease tyres tires wheels brakes oil change mechanic garage repair "
            "parts dash cam mounts seat covers motor motorbike charging mileage trade-in"
        ),
        ("Automotive", "Car dealership", "Automotive repair shop", "Motor vehicle company"),
    ),
)
NICHE_KEYS: tuple[str, ...] = tuple(spec.key for spec in TAXONOMY)
BY_KEY: dict[str, NicheSpec] = {spec.key: spec for spec in TAXONOMY}
