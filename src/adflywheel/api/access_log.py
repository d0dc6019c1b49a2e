"""The access log without query strings: a key sent as ``?api_key=…`` (by mistake: the API only
reads ``Authorization``) or a token in a query must not land in a log file.

uvicorn writes one record per request on the ``uvicorn.access`` logger with the arguments
``(client, method, path_with_query, http_version, status)``; ``DropQueryStrings`` cuts the
path at ``?`` before any handler formats it. ``log_config`` is uvicorn's own logging
configuration with that filter on the access logger, for ``adflywheel serve``; with
``log_format="json"`` every handler writes one JSON object per line (``observability/logs.py``)
and the service's own loggers (``adflywheel.*``, through the root) are written too.
"""

from __future__ import annotations

import copy
import logging
from typing import Any, Literal

ACCESS_LOGGER = "uvicorn.access"


class DropQueryStrings(logging.Filter):
    """Keeps every access record, with its path's query string replaced by ``?…``."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            path, mark, _ = args[2].partition("?")
            if mark:
                record.args = (*args[:2], f"{path}?…", *args[3:])
        return True


def log_config(log_format: Literal["text", "json"] = "text") -> dict[str, Any]:
    """uvicorn's default logging configuration, its access log without query strings."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["drop_query_strings"] = {"()": DropQueryStrings}
    config["loggers"][ACCESS_LOGGER]["filters"] = ["drop_query_strings"]
    if log_format == "json":
        json_formatter = {"()": "adflywheel.services.observability.logs.JsonFormatter"}
        config["formatters"] = {"default": json_formatter, "access": dict(json_formatter)}
        config["root"] = {"handlers": ["default"], "level": "INFO"}
    return config
