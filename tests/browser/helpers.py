"""What the browser tests share: viewports, signing in, the axe-core check and screenshots.

Screenshots are written to docs/screenshots/ only when ADFLYWHEEL_SCREENSHOTS=1, so an ordinary
test run (CI included) leaves the tree clean; the README shows the committed ones.
"""

from __future__ import annotations

import io
import os
from functools import cache
from pathlib import Path
from typing import Any

from playwright.sync_api import FloatRect, Page, ViewportSize

DESKTOP = ViewportSize(width=1366, height=900)
PHONE = ViewportSize(width=390, height=844)
AXE = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"
SCREENSHOTS = Path(__file__).parents[2] / "docs" / "screenshots"
# axe's impact levels a page must not have any of (minor and moderate ones are reported only).
BLOCKING = frozenset({"serious", "critical"})
MAX_HEIGHT = 2400  # screenshots show a page's top: what a reader of the README looks at


def sign_in(page: Page, base_url: str, email: str, password: str) -> None:
    """Sign in through the login form, as a person would."""
    page.goto(base_url + "/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()


@cache
def _axe_source() -> str:
    return AXE.read_text(encoding="utf-8")


def axe_violations(page: Page) -> list[dict[str, Any]]:
    """The serious and critical violations axe-core (vendored, 4.14.1) finds on the page as
    it is now, each with the elements it points at."""
    # Evaluated through the DevTools protocol, not as a <script> tag: the console's Content
    # Security Policy (script-src 'self') rightly refuses inline scripts.
    page.evaluate(_axe_source())
    found: list[dict[str, Any]] = page.evaluate(
        """async () => {
            const result = await axe.run(document, {resultTypes: ["violations"]});
            return result.violations.map(v => ({
                id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.slice(0, 5).map(n => n.target.join(" ")),
            }));
        }"""
    )
    return [v for v in found if v["impact"] in BLOCKING]


def assert_accessible(page: Page) -> None:
    violations = axe_violations(page)
    assert not violations, f"{page.url}: " + "; ".join(
        f"{v['id']} ({v['impact']}): {v['help']} at {v['nodes']}" for v in violations
    )


def screenshots_wanted() -> bool:
    return os.environ.get("ADFLYWHEEL_SCREENSHOTS") == "1"


def screenshot(page: Page, name: str) -> None:
    """The page at desktop and at phone width, as docs/screenshots/<name>-desktop.png and
    <name>-phone.png (only with ADFLYWHEEL_SCREENSHOTS=1): its top ``MAX_HEIGHT`` pixels, in
    128 colours (a third of the bytes, the same picture for flat UI). Leaves it at desktop width."""
    if not screenshots_wanted():
        return
    from PIL import Image  # the dev install has Pillow; only screenshots need it

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
        page.set_viewport_size(size)
        page.wait_for_load_state("networkidle")
        height = min(MAX_HEIGHT, int(page.evaluate("document.documentElement.scrollHeight")))
        clip = FloatRect(x=0, y=0, width=size["width"], height=height)
        png = page.screenshot(full_page=True, clip=clip)
        image = Image.open(io.BytesIO(png)).convert("RGB")
        flat = image.quantize(
            colors=128, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE
        )
        flat.save(SCREENSHOTS / f"{name}-{label}.png", optimize=True)
    page.set_viewport_size(DESKTOP)
