"""A stand-in for ``httpx.post`` in the alert sink: records what would have been sent."""

from __future__ import annotations

from typing import Any

import httpx


class Webhook:
    def __init__(self) -> None:
        self.sent: list[Any] = []

    def __call__(self, url: str, **kwargs: Any) -> httpx.Response:
        self.sent.append({"url": url, **kwargs})
        return httpx.Response(200, request=httpx.Request("POST", url))
