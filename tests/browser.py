"""What every browser test shares: where screenshots go, and one look at a page
(a screenshot for people, axe-core's rules for the serious and critical
findings)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playwright.async_api import Page

ARTIFACTS = Path(os.environ.get("KUNDO_GDPR_ARTIFACTS", "test-artifacts"))


class Looks:
    """Screenshots pages to ARTIFACTS and keeps axe-core's serious and critical
    findings by page name; a test ends with `assert looks.violations == {}`.

    axe is injected as a script, which the app's CSP (script-src 'none')
    forbids: the browser context needs `bypass_csp=True`.
    """

    def __init__(self) -> None:
        from axe_playwright_python.async_playwright import Axe

        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.axe = Axe()
        self.violations: dict[str, list[str]] = {}

    async def look(self, page: Page, name: str) -> None:
        await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
        results = await self.axe.run(page)
        assert results.response["passes"], name  # axe did look at the page
        bad = [f"{v['id']}: {v['help']} ({len(v['nodes'])})"
               for v in results.response["violations"]
               if v["impact"] in ("serious", "critical")]
        if bad:
            self.violations[name] = bad
