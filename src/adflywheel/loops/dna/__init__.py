"""Loop 4, Creative DNA: what an ad is made of, and which of it makes ads win (pure cores)."""

from adflywheel.core.domain import HOOK_TYPES
from adflywheel.loops.dna.fingerprint import (
    DNA_VERSION,
    VECTOR_FIELDS,
    Dna,
    build_dna,
    dna_from_features,
)
from adflywheel.loops.dna.taxonomy import RULES, classify, classify_text

__all__ = [
    "DNA_VERSION",
    "HOOK_TYPES",
    "RULES",
    "VECTOR_FIELDS",
    "Dna",
    "build_dna",
    "classify",
    "classify_text",
    "dna_from_features",
]
