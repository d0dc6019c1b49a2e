"""One module per console page; each exposes ``router`` (HTML, left out of the OpenAPI schema)."""

from adflywheel.console.pages import campaigns, creatives, cycles, learning, overview, promotions

ROUTERS = (
    overview.router,
    campaigns.router,
    promotions.router,
    creatives.router,
    learning.router,
    cycles.router,
)
