"""The Meta Marketing API connector: an httpx Graph client with Meta's pacing, and
``MetaPlatform`` behind the ``AdPlatform`` interface (docs/meta.md)."""

from adflywheel.platforms.meta.client import (
    DEFAULT_API_VERSION,
    DEFAULT_GRAPH_URL,
    ClientStats,
    GraphClient,
    SystemTimer,
    Timer,
)
from adflywheel.platforms.meta.errors import (
    MetaApiError,
    MetaAuthError,
    MetaInvalidRequestError,
    MetaNotFoundError,
    MetaPermissionError,
    MetaReduceDataError,
    MetaReportFailedError,
    MetaThrottledError,
    MetaTransientError,
)
from adflywheel.platforms.meta.insights import InsightsOptions
from adflywheel.platforms.meta.parse import ImplausibleRowError, InsightRow, MetaDataError
from adflywheel.platforms.meta.platform import MetaPlatform, ad_account_path
from adflywheel.platforms.meta.throttle import ThrottlePolicy, Usage, parse_usage

__all__ = [
    "DEFAULT_API_VERSION",
    "DEFAULT_GRAPH_URL",
    "ClientStats",
    "GraphClient",
    "ImplausibleRowError",
    "InsightRow",
    "InsightsOptions",
    "MetaApiError",
    "MetaAuthError",
    "MetaDataError",
    "MetaInvalidRequestError",
    "MetaNotFoundError",
    "MetaPermissionError",
    "MetaPlatform",
    "MetaReduceDataError",
    "MetaReportFailedError",
    "MetaThrottledError",
    "MetaTransientError",
    "SystemTimer",
    "ThrottlePolicy",
    "Timer",
    "Usage",
    "ad_account_path",
    "parse_usage",
]
