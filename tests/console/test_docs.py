"""The API docs work air-gapped: every asset they load is the app's own (issue #18, item 8)."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient

URL = re.compile(r"""(?:src|href|spec-url|data-openapi-url)\s*=\s*["']([^"']+)["']""")


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_docs_load_only_local_assets(client: TestClient, page: str) -> None:
    response = client.get(page)
    assert response.status_code == 200
    html = response.text
    assert re.search(r"https?://", html) is None  # no CDN, no absolute URL at all
    references = URL.findall(html)
    assert references
    for reference in references:
        parts = urlsplit(reference)
        assert not parts.scheme and not parts.netloc, reference
        assert client.get(reference).status_code == 200, reference
    # What the vendored code might still fetch (ReDoc's badge from cdn.redoc.ly), the browser
    # may not: the policy names no other origin.
    policy = dict(
        part.strip().split(" ", 1)
        for part in response.headers["Content-Security-Policy"].split(";")
    )
    for directive in ("default-src", "script-src", "img-src", "connect-src", "font-src"):
        assert "http" not in policy[directive] and "*" not in policy[directive], directive
    assert policy["connect-src"] == "'self'"


@pytest.mark.parametrize(
    ("script", "switch"),
    [
        ("/static/docs/swagger-init.js", "validatorUrl: null"),  # no validator.swagger.io
        ("/static/docs/redoc-init.js", "disableTelemetry: true"),  # no otel.cloud.redocly.com
    ],
)
def test_the_start_up_scripts_send_nothing_anywhere(
    client: TestClient, script: str, switch: str
) -> None:
    text = client.get(script).text
    assert switch in text
    code = "\n".join(line for line in text.splitlines() if not line.startswith("//"))
    assert re.search(r"https?://", code) is None
    for imported in re.findall(r'from "([^"]+)"', code):
        assert imported.startswith("/static/vendor/")
        assert client.get(imported).status_code == 200


def test_the_document_is_still_served_and_lists_no_console_page(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert paths
    assert not any(p.startswith(("/accounts", "/login", "/logout", "/docs")) for p in paths)
    assert "/" not in paths
