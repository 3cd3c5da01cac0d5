"""The review queue in a real browser (Debian's Chromium, driven by Playwright)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from kundo_gdpr.config import Config
from kundo_gdpr.web import make_app
from tests.browser import ARTIFACTS
from tests.conftest import need_server
from tests.helpers import outbox_messages
from tests.test_pipeline import run_all, worker_for
from tests.test_web import PASSWORD, agents, erase_alice  # noqa: F401  (fixtures)

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture
def chromium() -> str:
    if not Path(CHROMIUM).exists():
        need_server("Chromium at /usr/bin/chromium")
    return CHROMIUM


async def test_an_agent_corrects_a_subject_approves_and_the_done_reply_goes_out(
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
        await page.fill("input[name=email]", "adam@kundo.se")
        await page.fill("input[name=password]", PASSWORD)
        await page.click("button:has-text('Sign in')")
        await page.screenshot(path=str(ARTIFACTS / "queue.png"), full_page=True)
        await page.click(f"a:has-text('{erase_alice}')")
        await page.screenshot(path=str(ARTIFACTS / "request.png"), full_page=True)

        # The editor meant bertil, not alice: the agent corrects the address.
        await page.fill("#correct textarea[name=subjects]", "bertil@example.org")
        await page.click("#correct button")
        assert await page.text_content("#subjects") == "bertil@example.org"
        assert "corrected" in (await page.text_content("#audit") or "")
        assert "bertil@example.org" in (await page.text_content("#preview") or "")

        await page.click("button:has-text('Approve')")
        # The confirmation page says what will happen before anything does.
        assert "bertil@example.org" in (await page.text_content("#confirm-subjects") or "")
        assert await page.text_content("#confirm-kinds") == "erasure"
        assert "cannot be undone" in (await page.text_content("#irreversible") or "")
        await page.screenshot(path=str(ARTIFACTS / "approve-confirm.png"), full_page=True)
        await page.click("#confirm-button")
        assert "runs in the background" in (await page.text_content("#flash") or "")
        assert await page.get_attribute("h1", "data-state") == "approved"
        assert "approved" in (await page.text_content("h1") or "")
        assert "adam@kundo.se" in (await page.text_content("#audit") or "")

        # The mail loops run the approved request and deliver its reply.
        await asyncio.to_thread(run_all, worker_for(config, engine))
        await page.reload()
        assert await page.get_attribute("h1", "data-state") == "done"
        replies = await page.text_content("#replies") or ""
        assert "done" in replies and "eva@cykelbolaget.se" in replies
        await page.screenshot(path=str(ARTIFACTS / "request-done.png"), full_page=True)

        await page.click("a:has-text('Overview')")
        assert await page.locator("svg").count() == 2
        await page.screenshot(path=str(ARTIFACTS / "overview.png"), full_page=True)
        await browser.close()

    sent = [m for m in outbox_messages(config.path(config.outbox.folder.path))
            if f".{erase_alice}.done@" in str(m["Message-ID"])]
    assert len(sent) == 1
    done = sent[0]
    assert done["To"] == "eva@cykelbolaget.se"
    body = done.get_body()
    assert body is not None
    text = str(body.get_content())
    assert "bertil@example.org" in text and "alice@example.com" not in text
