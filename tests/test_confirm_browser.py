"""The editor's confirmation page in a real browser (Chromium via Playwright):
the link from the mail opens a page with a button; pressing it confirms, once."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from kundo_gdpr.config import Config
from kundo_gdpr.stages import confirm
from kundo_gdpr.web import make_app
from tests.test_confirm import _request, asked, confirm_config  # noqa: F401  (fixtures)
from tests.test_web_browser import ARTIFACTS, chromium  # noqa: F401  (fixture)


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
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium, headless=True,
                                          args=["--no-sandbox"])
        page = await browser.new_page(locale="sv-SE")
        await page.goto(link)
        # Opening the link (what a mail scanner does too) confirms nothing.
        assert _request(factory).state == confirm.UNCONFIRMED
        await page.screenshot(path=str(ARTIFACTS / "confirm.png"), full_page=True)
        await page.click("button:has-text('Bekräfta begäran')")
        assert "är bekräftad" in (await page.text_content("[role=status]") or "")
        assert _request(factory).state == "approved"

        await page.go_back()
        await page.reload()
        assert "redan använts" in (await page.text_content("[role=alert]") or "")
        await page.screenshot(path=str(ARTIFACTS / "confirm-used.png"), full_page=True)
        await browser.close()
