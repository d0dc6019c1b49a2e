"""The API docs (``/docs``: Swagger UI, ``/redoc``: ReDoc) from the package's own copies.

FastAPI's built-in pages load their scripts from a CDN and are blank air-gapped; these load
``/static/vendor/...`` and a small start-up script from ``/static/docs/`` (no inline script), and
read the document at ``/openapi.json``. Neither calls out: Swagger UI's validator badge and
ReDoc 3's telemetry (traces to Redocly's collector by default) are switched off, and the pages'
Content-Security-Policy lets the browser fetch nothing from another origin.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

router = APIRouter(include_in_schema=False)

# The docs' own policy: scripts from the app only, and no request, image or font from anywhere
# else (ReDoc 3 shows a badge image from cdn.redoc.ly whatever its options say; the browser
# never asks for it). Both renderers inject inline styles.
DOCS_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
_HEADERS = {
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": DOCS_CSP,
}

SWAGGER_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>adflywheel API · Swagger UI</title>
  <link rel="stylesheet" href="/static/vendor/swagger-ui/swagger-ui.css">
</head>
<body>
  <main><div id="swagger-ui" data-openapi-url="/openapi.json"></div></main>
  <script src="/static/vendor/swagger-ui/swagger-ui-bundle.js"></script>
  <script src="/static/docs/swagger-init.js"></script>
</body>
</html>
"""

REDOC_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>adflywheel API · ReDoc</title>
</head>
<body>
  <div id="redoc" data-openapi-url="/openapi.json"></div>
  <script type="module" src="/static/docs/redoc-init.js"></script>
</body>
</html>
"""


@router.get("/docs")
def swagger_ui() -> HTMLResponse:
    return HTMLResponse(SWAGGER_PAGE, headers=_HEADERS)


@router.get("/redoc")
def redoc() -> HTMLResponse:
    return HTMLResponse(REDOC_PAGE, headers=_HEADERS)
