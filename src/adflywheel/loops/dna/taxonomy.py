"""Hook types from an ad's opening line (and, when the words say nothing, its first seconds).

A transparent rule list, not a model: each rule is a name, the hook type it assigns, a sentence
saying why, and a few regular expressions. Rules are tried in order and the first that matches
wins; the order settles overlaps ("50% off" is an offer before it is a statistic; "Don't scroll"
is a pattern interrupt before it is a warning; "Frizz ruining your mornings? This serum tames
it" is a problem and its fix before it is a warning; a one-sentence question is a question
before its words look like a secret or a superlative). Every rule is listed in
docs/creative-dna.md; every pattern is exercised by a hand-labelled line of its hook type in
tests/fixtures/hook_lines.csv (tests/loops/test_dna_taxonomy.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from adflywheel.core.domain import HOOK_TYPES

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


_DAY = r"(?:mon|tues|wednes|thurs|fri|satur|sun)day"
_WORDNUM = r"(?:one|two|three|four|five|six|seven|eight|nine|ten|\d+)"
_SUPERLATIVE = r"(?!(?:latest|honest|interest|forest|request|guest|rest|test|west|best-?sell)\b)"

RULES: tuple[HookRule, ...] = (
    HookRule(
        "interrupt_phrase",
        "pattern_interrupt",
        "Breaks the scroll: tells the viewer to stop scrolling or swiping, or opens with a jolt "
        "(a one-word stop/wait/freeze, POV, plot twist, hear me out, this is not an ad).",
        (
            r"\b(?:don'?t|do not|stop|quit|keep|stopped|before you|interrupt your)\s+"
            r"(?:scroll|swip)|\b(?:don'?t|do not) skip (?:this|ahead)\b",
            r"\bscroll(?:ing)?\s+past\b",
            r"^\s*(?:wait|hold on|hold up|pause|freeze|plot twist|pov|record scratch|nope|"
            r"quick)\b",
            r"^\s*(?:stop|wait)\s*[.!]",
            r"^\s*stop what you'?re doing\b",
            r"^\s*okay\b.{0,20}\b(?:weird|crazy|wild|strange)\b",
            r"^\s*(?:this is|okay,? this is)\s+(?:so\s+)?(?:weird|crazy|wild|strange|unhinged)\b",
            r"^\s*(?:sorry,? (?:to interrupt|i had to|had to)|hear me out|this is your sign)\b",
            r"^\s*this is(?: not|n'?t) (?:an? )?(?:ad|\w+ video)\b",
        ),
    ),
    HookRule(
        "offer_terms",
        "offer_urgency",
        "Names a discount, a free extra or a deadline: % off, save, sale, deal, free gift or "
        "shipping, on us, ends Friday, N hours left, prices go up.",
        (
            r"\d+\s*%\s*off\b",
            r"\b(?:last chance|today only|ends (?:tonight|today|soon|midnight|in \d+)|"
            r"limited time|while (?:stocks|supplies) last|only a few left|hurry|flash sale|"
            r"black friday|cyber monday|buy one,? get|bogo|free shipping|promo code|use code|"
            r"sale ends|final hours|\$\d+\s*off)\b",
            r"(?:^|[:.!]\s*)(?:save|take|get)\s+(?:up to\s+)?(?:\d+\s*%|\$\d+)",
            r"\bhalf (?:price|off)\b",
            r"\b(?:sale|discount|deal|coupon|early bird)\b",
            r"\bfree (?:gift|tote|returns|trial|sample)\b|\b\d+ (?:months?|weeks?) free\b",
            r"\b(?:ends?|until|till|before|by)\s+(?:midnight|tonight|tomorrow|" + _DAY + r")\b",
            r"\b(?:this|the) (?:week|weekend) only\b|\b\d+ hours? left\b",
            r"\bprices? (?:go(?:es)? up|increase|rise)\b|\bdoors close\b|\bon us\b",
            r"^\s*order by\b",
        ),
    ),
    HookRule(
        "before_after_frame",
        "before_after",
        "Sets a past state against a present one: before/after, day 1 vs day 30, from X to Y, "
        "what it looked like, then vs now, side by side, old X new X.",
        (
            r"\bbefore\b.{0,60}\b(?:after|now)\b",
            r"\b(?:day|week|month|year)\s*" + _WORDNUM + r"\s*(?:vs\.?|versus|to|→|->|"
            r"compared (?:with|to))\s*(?:day|week|month|year)?\s*" + _WORDNUM + r"\b",
            r"\b(?:me|my \w+)\b.{0,30}\bago\b.{0,10}\b(?:vs\.?|versus)\b",
            r"\b(?:then|last year|before)\s*(?:vs\.?|versus)\s*(?:now|today|this year)\b",
            r"\b(?:vs\.?|versus)\s+(?:\w+\s+){0,3}(?:now|today|this year)\b",
            r"\btransformation\b",
            r"^\s*from\b.{2,40}\bto\b|\b(?:went|gone|go|goes|turned) from\b.{2,40}\bto\b",
            r"\blooked like\b|\bside by side\b|^\s*left:.{0,40}\bright:",
            r"\bold (\w+),? new \1\b",
            r"\bwhat (?:\w+ ){0,2}(?:days?|weeks?|months?|years?) (?:of|with)\b.{0,40}\bdid\b",
            r"\b(?:this|that) was (?:my|our)\b.{0,40}\b(?:now|today)\b|\bthis is me (?:in|now)\b",
        ),
    ),
    HookRule(
        "social_proof_count",
        "social_proof",
        "Cites how many people buy, rate or trust it, or its fame: a count of customers, "
        "reviews or downloads, a star rating, voted, everyone's talking, swear by.",
        (
            r"(?:" + _BIG + r"|half a million|a million)\+?\s+(?:happy\s+|satisfied\s+|"
            r"[\w-]+\s+)?(?:people|customers|users|members|buyers|reviews|moms|women|men|fans|"
            r"businesses|teams|marketers|founders|runners|families|shoppers|downloads|orders|"
            r"\w+ers)\b",
            r"\b(?:rated \d|rated by|\d(?:\.\d)?\s*stars?|five.star|5.star|best.?seller|"
            r"sold out|as seen (?:on|in)|join(?:ed)? (?:the )?(?:" + _BIG + r"|thousands|"
            r"millions))\b",
            r"\b(?:loved|trusted|used|chosen|worn) by (?:over |more than )?(?:"
            + _BIG
            + r"|thousands|millions|hundreds)",
            r"(?:" + _BIG + r"|a million)\s+(?:[\w-]+\s+)?(?:sold|shipped)\b",
            r"\b(?:voted|award.winning|broke the internet|swear by|and counting|"
            r"can'?t (?:all )?be wrong|waitlist|most (?:reviewed|loved|popular|gifted))\b",
            r"\b\w+s trust (?:our|this|these)\b",
            r"\bfavou?rite\b.{0,40}\b(?:year|in a row|running)\b",
            r"\b(?:everyone|everybody|the internet|\w+ everywhere)\b.{0,25}\b(?:talking about|"
            r"obsessed|asking about|raving|loves?)\b",
        ),
    ),
    HookRule(
        "statistic_figure",
        "statistic",
        "Leads with a figure about people or things: a percentage, 'N in 10', a fraction, "
        "'twice as likely', the average person, a count per year or per day.",
        (
            r"\b\d+(?:\.\d+)?\s*%(?!\s*off)",
            r"\b" + _WORDNUM + r"\s+(?:out of|in)\s+(?:10|ten|100|\d+|two|three|four|five|six|"
            r"seven|eight|nine)\b",
            r"\b\d+(?:\.\d+)?\s*percent\b",
            r"\b(?:half|a third|a quarter|two thirds|three quarters|one third|one quarter)\s+of\b",
            r"\b(?:twice|three times|\d+ times|(?:two|three|four|five|ten) times)\s+"
            r"(?:more|less|as|faster|likely)\b",
            r"\bthe average \w+\b",
            r"(?:\$\d[\d,.]*|\d{1,3}(?:,\d{3})+|\d{3,}|\d[\d.]*\s*(?:million|billion|thousand))"
            r"\b.{0,50}\b(?:a|per|every|each) (?:year|day|week|minute|hour)\b",
            r"^\s*every (?:year|day|minute|second|hour)\b.{0,30}\d",
            r"^\s*it takes (?:about |roughly |just |only )?\d+",
        ),
    ),
    HookRule(
        "pain_then_fix",
        "problem_solution",
        "Names a pain and then the answer: 'Tired of X? Meet Y', 'X? This fixes it', 'No more "
        "X', 'Say goodbye to X', 'X. This stand keeps it cool'.",
        (
            r"^\s*(?:tired of|sick of|fed up with|done with)\b",
            r"\bno more\b|\bsay goodbye to\b",
            r"\bhere'?s (?:the|a|your) (?:fix|solution|answer)\b",
            r"\?\s*(?:meet|try|introducing|say hello to|here'?s|not (?:anymore|any more|with)|"
            r"(?:this|these|our|one|let|drop|just)\b)",
            r"\b(?:fixes|solves|ends) (?:it|this|that|the problem)\b",
            r"^\s*if .{3,60}\b(?:holding you back|keeps? you up|bothers you|is a struggle)\b",
            r"\.\s+(?:this|our|these|the) [\w-]+(?: [\w-]+)? (?:fix|solve|change|stop|end|"
            r"keep|lift|tame|handle)s?\b",
        ),
    ),
    HookRule(
        "revelation",
        "curiosity_gap",
        "Frames the line as a discovery, so the words inside it are the withheld answer, not "
        "the hook: 'Turns out...', 'I finally figured out why...'.",
        (
            r"^\s*(?:it )?turns? out\b",
            r"\b(?:finally )?(?:figured|found) out (?:why|what|how)\b",
        ),
    ),
    HookRule(
        "warning_words",
        "negative_warning",
        "Warns or forbids: stop, don't, never, careful, think twice, mistake, warning, avoid, "
        "danger, harm, damage, 'you're doing it wrong'.",
        (
            r"^\s*(?:please\s+)?(?:stop|don'?t|do not|never|quit|careful|think twice)\b",
            r"\b(?:warning|mistakes?|avoid|worst|red flags?|beware|ruining|danger\w*|harm\w*|"
            r"damag\w+|costing you|killing your|think twice)\b",
            r"\byou(?:'re| are|'ve been| have been)\b.{0,40}\bwrong\b",
            r"\b(?:might|may|could) be (?:\w+ing|\w+ier|worse)\b|\bwithout (?:knowing|realizing)\b",
            r"\b(?:could|might|will|can) (?:void|ruin|damage|hurt|cost you)\b",
            r"\bwhatever you do\b|,\s*(?:don'?t|never)\b",
            r"\bshould(?:n'?t| never| not)\b",
        ),
    ),
    HookRule(
        "first_person_story",
        "testimonial_ugc",
        "Speaks as a customer: I tried, I've been using, honest review, my take, my friend "
        "made me, as a nurse..., day in my life, unboxing, real talk.",
        (
            r"\b(?:honest review|my (?:honest )?(?:review|take|verdict)|unsponsored|"
            r"not sponsored)\b",
            r"\bi (?:was|used to be) (?:skeptical|sceptical|doubtful|nervous|unsure)\b",
            r"\bi (?:tried|tested|used|switched to|bought|ordered|ditched|swapped|replaced)\b",
            r"\bi'?ve (?:been using|tried|used|had|worn|never|switched)\b|^\s*been using\b",
            r"\bmy (?:friend|sister|mom|wife|husband|partner|coworker|kids?|family|trainer|"
            r"doctor|dermatologist|dentist)\b.{0,30}\b(?:made|got|told|bought|recommended)\b",
            r"\b(?:actually|finally) worked for me\b|\bour family has\b",
            r"^\s*(?:update|storytime|story time|unboxing|day in my life|real talk|"
            r"me,? (?:reviewing|trying|testing))\b",
            r"^\s*as an? [\w -]{2,30},",
            r"\bi never thought i'?d\b|\bhere'?s what i think\b|\bi'?m (?:hooked|obsessed)\b",
        ),
    ),
    HookRule(
        "ends_with_question",
        "question",
        "Asks the viewer something: the opening sentence ends with a question mark.",
        (r"^[^.!]*\?", r"^\s*(?:what if|ever wondered|why do|do you|are you|did you know)\b"),
    ),
    HookRule(
        "hidden_knowledge",
        "curiosity_gap",
        "Promises a secret or withheld piece of knowledge: secret, nobody, trick, the real "
        "reason, what happens when, what most people miss, what they won't tell you.",
        (
            r"\b(?:secret|nobody|no one|trick|hack|hidden|little.known|quietly)\b",
            r"\bdon'?t want you to know\b|\b(?:isn'?t|aren'?t|won'?t|don'?t) tell(?:ing)? you\b",
            r"\b(?:what happened next|you won'?t believe|can'?t believe|the reason why|"
            r"here'?s why|here'?s what|what happens (?:when|if)|find out|we found out)\b",
            r"\bthe one\b.{0,40}\b(?:that|which|thing)\b",
            r"\bchanged everything\b",
            r"\bthe (?:real|strange|surprising|weird|simple|odd|actual|true) reason\b",
            r"\bthere'?s (?:a reason|one \w+)\b|\bweird (?:way|trick)\b",
            r"\b(?:no idea|no clue|never noticed)\b|\bto themselves\b",
            r"\bmost \w+ (?:overlook|miss|skip|ignore|forget)\b|\b(?:overlook|miss|skip)s?\.?$",
            r"\bwhat (?:they|\w+s) (?:don'?t|won'?t|never) (?:put|tell|say|show|mention)\b",
            r"\b(?:only a (?:handful|few)|hardly anyone|few people)\b.{0,30}\bknow\b",
            r"\b(?:this|the) one \w+ (?:is|was) (?:behind|why|the reason)\b",
        ),
    ),
    HookRule(
        "steps_or_list",
        "how_to_list",
        "Promises a method or a list: how to, here's how, the easiest way to, N ways/steps/"
        "tips, top 5, a guide, a checklist, everything you need.",
        (
            r"^\s*how to\b|\bhere'?s how\b|\blearn (?:to|how)\b",
            r"\bhow (?:i|we|you can)\b",
            r"\b" + _NUM + r"\s+(?:\w+\s+)?(?:ways|steps|tips|tricks|reasons|things|"
            r"rules|habits|ideas|mistakes|minutes? to|swaps|hacks)\b",
            r"\b(?:guide|tutorial|step.by.step|explained|checklist|cheat ?sheet)\b",
            r"^\s*(?:\d{1,2}|three|four|five|six|seven|eight|nine|ten)\s+(?:\w+\s+)?\w+s\b",
            r"\bthe (?:right|best|easiest|fastest|simplest|quickest) way to\b",
            r"\btop (?:\d+|three|five|ten)\b|^\s*step (?:one|1)\b",
            r"\beverything you need\b",
        ),
    ),
    HookRule(
        "big_promise",
        "bold_claim",
        "Makes a strong claim about the product or result: best, guaranteed, a superlative "
        "(the comfiest, the world's lightest), nothing beats it, every time, will X in Y.",
        (
            r"\b(?:guaranteed|guarantee|we promise|the best|best \w+ (?:you'?ll|ever)|"
            r"number one|game.changer|life.changing)\b",
            r"#1\b|\bperiod[.!]?\s*$|\bthe (?:most|only)\b.{0,40}\b(?:ever|you'?ll ever)\b",
            r"\bwill (?:\w+ ){0,4}in (?:\d+|a|one|two|three) (?:days?|weeks?|months?|"
            r"minutes?|hours?)\b",
            r"\bmoney back\b",
            r"\b(?:in|within) (?:just )?\d+ (?:days?|weeks?|minutes?)\b.*[.!]$",
            r"\b(?:the|our|world'?s)\s+(?:\w+\s+)?" + _SUPERLATIVE + r"\w{2,}(?:iest|est)\b",
            r"\b(?:you|you'?ll|you will) ever (?:buy|need|own|try)\b|\bfull stop\b|\bever[.!]",
            r"\bnothing (?:else )?(?:comes close|beats|compares)\b|"
            r"\bnothing (?:\w+ ){1,3}(?:faster|better|longer)\b",
            r"\b(?:every (?:single )?time|hands down|simply better|better than (?:any|every)\w*|"
            r"for good|built to (?:last|outlast)|outlast\w*|even the (?:most|toughest|worst))\b",
            r"\bthe only \w+(?: \w+)? you(?:'ll)? (?:ever )?need\b|^\s*(?:perfect|flawless)\b",
            r"\bwill (?:change|transform)\b|\bwill (?:keep|make|get|give|leave) you\b",
            r"\bworld'?s (?:first|only|#1)\b",
        ),
    ),
    HookRule(
        "calls_out_viewer",
        "direct_address",
        "Calls out the viewer or their group: if you're a..., hey X, calling all, 'Dog owners, "
        "...', 'For anyone who...', this one's for you, you.",
        (
            r"^\s*if you'?re\b",
            r"^\s*if you (?:are|have|own|run|love)\b",
            r"^\s*(?:hey|attention|calling (?:all|every))\b",
            r"\b(?:this|it)(?: one)?(?:'s| is) for (?:you|the|all|every)\b|\bfor you[.!]*$",
            r"\blisten up\b",
            r"^\s*you\b",
            r"^\s*(?:[\w'-]+\s+){0,3}(?:[\w'-]+s|people|folks|everyone)\s*[,:]\s",
            r"^\s*(?:to|for) (?:all|every|everyone|everybody|anyone|anybody|those)\b",
            r"^\s*(?:to|for) the (?:[\w-]+\s+){0,2}[\w-]+s\b",
            r"\b(?:is|are) for the\b",
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
