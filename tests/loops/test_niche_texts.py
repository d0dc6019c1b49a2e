"""Loop 3's niche detector on a labelled set of hand-written ad texts (issue #16), written
before the taxonomy was extended: 43 of 72 were right then (jacket -> food, coffee maker -> food,
no automotive niche)."""

from __future__ import annotations

import json
from pathlib import Path

from adflywheel.loops.crosslearn import NICHE_KEYS
from adflywheel.loops.crosslearn.niche import default_detector
from adflywheel.sim.market.config import NICHES

LABELLED = json.loads(
    (Path(__file__).parents[1] / "fixtures" / "niche_texts.json").read_text(encoding="utf-8")
)["texts"]


def right(text: str, expected: list[str]) -> bool:
    found = default_detector().detect(None, [text]).niche
    return found in expected if expected else found is None


def test_the_labelled_set_names_known_niches_and_covers_the_common_verticals() -> None:
    assert len(LABELLED) >= 60
    assert {key for item in LABELLED for key in item["expected"]} <= set(NICHE_KEYS)
    assert set(NICHES) <= set(NICHE_KEYS)  # the simulated market's niches still exist


def test_the_large_majority_of_the_labelled_set_is_right() -> None:
    hits = sum(right(item["text"], item["expected"]) for item in LABELLED)
    assert hits / len(LABELLED) >= 0.9, f"{hits}/{len(LABELLED)}"
    for vertical in {item["vertical"] for item in LABELLED}:
        items = [item for item in LABELLED if item["vertical"] == vertical]
        assert sum(right(i["text"], i["expected"]) for i in items) >= len(items) - 1, vertical


def test_a_jacket_is_apparel_a_coffee_maker_home_and_a_car_auto() -> None:
    detector = default_detector()
    assert detector.detect(None, ["A warm winter jacket for the cold."]).niche == (
        "ecommerce_fashion"
    )
    assert detector.detect(None, ["Our coffee maker brews a great cup."]).niche == "home"
    assert detector.detect(None, ["Roasted coffee beans, fresh every month."]).niche == "food"
    assert detector.detect(None, ["Test drive the new electric SUV."]).niche == "auto"
    assert detector.detect("Car dealership", []).niche == "auto"
    assert detector.detect(None, ["Tap to learn more. Limited time offer!"]).niche is None
