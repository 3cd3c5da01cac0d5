"""Every page in a real browser, in both languages: a screenshot for people to look at
(test-artifacts/) and axe-core's accessibility rules, with no serious or critical
violation allowed."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import Engine

from kundo_gdpr.config import Config
from kundo_gdpr.web import make_app
from tests.browser import ARTIFACTS, Looks
from tests.test_pipeline import run_all, worker_for
from tests.test_web import PASSWORD, agents, erase_alice  # noqa: F401  (fixtures)
from tests.test_web_browser import chromium  # noqa: F401  (fixture)

pytestmark = pytest.mark.usefixtures("agents")
# (name, path) of each page; {ref} is a request waiting for review.
PUBLIC = [("login", "/login"), ("confirm-link", "/confirm/not-a-token"),
          ("download-link", "/downloads/not-a-token")]
SIGNED_IN = [("queue", "/"), ("queue-all", "/?view=all"), ("queue-mine", "/?view=mine"),
             ("queue-due", "/?view=due"), ("queue-overdue", "/?view=overdue"),
             ("overview", "/overview"),
             ("request", "/requests/{ref}"), ("approve", "/requests/{ref}/approve"),
             ("agents", "/agents"), ("account", "/account"), ("holds", "/holds"),
             ("schedules", "/schedules")]
# After approving: the request with the message, then done (with its undo window).
AFTER = [("request-approved", "/requests/{ref}?done=approved"),
         ("request-done", "/requests/{ref}")]


async def test_every_page_has_no_serious_accessibility_violation_in_either_language(
    aiohttp_server: Callable[..., Awaitable[Any]], config: Config, engine: Engine,
    erase_alice: str, chromium: str,  # noqa: F811
) -> None:
    from playwright.async_api import async_playwright

    server = await aiohttp_server(make_app(config, engine))
    base = f"http://{server.host}:{server.port}"
    looks = Looks()
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium, headless=True,
                                          args=["--no-sandbox"])
        # axe is injected as a script, which the app's CSP (script-src 'none') forbids.
        context = await browser.new_context(viewport={"width": 1366, "height": 768},
                                            bypass_csp=True)
        page = await context.new_page()

        async def check(name: str, path: str, lang: str) -> None:
            sep = "&" if "?" in path else "?"
            await page.goto(f"{base}{path.format(ref=erase_alice)}{sep}lang={lang}")
            await looks.look(page, f"{name}-{lang}")

        for lang in ("sv", "en"):
            for name, path in PUBLIC:
                await check(name, path, lang)
        await page.goto(f"{base}/login")
        await page.fill("input[name=email]", "adam@kundo.se")
        await page.fill("input[name=password]", PASSWORD)
        await page.click("form.stack button")
        for lang in ("sv", "en"):
            for name, path in SIGNED_IN:
                await check(name, path, lang)
        await page.goto(f"{base}/requests/{erase_alice}/approve")
        await page.click("#confirm-button")
        for lang in ("sv", "en"):
            await check(*AFTER[0], lang)
        await asyncio.to_thread(run_all, worker_for(config, engine))
        for lang in ("sv", "en"):
            await check(*AFTER[1], lang)
            assert await page.get_attribute("h1", "data-state") == "done"
        await browser.close()
    assert looks.violations == {}


async def test_four_eyes_in_the_browser(
    aiohttp_server: Callable[..., Awaitable[Any]], config: Config, engine: Engine,
    erase_alice: str, chromium: str,  # noqa: F811
) -> None:
    import dataclasses

    from playwright.async_api import async_playwright

    four_eyes = dataclasses.replace(config, policy=dataclasses.replace(
        config.policy, erase_needs_second_agent=True, erase_needs_admin=False))
    server = await aiohttp_server(make_app(four_eyes, engine))
    base = f"http://{server.host}:{server.port}"
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium, headless=True,
                                          args=["--no-sandbox"])

        async def agent(email: str) -> Any:
            context = await browser.new_context(locale="en-GB")
            page = await context.new_page()
            await page.goto(f"{base}/login")
            await page.fill("input[name=email]", email)
            await page.fill("input[name=password]", PASSWORD)
            await page.click("form.stack button")
            await page.goto(f"{base}/requests/{erase_alice}")
            return page

        anna = await agent("anna@kundo.se")
        await anna.click("#approve")
        assert "another agent must confirm" in (await anna.text_content("#confirm") or "")
        await anna.click("#confirm-button")
        assert "another agent has confirmed it" in (await anna.text_content("#flash") or "")
        assert await anna.get_attribute("h1", "data-state") == "needs_review"
        assert await anna.locator("#approve").count() == 0  # not offered twice
        await anna.screenshot(path=str(ARTIFACTS / "four-eyes-first-en.png"), full_page=True)
        await anna.goto(f"{base}/requests/{erase_alice}?done=approved_first&lang=sv")
        assert "annan agent" in (await anna.text_content("#flash") or "")
        await anna.screenshot(path=str(ARTIFACTS / "four-eyes-first-sv.png"), full_page=True)

        adam = await agent("adam@kundo.se")
        assert "anna@kundo.se has approved" in (await adam.text_content("#approve-box") or "")
        await adam.click("#approve")
        await adam.click("#confirm-button")
        assert "runs in the background" in (await adam.text_content("#flash") or "")
        assert await adam.get_attribute("h1", "data-state") == "approved"
        trail = await adam.text_content("#audit") or ""
        assert "Approved by a first agent (four eyes)" in trail
        assert "Confirmed by a second agent (four eyes)" in trail
        await browser.close()


# Whether the page scrolls sideways, and how many lines each reference takes.
LAYOUT = """() => ({
  overflow: document.documentElement.scrollWidth - window.innerWidth,
  refs: [...document.querySelectorAll("td.ref a, h1")].map(e => {
    const range = document.createRange();
    range.selectNodeContents(e);
    const lines = new Set([...range.getClientRects()].map(r => Math.round(r.top)));
    return [e.textContent, lines.size];
  }),
})"""

FOCUS = """() => { const e = document.activeElement, s = getComputedStyle(e);
  return [e.tagName + ' ' + e.textContent.trim(), s.outlineStyle, parseFloat(s.outlineWidth)]; }"""


@pytest.mark.parametrize("width,height", [(1280, 800), (1366, 768)])
async def test_the_queue_and_request_pages_fit_a_laptop_without_wrapping_references(
    aiohttp_server: Callable[..., Awaitable[Any]], config: Config, engine: Engine,
    erase_alice: str, chromium: str, width: int, height: int,  # noqa: F811
) -> None:
    from playwright.async_api import async_playwright

    server = await aiohttp_server(make_app(config, engine))
    base = f"http://{server.host}:{server.port}"
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium, headless=True,
                                          args=["--no-sandbox"])
        context = await browser.new_context(viewport={"width": width, "height": height},
                                            bypass_csp=True)  # for evaluate's script
        page = await context.new_page()
        await page.goto(f"{base}/login")
        await page.fill("input[name=email]", "adam@kundo.se")
        await page.fill("input[name=password]", PASSWORD)
        await page.click("form.stack button")
        # Taken, so the assignee column holds an address too.
        await page.goto(f"{base}/requests/{erase_alice}")
        await page.click("button[name=take]")
        for lang in ("sv", "en"):
            for path in ("/?view=all", "/?view=mine", f"/requests/{erase_alice}"):
                await page.goto(f"{base}{path}&lang={lang}" if "?" in path
                                else f"{base}{path}?lang={lang}")
                layout = await page.evaluate(LAYOUT)
                assert layout["overflow"] <= 0, (path, lang, layout)
                refs = [r for r in layout["refs"] if erase_alice in r[0]]
                assert refs and all(lines == 1 for _text, lines in refs), (path, lang, refs)
        # A keyboard user sees where they are: every control reached by Tab is outlined.
        await page.goto(f"{base}/")
        for _ in range(6):
            await page.keyboard.press("Tab")
            outline = await page.evaluate(FOCUS)
            assert outline[1] == "solid" and outline[2] >= 2, outline
        await browser.close()
