"""Loop 3, cross-account learning (pure core): niche detection, bounded contributions, k-anonymous
differentially private niche patterns, and their use as priors. No I/O; the noise is OpenDP's
(drawn from a CSPRNG, so it cannot be seeded).
"""

from adflywheel.loops.crosslearn.niche import NicheDetection, NicheDetector, default_detector
from adflywheel.loops.crosslearn.prior import (
    NichePrior,
    account_ratio,
    blend_effects,
    global_prior,
    predict_ctr,
    predict_log_ctr,
    win_prior,
)
from adflywheel.loops.crosslearn.privacy import (
    OpenDPLaplace,
    PrivacySettings,
    SeededLaplaceNotPrivate,
    laplace_scale,
    opendp_laplace,
)
from adflywheel.loops.crosslearn.sharing import (
    SHARED_LEVELS,
    Contribution,
    NotPublishable,
    PublishedEffect,
    PublishedPattern,
    contribution,
    publish,
)
from adflywheel.loops.crosslearn.taxonomy import NICHE_KEYS, TAXONOMY, NicheSpec

__all__ = [
    "NICHE_KEYS",
    "SHARED_LEVELS",
    "TAXONOMY",
    "Contribution",
    "NicheDetection",
    "NicheDetector",
    "NichePrior",
    "NicheSpec",
    "NotPublishable",
    "OpenDPLaplace",
    "PrivacySettings",
    "PublishedEffect",
    "PublishedPattern",
    "SeededLaplaceNotPrivate",
    "account_ratio",
    "blend_effects",
    "contribution",
    "default_detector",
    "global_prior",
    "laplace_scale",
    "opendp_laplace",
    "predict_ctr",
    "predict_log_ctr",
    "publish",
    "win_prior",
]
