"""Ad platforms behind one small interface: the simulated market, CSV exports, (later) Meta."""

from adflywheel.platforms.base import (
    AdPlatform,
    PlatformAccount,
    PlatformAd,
    PlatformAdSet,
    PlatformCampaign,
    PlatformError,
    ReadOnlyPlatformError,
)

__all__ = [
    "AdPlatform",
    "PlatformAccount",
    "PlatformAd",
    "PlatformAdSet",
    "PlatformCampaign",
    "PlatformError",
    "ReadOnlyPlatformError",
]
