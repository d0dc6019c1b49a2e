"""Hook types from an ad's opening line (and, when the words say nothing, its first seconds).

A transparent rule list, not a model: each rule is a name, the hook type it assigns, a sentence
saying why, and a few regular expressions. Rules are tried in order and the first that matches
wins; the order settles overlaps ("50% off" is an offer before it is a statistic; "Don't scroll"
is a pattern interrupt before it is a warning). Every rule is listed in docs/creative-dna.md and
tested on examples in tests/test_dna_taxonomy.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from adflywheel.domain import HOOK_TYPES

OTHER = "other"
ALL_HOOKS: tuple[str, ...] = (*HOOK_TYPES, OTHER)

_NUM = r"(?:\d[\d,.]*|one|two|three|four|five|six|seven|eight|nine|ten)"
_BIG = r"(?:\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?\s*(?:k|m|million|thousand)\b|\d{4,})"


@dataclass(frozen=True, slots=True)
class HookRule:
    name: str
    hook_type: str
    why: str
    patterns: tuple[str, ...]

    def matches(self, line: str) -> bool:
        return any(re.search(p, line, re.IGNORECASE) for p in self.patterns)


RULES: tuple[HookRule, ...] = (
    HookRule(
        "interrupt_phrase",
        "pattern_interrupt",
        "Tells the viewer to stop scrolling or opens with a jolt (wait, POV, plot twist, okay).",
        (
            r"\b(?:don'?t|do not|stop)\s+scroll",
            r"\bscroll(?:ing)?\s+past\b",
            r"^\s*(?:wait|hold on|pause|plot twist|pov)\b",
            r"^\s*okay\b.{0,20}\b(?:weird|crazy|wild|strange)\b",
            r"^\s*(?:this is|okay,? this is)\s+(?:so\s+)?(?:weird|crazy|wild|strange|unhinged)\b",
        ),
    ),
    HookRule(
        "offer_terms",
        "offer_urgency",
        "Names a discount, a free extra or a deadline: % off, sale, free shipping, today only.",
        (
            r"\d+\s*%\s*off\b",
            r"\b(?:last chance|today only|ends (?:tonight|today|soon|sunday|midnight)|"
            r"limited time|while (?:stocks|supplies) last|only a few left|hurry|flash sale|"
            r"black friday|buy one,? get|bogo|free shipping|promo code|use code|"
            r"sale ends|final hours|\$\d+\s*off)\b",
        ),
    ),
    HookRule(
        "before_after_frame",
        "before_after",
        "Sets a past state against a present one: before/after, day 1 vs day 30, me then vs now.",
        (
            r"\bbefore\b.{0,60}\bafter\b",
            r"\bday\s*\d+\s*(?:vs\.?|versus|to|→|->)\s*day\s*\d+",
            r"\b(?:me|my \w+)\b.{0,30}\bago\b.{0,10}\b(?:vs\.?|versus)\b",
            r"\b(?:then|last year|before)\s*(?:vs\.?|versus)\s*(?:now|today|this year)\b",
            r"\b(?:vs\.?|versus)\s+(?:\w+\s+){0,3}(?:now|today|this year)\b",
            r"\btransformation\b",
        ),
    ),
    HookRule(
        "social_proof_count",
        "social_proof",
        "Cites how many people buy, rate or trust it, or a star rating.",
        (
            _BIG + r"\+?\s+(?:happy\s+|satisfied\s+|\w+\s+)?"
            r"(?:people|customers|users|members|buyers|reviews|moms|women|men|fans|"
            r"businesses|teams|marketers|founders|runners|families|shoppers|\w+ers)\b",
            r"\b(?:rated \d|rated by|\d(?:\.\d)?\s*stars?|five.star|5.star|best.?seller|"
            r"sold out|as seen (?:on|in)|join(?:ed)? (?:the )?(?:" + _BIG + r"|thousands|"
            r"millions))\b",
            r"\b(?:loved|trusted|used|chosen|worn) by (?:over |more than )?(?:"
            + _BIG
            + r"|thousands|millions|hundreds)",
        ),
    ),
    HookRule(
        "statistic_figure",
        "statistic",
        "Leads with a percentage or an 'N out of 10' figure about people or things.",
        (
            r"\b\d+(?:\.\d+)?\s*%(?!\s*off)",
            r"\b\d+\s+(?:out of|in)\s+(?:10|ten|100|\d+)\b",
            r"\b\d+(?:\.\d+)?\s*percent\b",
        ),
    ),
    HookRule(
        "warning_words",
        "negative_warning",
        "Warns or forbids: stop, don't, never, mistake, warning, avoid, worst.",
        (
            r"^\s*(?:stop|don'?t|do not|never|quit)\b",
            r"\b(?:warning|mistakes?|avoid|worst|red flags?|beware|ruining|"
            r"costing you|killing your)\b",
        ),
    ),
    HookRule(
        "pain_then_fix",
        "problem_solution",
        "Names a pain and then the answer: 'Tired of X? Meet Y', 'No more X', 'here's the fix'.",
        (
            r"^\s*(?:tired of|sick of|fed up with|done with)\b",
            r"\bno more\b",
            r"\bhere'?s (?:the|a|your) (?:fix|solution|answer)\b",
            r"\?\s*(?:meet|try|introducing|say hello to|here'?s)\b",
            r"\b(?:fixes|solves|ends) (?:it|this|that|the problem)\b",
            r"^\s*if .{3,60}\b(?:holding you back|keeps? you up|bothers you|is a struggle)\b",
        ),
    ),
    HookRule(
        "first_person_story",
        "testimonial_ugc",
        "Speaks as a customer: I tried, honest review, my friend made me, I was skeptical.",
        (
            r"\b(?:honest review|my (?:honest )?review|unsponsored|not sponsored)\b",
            r"\bi (?:was|used to be) (?:skeptical|sceptical|doubtful|nervous|unsure)\b",
            r"\bi (?:tried|tested|used|switched to|bought|ordered)\b",
            r"\bmy (?:friend|sister|mom|wife|husband|partner|coworker) (?:made|got|told) me\b",
            r"\b(?:actually|finally) worked for me\b",
            r"^\s*(?:update|storytime|story time)\b",
        ),
    ),
    HookRule(
        "hidden_knowledge",
        "curiosity_gap",
        "Promises a secret or withheld piece of knowledge: secret, nobody, trick, what happened.",
        (
            r"\b(?:secret|nobody|no one|trick|hack|hidden|little.known)\b",
            r"\bdon'?t want you to know\b",
            r"\b(?:what happened next|you won'?t believe|can'?t believe|the reason why|"
            r"here'?s why|here'?s what)\b",
            r"\bthe one\b.{0,40}\b(?:that|which|thing)\b",
            r"\bchanged everything\b",
        ),
    ),
    HookRule(
        "steps_or_list",
        "how_to_list",
        "Promises a method or a list: how to, N ways/steps/tips, a guide.",
        (
            r"^\s*how to\b",
            r"\bhow (?:i|we|you can)\b",
            r"\b" + _NUM + r"\s+(?:\w+\s+)?(?:ways|steps|tips|tricks|reasons|things|"
            r"rules|habits|ideas|mistakes|minutes? to)\b",
            r"\b(?:guide|tutorial|step.by.step|explained)\b",
            r"^\s*(?:\d{1,2}|three|four|five|six|seven|eight|nine|ten)\s+(?:\w+\s+)?\w+s\b",
        ),
    ),
    HookRule(
        "big_promise",
        "bold_claim",
        "Makes a strong claim about the result: best, guaranteed, will X in Y, #1, period.",
        (
            r"\b(?:guaranteed|guarantee|the best|best \w+ (?:you'?ll|ever)|number one|"
            r"game.changer|life.changing)\b",
            r"#1\b|\bperiod[.!]?\s*$|\bthe (?:most|only)\b.{0,40}\b(?:ever|you'?ll ever)\b",
            r"\bwill (?:\w+ ){0,4}in (?:\d+|a|one|two|three) (?:days?|weeks?|months?|"
            r"minutes?|hours?)\b",
            r"\bmoney back\b",
            r"\b(?:in|within) (?:just )?\d+ (?:days?|weeks?|minutes?)\b.*[.!]$",
        ),
    ),
    HookRule(
        "ends_with_question",
        "question",
        "Asks the viewer something: the opening sentence ends with a question mark.",
        (r"^[^.!]*\?", r"^\s*(?:what if|ever wondered|why do|do you|are you|did you know)\b"),
    ),
    HookRule(
        "calls_out_viewer",
        "direct_address",
        "Calls out the viewer or their identity: if you're a..., hey X, calling all, you.",
        (
            r"^\s*if you'?re\b",
            r"^\s*if you (?:are|have|own|run|love)\b",
            r"^\s*(?:hey|attention|calling (?:all|every))\b",
            r"\bthis is for you\b",
            r"\blisten up\b",
            r"^\s*you\b",
        ),
    ),
)


@dataclass(frozen=True, slots=True)
class HookCall:
    """The hook type, the rule that decided it, and every rule that matched (for review)."""

    hook_type: str
    rule: str
    matched: tuple[str, ...]
    source: str  # "text", "visual" or "none"


def opening_line(text: str) -> str:
    """The first non-empty line of the ad text, as the viewer reads it first."""
    for line in text.splitlines():
        if line.strip():
            return " ".join(line.split())
    return ""


def classify_text(text: str) -> HookCall:
    """Hook type of the opening line by the first matching rule; ``other`` when none does."""
    line = opening_line(text)
    matched = tuple(r.name for r in RULES if r.matches(line))
    if not matched:
        return HookCall(OTHER, "", (), "none")
    first = next(r for r in RULES if r.name == matched[0])
    return HookCall(first.hook_type, first.name, matched, "text")


def classify(
    text: str,
    *,
    early_face: bool | None = None,
    speech_early: bool | None = None,
    first_cut_s: float | None = None,
    early_motion: float | None = None,
    cuts_in_3s: int | None = None,
) -> HookCall:
    """Text rules first; when the words match none, two visual rules decide:
    ``talking_head`` (a face in the first 3 s, speech early, at most one cut: testimonial/UGC)
    and ``jolt_open`` (a cut before 0.5 s or strong early motion: pattern interrupt)."""
    call = classify_text(text)
    if call.hook_type != OTHER:
        return call
    if early_face and speech_early and (cuts_in_3s or 0) <= 1:
        return HookCall("testimonial_ugc", "talking_head", ("talking_head",), "visual")
    fast_cut = first_cut_s is not None and first_cut_s < 0.5
    if fast_cut or (early_motion is not None and early_motion >= JOLT_MOTION):
        return HookCall("pattern_interrupt", "jolt_open", ("jolt_open",), "visual")
    return call


# Mean absolute luma change per second (0..1 scale) above which the opening counts as a jolt.
JOLT_MOTION = 0.08
