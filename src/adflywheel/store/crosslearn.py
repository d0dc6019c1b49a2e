"""Cross-account learning (loop 3): niches, opt-ins, contributions, patterns, privacy budget."""

from __future__ import annotations
