"""Hook taxonomy: every rule on examples, the labelled opening lines, the simulator's lines.

``LABELLED`` (written for this project, the rules were tuned on it) and ``HELDOUT`` (written
after the rules were frozen, never tuned on) are imported by benchmarks/bench_dna.py too.
"""

from __future__ import annotations

import random

import pytest

from adflywheel.loops.dna.taxonomy import (
    HOOK_TYPES,
    OTHER,
    RULES,
    classify,
    classify_text,
    opening_line,
)
from adflywheel.platforms.simulated.config import NICHES
from adflywheel.platforms.simulated.texts import opening_line as sim_opening_line

LABELLED: tuple[tuple[str, str], ...] = (
    ("Is your shampoo secretly drying out your scalp?", "question"),
    ("Do you wake up tired even after eight hours of sleep?", "question"),
    ("What would you do with an extra hour every day?", "question"),
    ("Why does everyone's coffee taste better than yours?", "question"),
    ("Ever tried cooking pasta in a frying pan?", "question"),
    ("Are you still paying full price for printer ink?", "question"),
    ("Which one would you pick: red or blue?", "question"),
    ("Can a $20 blender really crush ice?", "question"),
    ("Did you know your mattress could be the reason your back hurts?", "question"),
    ("How much are you really spending on subscriptions?", "question"),
    ("The secret ingredient chefs never put on the menu.", "curiosity_gap"),
    ("Nobody talks about this part of running a marathon.", "curiosity_gap"),
    ("This tiny kitchen hack saves me 20 minutes a night.", "curiosity_gap"),
    ("Here's what your dentist won't tell you.", "curiosity_gap"),
    ("You won't believe what we found inside this old sofa.", "curiosity_gap"),
    ("The one habit that quietly doubled my savings.", "curiosity_gap"),
    ("Banks don't want you to know about this account.", "curiosity_gap"),
    ("There's a reason hotel pillows feel different. Here's why.", "curiosity_gap"),
    ("A little-known trick for wrinkle-free shirts.", "curiosity_gap"),
    ("The most comfortable shoe ever made. Period.", "bold_claim"),
    ("This cream will erase dark circles in 14 days.", "bold_claim"),
    ("The only budgeting app you'll ever need.", "bold_claim"),
    ("Our blender is the best blender on the market.", "bold_claim"),
    ("Guaranteed to fit, or we pay the return shipping.", "bold_claim"),
    ("This is a total game-changer for tiny apartments.", "bold_claim"),
    ("The #1 rated standing desk for home offices.", "bold_claim"),
    ("Softer skin in just 7 days, or your money back.", "bold_claim"),
    ("This app will pay for itself in a week.", "bold_claim"),
    ("87% of drivers overpay for car insurance.", "statistic"),
    ("9 out of 10 dentists recommend flossing daily.", "statistic"),
    ("Only 3% of startups reach a million in revenue.", "statistic"),
    ("1 in 4 adults has high blood pressure and doesn't know it.", "statistic"),
    ("Americans throw away 30 percent of the food they buy.", "statistic"),
    ("64% of shoppers read reviews before they buy.", "statistic"),
    ("Half of all gym memberships go unused after 3 months: 52% to be exact.", "statistic"),
    ("2 out of 3 homes have the wrong air filter.", "statistic"),
    ("Sleep under 6 hours and your risk goes up 48%.", "statistic"),
    ("Stop washing your face with hot water.", "negative_warning"),
    ("Don't sign a lease before you read this.", "negative_warning"),
    ("Never pay for a gym you don't use again.", "negative_warning"),
    ("Warning: your phone charger might be damaging your battery.", "negative_warning"),
    ("The worst mistake new dog owners make.", "negative_warning"),
    ("Avoid these foods if you want better sleep.", "negative_warning"),
    ("You're ruining your cast iron pan and you don't even know it.", "negative_warning"),
    ("Quit buying bottled water.", "negative_warning"),
    ("This common habit is killing your houseplants.", "negative_warning"),
    ("Tired of tangled cables on your desk? Meet CordKeeper.", "problem_solution"),
    ("Sick of soggy salads by lunchtime? Try our glass jars.", "problem_solution"),
    ("No more cold coffee. This mug keeps it hot for hours.", "problem_solution"),
    ("Fed up with slow Wi-Fi upstairs? Here's the fix.", "problem_solution"),
    ("Back pain from your office chair? Introducing the Posture Pad.", "problem_solution"),
    ("If clutter is holding you back, here's a simple solution.", "problem_solution"),
    ("Done with itchy wool sweaters? Say hello to merino blends.", "problem_solution"),
    ("Squeaky doors driving you mad? One spray fixes it.", "problem_solution"),
    ("Always losing your keys? Meet the tag that finds them.", "problem_solution"),
    ("I tried this viral mop so you don't have to.", "testimonial_ugc"),
    ("Honest review after using this vacuum for a month.", "testimonial_ugc"),
    ("I was skeptical about meal kits, but this one won me over.", "testimonial_ugc"),
    ("My sister made me buy this serum and now I'm obsessed.", "testimonial_ugc"),
    ("Not sponsored: the only water bottle I actually use.", "testimonial_ugc"),
    ("I switched to this bank and my fees disappeared.", "testimonial_ugc"),
    ("Storytime: how I found a dress for my sister's wedding.", "testimonial_ugc"),
    ("This planner finally worked for me after years of trying.", "testimonial_ugc"),
    ("I bought the cheapest robot vacuum on the site and here's my verdict.", "testimonial_ugc"),
    ("Over 2 million people sleep on this pillow.", "social_proof"),
    ("Join 50,000 runners who train with our app.", "social_proof"),
    ("Rated 4.9 stars by parents everywhere.", "social_proof"),
    ("Trusted by 12,000 small businesses.", "social_proof"),
    ("The best-seller that sold out three times this year.", "social_proof"),
    ("As seen on Shark Tank: the lunch box everyone's talking about.", "social_proof"),
    ("More than 300k happy customers can't be wrong.", "social_proof"),
    ("Thousands of five-star reviews and counting.", "social_proof"),
    ("Loved by 80,000 home cooks.", "social_proof"),
    ("Before and after one week with our grout cleaner.", "before_after"),
    ("Day 1 vs day 60 of learning guitar with us.", "before_after"),
    ("My garden last spring vs. my garden now.", "before_after"),
    ("Me a year ago versus me today.", "before_after"),
    ("Watch this kitchen's transformation in 30 seconds.", "before_after"),
    ("Before: piles of paper. After: a clean, calm desk.", "before_after"),
    ("Then vs now: what switching to solar did to our bill.", "before_after"),
    ("My skin 3 months ago vs today.", "before_after"),
    ("40% off everything, this weekend only.", "offer_urgency"),
    ("Last chance to get your free gift with any order.", "offer_urgency"),
    ("Flash sale: two pairs for the price of one.", "offer_urgency"),
    ("Free shipping ends at midnight.", "offer_urgency"),
    ("Hurry, our summer collection is almost gone.", "offer_urgency"),
    ("Use code SPRING for $15 off your first box.", "offer_urgency"),
    ("Black Friday starts now: up to 70% off.", "offer_urgency"),
    ("Limited time: get the starter kit for $9.", "offer_urgency"),
    ("Buy one, get one free on all candles today.", "offer_urgency"),
    ("How to fold a fitted sheet in under a minute.", "how_to_list"),
    ("5 ways to make your paycheck last longer.", "how_to_list"),
    ("3 stretches that undo a day at your desk.", "how_to_list"),
    ("Seven habits of people who never run late.", "how_to_list"),
    ("A step-by-step guide to your first sourdough loaf.", "how_to_list"),
    ("How I meal-prep a week of lunches for under $30.", "how_to_list"),
    ("4 tips for taking better photos on your phone.", "how_to_list"),
    ("Setting up a budget, explained in 60 seconds.", "how_to_list"),
    ("10 things to pack for your first camping trip.", "how_to_list"),
    ("Wait, don't scroll yet.", "pattern_interrupt"),
    ("Stop scrolling. This takes ten seconds.", "pattern_interrupt"),
    ("POV: your cat finally approves of the new bed.", "pattern_interrupt"),
    ("Plot twist: the salad is the dessert.", "pattern_interrupt"),
    ("Okay this is so weird but hear me out.", "pattern_interrupt"),
    ("Hold on. Look at the left side of the screen.", "pattern_interrupt"),
    ("Don't scroll past this if you own a dog.", "pattern_interrupt"),
    ("This is wild: a toaster that talks back.", "pattern_interrupt"),
    ("If you're a nurse on night shifts, this is for you.", "direct_address"),
    ("Hey new parents, listen up.", "direct_address"),
    ("Calling all weekend gardeners.", "direct_address"),
    ("Attention teachers: your classroom just got easier.", "direct_address"),
    ("You deserve a chair that fits you.", "direct_address"),
    ("If you own a small bakery, you need to see this.", "direct_address"),
    ("Hey freelancers, tax season is coming.", "direct_address"),
    ("If you love hiking, keep watching.", "direct_address"),
    ("You, yes you, with the messy car.", "direct_address"),
)
HELDOUT: tuple[tuple[str, str], ...] = (
    ("Why is nobody talking about protein coffee?", "question"),
    ("Would you pay $5 for a better night's sleep?", "question"),
    ("Is this the comfiest hoodie on the internet?", "question"),
    ("What's really in your dog's food?", "question"),
    ("The trick airlines use to fill empty seats.", "curiosity_gap"),
    ("Here's why your bread never rises.", "curiosity_gap"),
    ("What happened next surprised everyone at the office.", "curiosity_gap"),
    ("The hidden setting that makes your phone last all day.", "curiosity_gap"),
    ("This jacket will keep you dry in any storm.", "bold_claim"),
    ("The best pizza oven you'll ever own.", "bold_claim"),
    ("Whiter teeth in 10 days, guaranteed.", "bold_claim"),
    ("The most powerful cordless vacuum ever built.", "bold_claim"),
    ("71% of renters never get their deposit back in full.", "statistic"),
    ("3 in 5 kids don't drink enough water.", "statistic"),
    ("Only 12% of people stretch before running.", "statistic"),
    ("Stop buying cheap sunglasses.", "negative_warning"),
    ("Don't plant tomatoes until you read this.", "negative_warning"),
    ("The biggest mistake people make when painting a room.", "negative_warning"),
    ("Beware of fake reviews on big marketplaces.", "negative_warning"),
    ("Tired of your dog pulling on walks? Try this harness.", "problem_solution"),
    ("No more sticky pans. Our coating fixes it.", "problem_solution"),
    ("Frizzy hair every morning? Meet SmoothOne.", "problem_solution"),
    ("I tried the 5am routine for a month.", "testimonial_ugc"),
    ("Honest review of the most hyped mattress of the year.", "testimonial_ugc"),
    ("My husband told me to stop buying candles until I found these.", "testimonial_ugc"),
    ("I was nervous about switching phone plans. Here's how it went.", "testimonial_ugc"),
    ("Join 1 million people learning Spanish with us.", "social_proof"),
    ("Rated 4.7 stars across 20,000 reviews.", "social_proof"),
    ("Trusted by over 5,000 clinics worldwide.", "social_proof"),
    ("Before and after a single coat of our primer.", "before_after"),
    ("Day 1 vs day 100 of our reading challenge.", "before_after"),
    ("My posture last year vs. my posture now.", "before_after"),
    ("Ends tonight: 30% off all backpacks.", "offer_urgency"),
    ("Free shipping on every order this week only.", "offer_urgency"),
    ("Only a few left in stock. Grab yours.", "offer_urgency"),
    ("How to clean your oven without scrubbing.", "how_to_list"),
    ("6 ways to save on groceries this month.", "how_to_list"),
    ("3 reasons your plants keep dying.", "how_to_list"),
    ("Wait for it.", "pattern_interrupt"),
    ("POV: you finally found jeans that fit.", "pattern_interrupt"),
    ("Stop scrolling, dog lovers.", "pattern_interrupt"),
    ("If you're a first-time home buyer, read this.", "direct_address"),
    ("Hey runners, your knees will thank you.", "direct_address"),
    ("Calling all coffee snobs.", "direct_address"),
)


def test_labelled_set_covers_every_hook_type_with_at_least_100_lines() -> None:
    assert len(LABELLED) >= 100
    assert {label for _, label in LABELLED} == set(HOOK_TYPES)


@pytest.mark.parametrize(("line", "label"), LABELLED)
def test_labelled_line(line: str, label: str) -> None:
    call = classify_text(line)
    assert call.hook_type == label, (line, call)


def test_heldout_accuracy_is_at_least_90_percent() -> None:
    right = sum(classify_text(line).hook_type == label for line, label in HELDOUT)
    assert right / len(HELDOUT) >= 0.9


def test_every_rule_fires_on_some_labelled_line_and_says_why() -> None:
    fired = {classify_text(line).rule for line, _ in LABELLED}
    for rule in RULES:
        assert rule.why and rule.patterns
        assert rule.name in fired, rule.name
    assert {r.hook_type for r in RULES} == set(HOOK_TYPES)


def test_the_simulated_market_hook_lines_are_classified() -> None:
    rng = random.Random(7)
    for hook in HOOK_TYPES:
        for niche in NICHES:
            line = sim_opening_line(hook, niche, "NovaLab", rng)
            assert classify_text(line).hook_type == hook, line


@pytest.mark.parametrize(
    ("line", "label"),
    [
        ("Wait. Don't scroll past this.", "pattern_interrupt"),  # before the warning rule
        ("Last chance: 50% off ends tonight.", "offer_urgency"),  # before the statistic rule
        ("Day 1 vs. day 30 with GlowLab.", "before_after"),  # before the statistic rule
        ("Join 40,000 runners who switched.", "social_proof"),  # before the list rule
        ("Tired of dull skin? Meet GlowLab.", "problem_solution"),  # before the question rule
        ("I can't believe nobody told me this.", "curiosity_gap"),  # first person, but a gap
    ],
)
def test_rule_order_settles_overlaps(line: str, label: str) -> None:
    call = classify_text(line)
    assert call.hook_type == label
    assert len(call.matched) >= 1


def test_only_the_opening_line_counts() -> None:
    assert opening_line("\n  Stop   doing this.\nAsk yourself why?") == "Stop doing this."
    assert classify_text("\nStop doing this.\nWhy?").hook_type == "negative_warning"


def test_no_rule_gives_other_and_visual_rules_decide_then() -> None:
    assert classify_text("GlowLab serum.").hook_type == OTHER
    assert classify_text("").hook_type == OTHER
    talking = classify("GlowLab serum.", early_face=True, speech_early=True, cuts_in_3s=0)
    assert (talking.hook_type, talking.source) == ("testimonial_ugc", "visual")
    jolt = classify("GlowLab serum.", first_cut_s=0.3)
    assert (jolt.hook_type, jolt.rule) == ("pattern_interrupt", "jolt_open")
    assert classify("GlowLab serum.", early_motion=0.5).hook_type == "pattern_interrupt"
    assert classify("Why not?", early_face=True, speech_early=True).hook_type == "question"
