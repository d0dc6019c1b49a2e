"""The model registry (loop 5): versions, the champion alias, promotions, ensemble weights."""

from __future__ import annotations
