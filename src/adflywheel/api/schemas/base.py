"""What every answer model shares."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Answer(BaseModel):
    """A response body: exactly these fields, in this order. A field the model does not know is
    refused on the way out (a 500 in production, a failing test before), so the schema cannot
    silently fall behind what a service returns."""

    model_config = ConfigDict(extra="forbid")


class UpsertCountsOut(Answer):
    """What a batch of actuals did: rows received, and how many were new, changed or the same."""

    received: int
    inserted: int
    updated: int
    unchanged: int


class CatalogCountsOut(Answer):
    """Campaigns, ad sets and ads written (inserted or updated)."""

    campaigns: int
    ad_sets: int
    ads: int
