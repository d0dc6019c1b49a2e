"""Winner memory (loop 1): winners, their history and the index manifests."""

from __future__ import annotations
