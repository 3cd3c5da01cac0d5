"""The review queue in a real browser (Debian's Chromium, driven by Playwright)."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from kundo_gdpr.config import Config
from kundo_gdpr.web import make_app
from tests.conftest import need_server
from tests.test_web import PASSWORD, agents, erase_alice  # noqa: F401  (fixtures)

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(os.environ.get("KUNDO_GDPR_ARTIFACTS", "test-artifacts"))


@pytest.fixture
def chromium() -> str:
    if not Path(CHROMIUM).exists():
        need_server("Chromium at /usr/bin/chromium")
    return CHROMIUM


async def test_an_agent_signs_in_opens_a_request_and_approves_it(
    aiohttp_server: Callable[..., Awaitable[Any]],
    config: Config,
    engine: Engine,
    agents: None,  # noqa: F811
    erase_alice: str,  # noqa: F811
    chromium: str,
) -> None:
    from playwright.async_api import async_playwright

    server = await aiohttp_server(make_app(config, engine))
    base = f"http://{server.host}:{server.port}"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium, headless=True,
                                          args=["--no-sandbox"])
        page = await browser.new_page(locale="en-GB")
        await page.goto(f"{base}/")
        await page.fill("input[name=email]", "anna@kundo.se")
        await page.fill("input[name=password]", PASSWORD)
        await page.click("button:has-text('Sign in')")
        await page.click(f"a:has-text('{erase_alice}')")
        await page.screenshot(path=str(ARTIFACTS / "request-before.png"), full_page=True)
        await page.click("button:has-text('Approve')")
        heading = await page.text_content("h1")
        assert heading is not None and "approved" in heading
        assert "anna@kundo.se" in (await page.text_content("#audit") or "")
        await page.goto(f"{base}/")
        await page.screenshot(path=str(ARTIFACTS / "queue.png"), full_page=True)
        await browser.close()
