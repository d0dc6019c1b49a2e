"""Loop 7: the auto-promoter, the pure core (numpy/scipy, no I/O, typed).

``sequential``: the always-valid test (mSPRT on the Mantel–Haenszel log rate ratio, stratified
by allocation period); ``corrections``: Holm and Benjamini–Hochberg; ``srm``: the always-valid
sample-ratio check; ``decide``: winners and losers against the control; ``guardrails``: from
winners to planned budget changes under the account's guardrails.
"""

from .corrections import Correction, adjust, benjamini_hochberg, holm
from .decide import (
    MAX_LIFT,
    POOLED,
    Decision,
    DecisionSettings,
    Experiment,
    Reason,
    VariantData,
    decide,
)
from .guardrails import (
    Candidate,
    FreezeWindow,
    Guardrails,
    HeldBack,
    Hold,
    Mode,
    PastAction,
    Plan,
    PlannedAction,
    plan_promotions,
)
from .sequential import (
    RatioEstimate,
    always_valid_p_value,
    cs_half_width,
    fixed_z_test,
    log_e_value,
    mh_log_ratio,
    mh_log_ratio_path,
    mixing_sd_for,
)
from .srm import SrmResult, sample_ratio_check

__all__ = [
    "MAX_LIFT",
    "POOLED",
    "Candidate",
    "Correction",
    "Decision",
    "DecisionSettings",
    "Experiment",
    "FreezeWindow",
    "Guardrails",
    "HeldBack",
    "Hold",
    "Mode",
    "PastAction",
    "Plan",
    "PlannedAction",
    "RatioEstimate",
    "Reason",
    "SrmResult",
    "VariantData",
    "adjust",
    "always_valid_p_value",
    "benjamini_hochberg",
    "cs_half_width",
    "decide",
    "fixed_z_test",
    "holm",
    "log_e_value",
    "mh_log_ratio",
    "mh_log_ratio_path",
    "mixing_sd_for",
    "plan_promotions",
    "sample_ratio_check",
]
