"""Ad copy for the simulated market's variants (synthetic data).

The opening line of each ad's primary text is written from a template of its true hook type and
its niche's vocabulary, so a text-based hook classifier and niche placement have real signal to
find, with enough template variety that it is not a lookup.
"""

from __future__ import annotations

import random
import re

from adflywheel.core.domain import Creative

_HOOK_TEMPLATES: dict[str, tuple[str, ...]] = {
    "question": (
        "Still struggling with {pain}?",
        "What if you could {goal} in {timeframe}?",
        "Why do so many {audience} get {topic} wrong?",
        "Ever wondered why your {topic} never works?",
    ),
    "curiosity_gap": (
        "The one {topic} secret nobody talks about.",
        "Here's what {audience} don't want you to know...",
        "This little {topic} trick changed everything.",
        "I can't believe nobody told me this about {topic}.",
    ),
    "bold_claim": (
        "This {product} will {benefit} in {timeframe}.",
        "The best {product} you'll ever try. Period.",
        "Guaranteed: {benefit} or your money back.",
    ),
    "statistic": (
        "{pct}% of {audience} {stat_fact}.",
        "{digit} out of 10 {audience} see results in {timeframe}.",
        "Only {pct}% of people know this about {topic}.",
    ),
    "negative_warning": (
        "Stop {bad_habit} right now.",
        "Don't buy another {product} until you see this.",
        "The biggest {topic} mistake you're making.",
        "Warning: {bad_habit} is costing you more than you think.",
    ),
    "problem_solution": (
        "Tired of {pain}? Meet {brand}.",
        "If {pain} is holding you back, here's the fix.",
        "No more {pain}. {brand} fixes it.",
    ),
    "testimonial_ugc": (
        "I was skeptical, but {brand} actually worked for me.",
        "Honest review: I tried {brand} for {timeframe}.",
        "My friend made me try {brand} and wow.",
    ),
    "social_proof": (
        "Join {big_count} {audience} who switched to {brand}.",
        "Rated 4.8 stars by {big_count} customers.",
        "Why {big_count} people already trust {brand}.",
    ),
    "before_after": (
        "Before: {pain}. After: {after}.",
        "Me {timeframe} ago vs. me today.",
        "Day 1 vs. day 30 with {brand}.",
    ),
    "offer_urgency": (
        "Last chance: {pct_off}% off every {product} ends tonight.",
        "Today only: free shipping on your first {product}.",
        "Hurry, only a few left. {pct_off}% off while stocks last.",
    ),
    "how_to_list": (
        "{digit} ways to {goal} without {sacrifice}.",
        "How to {goal} in {timeframe}: a quick guide.",
        "{digit} steps to {goal}, explained in 30 seconds.",
    ),
    "pattern_interrupt": (
        "Wait. Don't scroll past this.",
        "Okay, this is weird, but it works.",
        "POV: you just found the {product} you needed.",
    ),
    "direct_address": (
        "If you're a {persona}, this is for you.",
        "Hey {persona}, listen up.",
        "Calling every {persona}: you need to see this.",
    ),
}

# Per niche: slot vocabulary, headline benefit, call to action and declared category label.
_NICHE_WORDS: dict[str, dict[str, tuple[str, ...]]] = {
    "beauty": {
        "pain": ("dry, flaky skin", "dull skin", "breakouts that won't quit"),
        "goal": ("get glowing skin", "clear up your skin", "look less tired"),
        "audience": ("women over 30", "skincare lovers", "busy moms"),
        "topic": ("skincare", "make-up", "moisturiser"),
        "product": ("serum", "face cream", "cleanser"),
        "benefit": ("clear your skin", "hydrate your face", "smooth fine lines"),
        "bad_habit": ("over-washing your face", "skipping sunscreen", "sleeping in make-up"),
        "stat_fact": ("use the wrong moisturiser", "skip sunscreen in winter"),
        "after": ("soft, glowing skin", "a clear complexion"),
        "sacrifice": ("a 10-step routine", "expensive facials"),
        "persona": ("skincare lover", "make-up artist", "mom on the go"),
    },
    "fitness": {
        "pain": ("back pain", "no time for the gym", "a stubborn plateau"),
        "goal": ("build muscle", "lose belly fat", "run your first 5k"),
        "audience": ("gym-goers", "runners", "people over 40"),
        "topic": ("training", "workout", "protein"),
        "product": ("resistance band", "protein shake", "training plan"),
        "benefit": ("double your strength", "tone your core", "boost your stamina"),
        "bad_habit": ("skipping your warm-up", "doing endless crunches", "training to failure"),
        "stat_fact": ("quit their workout plan by February", "never stretch"),
        "after": ("stronger and leaner", "pain-free mornings"),
        "sacrifice": ("a gym membership", "hours of cardio"),
        "persona": ("runner", "lifter", "home-workout fan"),
    },
    "finance": {
        "pain": ("credit card debt", "living paycheck to paycheck", "surprise fees"),
        "goal": ("save your first $10k", "pay off debt", "start investing"),
        "audience": ("Americans", "young professionals", "freelancers"),
        "topic": ("budgeting", "investing", "credit score"),
        "product": ("savings account", "budgeting app", "credit card"),
        "benefit": ("grow your savings", "raise your credit score", "cut your bills"),
        "bad_habit": ("paying bank fees", "ignoring your credit score", "leaving cash idle"),
        "stat_fact": ("have less than $1,000 saved", "overpay on fees every year"),
        "after": ("debt-free and saving", "a growing nest egg"),
        "sacrifice": ("a financial advisor", "giving up coffee"),
        "persona": ("freelancer", "first-time investor", "small business owner"),
    },
    "ecommerce_fashion": {
        "pain": ("jeans that never fit", "a closet full of nothing to wear", "itchy fabrics"),
        "goal": ("build a capsule wardrobe", "find jeans that fit", "dress better"),
        "audience": ("shoppers", "fashion lovers", "men"),
        "topic": ("style", "wardrobe", "denim"),
        "product": ("dress", "pair of jeans", "linen shirt"),
        "benefit": ("upgrade your wardrobe", "fit like it was made for you", "last for years"),
        "bad_habit": ("buying fast fashion", "ignoring the fit", "washing denim weekly"),
        "stat_fact": ("wear only 20% of their closet", "return clothes that don't fit"),
        "after": ("a closet I love", "the perfect fit"),
        "sacrifice": ("spending a fortune", "a personal stylist"),
        "persona": ("minimalist", "sneakerhead", "office worker"),
    },
    "saas": {
        "pain": ("endless spreadsheets", "missed deadlines", "manual reporting"),
        "goal": ("automate your reports", "close more deals", "ship projects on time"),
        "audience": ("marketers", "founders", "sales teams"),
        "topic": ("productivity", "CRM", "project management"),
        "product": ("dashboard", "CRM", "project tool"),
        "benefit": ("save you 10 hours a week", "double your pipeline", "end status meetings"),
        "bad_habit": ("tracking work in spreadsheets", "copy-pasting reports", "chasing updates"),
        "stat_fact": ("waste a day a week on admin", "still report by hand"),
        "after": ("reports that write themselves", "a calm, on-time launch"),
        "sacrifice": ("hiring an analyst", "writing code"),
        "persona": ("founder", "marketer", "team lead"),
    },
    "food": {
        "pain": ("boring weeknight dinners", "takeout every night", "meal-prep burnout"),
        "goal": ("cook dinner in 15 minutes", "eat healthier", "meal-prep for the week"),
        "audience": ("home cooks", "busy families", "foodies"),
        "topic": ("cooking", "meal prep", "coffee"),
        "product": ("meal kit", "hot sauce", "coffee blend"),
        "benefit": ("make dinner effortless", "taste like a restaurant", "save you an hour"),
        "bad_habit": ("ordering takeout", "overcooking pasta", "buying stale coffee"),
        "stat_fact": ("eat the same 5 meals", "throw away food every week"),
        "after": ("dinner on the table in 15", "a fridge full of fresh food"),
        "sacrifice": ("a culinary degree", "hours in the kitchen"),
        "persona": ("home cook", "coffee lover", "busy parent"),
    },
}
_CTA = {
    "beauty": "Shop Now",
    "fitness": "Sign Up",
    "finance": "Learn More",
    "ecommerce_fashion": "Shop Now",
    "saas": "Sign Up",
    "food": "Order Now",
}
CATEGORY_LABELS = {
    "beauty": "Beauty, cosmetic & personal care",
    "fitness": "Sports & fitness",
    "finance": "Financial service",
    "ecommerce_fashion": "Clothing store",
    "saas": "Software company",
    "food": "Food & beverage",
}
GENERIC_CATEGORIES = ("Shopping & retail", "Local business", "Brand")

_COMMON_WORDS: dict[str, tuple[str, ...]] = {
    "timeframe": ("7 days", "2 weeks", "30 days", "a month"),
    "pct": ("37", "62", "68", "73", "81", "9"),
    "digit": ("3", "5", "7"),
    "big_count": ("10,000", "40,000", "250,000", "1 million"),
    "pct_off": ("20", "30", "40", "50"),
}
_SLOT = re.compile(r"{(\w+)}")

_BRAND_HEADS = ("Glow", "Peak", "Nova", "True", "Bold", "Fresh", "Pure", "Bright", "Urban", "Zen")
_BRAND_TAILS = ("Lab", "Co", "ly", "Works", "Hub", "Nest", "Fit", "Wise", "Kind", "Box")


def brand_name(rng: random.Random) -> str:
    return rng.choice(_BRAND_HEADS) + rng.choice(_BRAND_TAILS)


def opening_line(hook: str, niche: str, brand: str, rng: random.Random) -> str:
    """One opening line of ``hook`` type in ``niche``'s words."""
    words = _NICHE_WORDS[niche]
    template = rng.choice(_HOOK_TEMPLATES[hook])
    slots: dict[str, str] = {"brand": brand}
    for name in _SLOT.findall(template):
        if name in slots:
            continue
        slots[name] = rng.choice(words.get(name) or _COMMON_WORDS[name])
    line = template.format(**slots)
    return line[0].upper() + line[1:]


def make_creative(hook: str, niche: str, brand: str, rng: random.Random) -> Creative:
    """A creative whose primary text opens with a ``hook`` line; the headline is hook-neutral."""
    words = _NICHE_WORDS[niche]
    first = opening_line(hook, niche, brand, rng)
    body = f"The {brand} {rng.choice(words['product'])} helps you {rng.choice(words['goal'])}."
    benefit = rng.choice(words["benefit"])
    return Creative(
        headline=f"{brand}: {benefit[0].upper()}{benefit[1:]}",
        primary_text=f"{first}\n{body}",
        description=f"{brand}. Made for {rng.choice(words['audience'])}.",
        call_to_action=_CTA[niche],
        video_uri=None,
    )
