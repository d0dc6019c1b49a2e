"""Synthetic ablation shard results for the benchmark tables' tests (no simulation runs)."""

from __future__ import annotations

from typing import Any


def shard(slug: str, seed: int, cpd: float, **extra: Any) -> dict[str, Any]:
    """A synthetic shard result: Thompson alone's spend is 1,000.00 on every seed."""
    row: dict[str, Any] = {
        "synthetic": True,
        "scenario": "churn",
        "set": slug,
        "set_label": slug,
        "seed": seed,
        "days": 21,
        "quick": False,
        "clicks_per_dollar": cpd,
        "conversions_per_dollar": cpd / 10,
        "spend_minor": 100_000,
        "cold_start_clicks_per_dollar": cpd / 2,
        "marginal_oracle_clicks_per_dollar": 3.0,
        "uniform_clicks_per_dollar": 1.5,
        "uniform_spend_minor": 100_000,
        "seconds": 10.0,
    }
    row.update(extra)
    return row
