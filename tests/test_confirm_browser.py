"""The editor's confirmation page in a real browser (Chromium via Playwright):
the link from the mail opens a page with a button; pressing it confirms, once.
Both languages are screenshotted and checked with axe-core (no serious or critical
violation)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from kundo_gdpr.config import Config
from kundo_gdpr.stages import confirm
from kundo_gdpr.web import make_app
from tests.browser import Looks
from tests.test_confirm import _request, asked, confirm_config  # noqa: F401  (fixtures)
from tests.test_web_browser import chromium  # noqa: F401  (fixture)


async def test_the_editor_opens_the_link_presses_the_button_and_a_second_press_is_refused(
    aiohttp_server: Callable[..., Awaitable[Any]],
    asked: str,  # noqa: F811
    confirm_config: Config,  # noqa: F811
    engine: Engine,
    factory: sessionmaker[Session],
    chromium: str,  # noqa: F811
) -> None:
    from playwright.async_api import async_playwright

    server = await aiohttp_server(make_app(confirm_config, engine))
    link = f"http://{server.host}:{server.port}/confirm/{asked}"
    looks = Looks()
    look = looks.look

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium, headless=True,
                                          args=["--no-sandbox"])
        # axe is injected as a script, which the app's CSP (script-src 'none') forbids.
        context = await browser.new_context(locale="sv-SE", bypass_csp=True,
                                            viewport={"width": 1366, "height": 768})
        page = await context.new_page()
        for lang in ("en", "sv"):
            await page.goto(f"{link}?lang={lang}")
            await look(page, f"confirm-{lang}")
        # Opening the link (what a mail scanner does too) confirms nothing.
        assert _request(factory).state == confirm.UNCONFIRMED
        await page.click("button:has-text('Bekräfta begäran')")
        assert "är bekräftad" in (await page.text_content("[role=status]") or "")
        assert _request(factory).state == "approved"
        await look(page, "confirm-done-sv")

        await page.go_back()
        await page.reload()
        assert "redan använts" in (await page.text_content("[role=alert]") or "")
        for lang in ("sv", "en"):
            await page.goto(f"{link}?lang={lang}")
            await look(page, f"confirm-used-{lang}")
        assert "already been used" in (await page.text_content("[role=alert]") or "")
        await browser.close()
    assert looks.violations == {}
