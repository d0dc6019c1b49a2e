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


def test_the_swagger_start_up_script_sends_the_document_nowhere(client: TestClient) -> None:
    script = client.get("/static/docs/swagger-init.js").text
    assert "validatorUrl: null" in script
    assert re.search(r"https?://", script) is None


def test_the_document_is_still_served_and_lists_no_console_page(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert paths
    assert not any(p.startswith(("/accounts", "/login", "/logout", "/docs")) for p in paths)
    assert "/" not in paths
