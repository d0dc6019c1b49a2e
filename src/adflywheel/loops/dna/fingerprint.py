"""The fingerprint: named genes plus a fixed-length normalised vector, under a DNA version.

Genes are what the patterns and the win model reason about; the vector is what similarity search
and models consume. Both come from either a decoded video (``build_dna``) or a dict of features
an account already has (``dna_from_features``), through the same gene table, so the two are
comparable. Bump ``DNA_VERSION`` whenever a gene's meaning, a normalisation or the layout changes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from adflywheel.core.domain import HOOK_TYPES
from adflywheel.loops.dna.taxonomy import ALL_HOOKS, OTHER, classify, opening_line

DNA_VERSION = "dna-2"  # names the genes' definitions (the hook taxonomy's rules and their order)
ASPECT_CLASSES: tuple[str, ...] = ("9:16", "4:5", "1:1", "16:9", "other")
CATEGORICAL: dict[str, tuple[str, ...]] = {"hook_type": ALL_HOOKS, "aspect_ratio": ASPECT_CLASSES}
BINARY: tuple[str, ...] = ("early_face", "early_text", "has_audio", "has_music")
# Numeric genes: (centre, scale) for the vector, (low, high) accepted from a features dict.
NUMERIC: dict[str, tuple[float, float, float, float]] = {
    "duration_s": (20.0, 15.0, 0.0, 3600.0),
    "cuts_per_10s": (3.0, 2.0, 0.0, 100.0),
    "time_to_first_cut_s": (2.0, 2.0, 0.0, 3600.0),
    "brightness": (0.5, 0.2, 0.0, 1.0),
    "contrast": (0.2, 0.1, 0.0, 1.0),
    "colorfulness": (45.0, 25.0, 0.0, 300.0),
    "motion_energy": (0.05, 0.05, 0.0, 10.0),
    "early_motion": (0.05, 0.05, 0.0, 10.0),
    "face_share": (0.4, 0.3, 0.0, 1.0),
    "text_share": (0.25, 0.25, 0.0, 1.0),
    "speech_share": (0.5, 0.3, 0.0, 1.0),
    "loudness_lufs": (-16.0, 6.0, -70.0, 10.0),
    "time_to_first_sound_s": (0.3, 1.0, 0.0, 3600.0),
    "tempo_bpm": (120.0, 30.0, 0.0, 400.0),
    "onset_rate": (2.0, 2.0, 0.0, 100.0),
}
VECTOR_FIELDS: tuple[str, ...] = (
    *(f"hook_type={h}" for h in ALL_HOOKS),
    *(f"aspect_ratio={a}" for a in ASPECT_CLASSES),
    *BINARY,
    *NUMERIC,
)
VECTOR_LENGTH = len(VECTOR_FIELDS)

# Names a features dict may use for a gene.
ALIASES: dict[str, tuple[str, ...]] = {
    "hook_type": ("hook_type", "hook", "hook_style"),
    "aspect_ratio": ("aspect_ratio", "aspect", "format"),
    "duration_s": ("duration_s", "duration", "length_s", "video_length"),
    "cuts_per_10s": ("cuts_per_10s", "pace", "pacing"),
    "time_to_first_cut_s": ("time_to_first_cut_s", "first_cut_s", "first_cut"),
    "brightness": ("brightness",),
    "contrast": ("contrast",),
    "colorfulness": ("colorfulness", "colourfulness", "colorfulness_hs"),
    "motion_energy": ("motion_energy", "motion"),
    "early_motion": ("early_motion",),
    "face_share": ("face_share", "face_ratio"),
    "text_share": ("text_share", "text_ratio"),
    "speech_share": ("speech_share", "speech_likeness", "speech_ratio"),
    "loudness_lufs": ("loudness_lufs", "lufs", "loudness"),
    "time_to_first_sound_s": ("time_to_first_sound_s", "leading_silence_s", "first_sound_s"),
    "tempo_bpm": ("tempo_bpm", "tempo", "bpm"),
    "onset_rate": ("onset_rate",),
    "early_face": ("early_face", "face_in_first_3s", "has_face"),
    "early_text": ("early_text", "text_in_first_3s", "has_text"),
    "has_audio": ("has_audio",),
    "has_music": ("has_music", "music"),
}
_HOOK_SYNONYMS = {
    "ugc": "testimonial_ugc",
    "testimonial": "testimonial_ugc",
    "curiosity": "curiosity_gap",
    "claim": "bold_claim",
    "stat": "statistic",
    "stats": "statistic",
    "warning": "negative_warning",
    "negative": "negative_warning",
    "problem": "problem_solution",
    "proof": "social_proof",
    "transformation": "before_after",
    "offer": "offer_urgency",
    "urgency": "offer_urgency",
    "how_to": "how_to_list",
    "listicle": "how_to_list",
    "list": "how_to_list",
    "interrupt": "pattern_interrupt",
    "direct": "direct_address",
}


@dataclass(frozen=True, slots=True)
class Dna:
    """One creative's DNA: the three sections as measured, the flat genes, and the vector."""

    hook_dna: dict[str, Any]
    visual_dna: dict[str, Any]
    audio_dna: dict[str, Any]
    genes: dict[str, Any]
    vector: tuple[float, ...]
    source: str  # "video" or "features"
    missing: tuple[str, ...] = ()
    dna_version: str = DNA_VERSION
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "dna_version": self.dna_version,
            "source": self.source,
            "hook_dna": self.hook_dna,
            "visual_dna": self.visual_dna,
            "audio_dna": self.audio_dna,
            "genes": self.genes,
            "missing_genes": list(self.missing),
            "vector": list(self.vector),
        }


def vectorise(genes: Mapping[str, Any]) -> tuple[float, ...]:
    """The fixed layout of ``VECTOR_FIELDS``: one-hot categories, binaries as 0/1, numeric genes
    as (x − centre) / scale clipped to ±3 and divided by 3 (so in [−1, 1]); a missing gene is
    0 (the centre), which is also why missing genes are listed beside the vector."""
    out: list[float] = []
    for name, levels in CATEGORICAL.items():
        value = genes.get(name)
        out.extend(1.0 if value == level else 0.0 for level in levels)
    out.extend(1.0 if genes.get(name) else 0.0 for name in BINARY)
    for name, (centre, scale, _, _) in NUMERIC.items():
        value = genes.get(name)
        if value is None:
            out.append(0.0)
        else:
            out.append(round(max(-3.0, min(3.0, (float(value) - centre) / scale)) / 3.0, 6))
    return tuple(out)


def build_dna(
    visual: Mapping[str, Any],
    hook_visual: Mapping[str, Any],
    audio: Mapping[str, Any],
    text: str = "",
) -> Dna:
    """DNA of a decoded video: the extractor's sections plus the hook call on the ad text."""
    speech_early = bool(
        audio.get("has_audio")
        and audio.get("speech_likeness", 0.0) >= 0.5
        and (audio.get("leading_silence_s") or 0.0) < 1.0
    )
    call = classify(
        text,
        early_face=hook_visual.get("early_face"),
        speech_early=speech_early,
        first_cut_s=hook_visual.get("time_to_first_cut_s"),
        early_motion=hook_visual.get("early_motion"),
        cuts_in_3s=hook_visual.get("cuts_in_first_3s"),
    )
    duration = float(visual["duration_s"])
    first_cut = hook_visual.get("time_to_first_cut_s")
    hook_dna = {
        "hook_type": call.hook_type,
        "hook_rule": call.rule,
        "hook_rules_matched": list(call.matched),
        "hook_source": call.source,
        "opening_line": opening_line(text),
        **dict(hook_visual),
        "time_to_first_sound_s": audio.get("leading_silence_s"),
    }
    genes: dict[str, Any] = {
        "hook_type": call.hook_type,
        "aspect_ratio": visual["aspect_ratio"],
        "early_face": bool(hook_visual.get("early_face")),
        "early_text": bool(hook_visual.get("early_text")),
        "has_audio": bool(audio.get("has_audio")),
        "has_music": audio.get("sound_type") in ("music", "mixed"),
        "duration_s": duration,
        "cuts_per_10s": visual["cuts_per_10s"],
        "time_to_first_cut_s": duration if first_cut is None else first_cut,
        "brightness": visual["brightness"],
        "contrast": visual["contrast"],
        "colorfulness": visual["colorfulness"],
        "motion_energy": visual["motion_energy"],
        "early_motion": hook_visual.get("early_motion"),
        "face_share": visual.get("face_share"),
        "text_share": visual["text_share"],
        "speech_share": audio.get("speech_likeness") if audio.get("has_audio") else 0.0,
        "loudness_lufs": audio.get("loudness_lufs"),
        "time_to_first_sound_s": audio.get("leading_silence_s")
        if audio.get("has_audio")
        else duration,
        "tempo_bpm": audio.get("tempo_bpm"),
        "onset_rate": audio.get("onset_rate"),
    }
    missing = tuple(sorted(k for k, v in genes.items() if v is None))
    return Dna(
        hook_dna=hook_dna,
        visual_dna=dict(visual),
        audio_dna=dict(audio),
        genes=genes,
        vector=vectorise(genes),
        source="video",
        missing=missing,
    )


def _lookup(features: Mapping[str, Any], gene: str) -> Any:
    """A gene's value from a flat dict or from one nested under hook_dna/visual_dna/audio_dna."""
    sections = [features] + [
        features[k]
        for k in ("hook_dna", "visual_dna", "audio_dna")
        if isinstance(features.get(k), Mapping)
    ]
    for section in sections:
        for alias in ALIASES[gene]:
            if alias in section and section[alias] is not None:
                return section[alias]
    return None


def _hook_name(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    key = value.strip().lower().replace("-", "_").replace("/", "_").replace(" ", "_")
    if key in ALL_HOOKS:
        return key
    return _HOOK_SYNONYMS.get(key)


def _aspect_name(value: Any) -> str | None:
    if isinstance(value, str) and value.strip() in ASPECT_CLASSES:
        return value.strip()
    try:
        if isinstance(value, str) and ":" in value:
            a, b = value.split(":", 1)
            ratio = float(a) / float(b)
        else:
            ratio = float(value)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    from adflywheel.loops.dna.video import aspect_class

    return aspect_class(int(ratio * 10_000), 10_000) if ratio > 0 else None


def _number(gene: str, value: Any) -> float:
    if isinstance(value, bool):
        return float(value)
    if not isinstance(value, int | float) or not math.isfinite(float(value)):
        raise ValueError(f"{gene} must be a finite number, got {value!r}")
    low, high = NUMERIC[gene][2:]
    if not low <= float(value) <= high:
        raise ValueError(f"{gene} must be within [{low}, {high}], got {value}")
    return float(value)


MAX_SIDE = 16_384  # the largest frame side a features dict may give
MAX_SHOTS = 10_000


def _whole(features: Mapping[str, Any], name: str, high: int) -> int | None:
    """A whole number from the top level or ``visual_dna``: an int, or a float with no
    fractional part (1080.0, as JSON tools often send); None when absent; refused otherwise."""
    sections = [features]
    if isinstance(features.get("visual_dna"), Mapping):
        sections.append(features["visual_dna"])
    value = next((s[name] for s in sections if s.get(name) is not None), None)
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(float(value))
        or float(value) != int(value)
        or not 1 <= int(value) <= high
    ):
        raise ValueError(f"{name} must be a whole number from 1 to {high}, got {value!r}")
    return int(value)


def dna_from_features(features: Mapping[str, Any], text: str = "") -> Dna:
    """DNA from pre-extracted features (the customer's dict): genes by name or alias, flat or
    nested by section. A hook type that is missing or unknown is taken from the text rules."""
    genes: dict[str, Any] = {}
    raw_hook = _lookup(features, "hook_type")
    hook = _hook_name(raw_hook)
    call = classify(text) if text else None
    if hook is None:
        if raw_hook is not None and call is None:
            raise ValueError(f"unknown hook_type {raw_hook!r}; known: {', '.join(HOOK_TYPES)}")
        hook = call.hook_type if call is not None else None
    genes["hook_type"] = hook
    raw_aspect = _lookup(features, "aspect_ratio")
    genes["aspect_ratio"] = _aspect_name(raw_aspect) if raw_aspect is not None else None
    if raw_aspect is not None and genes["aspect_ratio"] is None:
        raise ValueError(f"aspect_ratio must look like '9:16' or a number, got {raw_aspect!r}")
    for name in BINARY:
        value = _lookup(features, name)
        if value is not None and not isinstance(value, bool | int | float):
            raise ValueError(f"{name} must be true/false or 0/1, got {value!r}")
        genes[name] = None if value is None else bool(float(value) >= 0.5)
    for name in NUMERIC:
        value = _lookup(features, name)
        genes[name] = None if value is None else _number(name, value)
    shots = _whole(features, "shot_count", MAX_SHOTS)
    if shots is not None and genes["cuts_per_10s"] is None and genes["duration_s"]:
        # The video path's own relation: cuts per 10 s = 10·(shots − 1) / duration.
        genes["cuts_per_10s"] = _number("cuts_per_10s", 10.0 * (shots - 1) / genes["duration_s"])
    if genes["has_audio"] is None and (
        genes["has_music"]
        or genes["loudness_lufs"] is not None
        or genes["tempo_bpm"] is not None
        or any((genes[k] or 0.0) > 0.0 for k in ("onset_rate", "speech_share"))
    ):
        genes["has_audio"] = True
    missing = tuple(sorted(k for k, v in genes.items() if v is None))
    hook_dna = {
        "hook_type": hook or OTHER,
        "hook_rule": call.rule if call is not None and hook == call.hook_type else "given",
        "hook_source": "features" if _hook_name(raw_hook) else ("text" if call else "none"),
        "opening_line": opening_line(text),
        "time_to_first_cut_s": genes["time_to_first_cut_s"],
        "early_motion": genes["early_motion"],
        "early_face": genes["early_face"],
        "early_text": genes["early_text"],
        "time_to_first_sound_s": genes["time_to_first_sound_s"],
    }
    if genes["hook_type"] is None:
        genes["hook_type"] = OTHER
    visual_keys = ("duration_s", "aspect_ratio", "cuts_per_10s", "brightness", "contrast")
    visual = {k: genes[k] for k in visual_keys}
    visual.update(
        {k: genes[k] for k in ("colorfulness", "motion_energy", "face_share", "text_share")}
    )
    for side in ("width", "height"):
        visual[side] = _whole(features, side, MAX_SIDE)
    visual["shot_count"] = shots
    if shots is None and genes["cuts_per_10s"] is not None and genes["duration_s"] is not None:
        visual["shot_count"] = round(genes["cuts_per_10s"] * genes["duration_s"] / 10.0) + 1
    audio = {
        # The contract's bool: False when no audio field says there is sound (the vector has
        # always read a missing binary gene as 0); the gene stays in ``missing`` then.
        "has_audio": bool(genes["has_audio"]),
        "has_music": genes["has_music"],
        "loudness_lufs": genes["loudness_lufs"],
        "leading_silence_s": genes["time_to_first_sound_s"],
        "tempo_bpm": genes["tempo_bpm"],
        "onset_rate": genes["onset_rate"],
        "speech_likeness": genes["speech_share"],
    }
    return Dna(
        hook_dna=hook_dna,
        visual_dna=visual,
        audio_dna=audio,
        genes=genes,
        vector=vectorise(genes),
        source="features",
        missing=missing,
    )


def dna_from_document(document: Mapping[str, Any]) -> Dna:
    """A stored DNA document back as ``Dna`` (the vector is recomputed from the genes, so a
    document of the current version always has the current layout)."""
    genes = dict(document.get("genes", {}))
    audio = dict(document.get("audio_dna", {}))
    audio["has_audio"] = bool(audio.get("has_audio"))  # a stored document may hold 0/1 or None
    return Dna(
        hook_dna=dict(document.get("hook_dna", {})),
        visual_dna=dict(document.get("visual_dna", {})),
        audio_dna=audio,
        genes=genes,
        vector=vectorise(genes),
        source=str(document.get("source", "stored")),
        missing=tuple(document.get("missing_genes", ())),
        dna_version=str(document.get("dna_version", DNA_VERSION)),
    )
