"""An export request in a real browser (Debian's Chromium via Playwright), in Swedish
and English: the preview, the confirmation page, the message after confirming and the
result all speak of an export, and none of them of erasing. Each page is screenshotted
to test-artifacts/ and checked with axe-core (no serious or critical violation)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import Engine

from kundo_gdpr.config import Config
from kundo_gdpr.web import i18n, make_app
from tests.browser import Looks
from tests.test_pipeline import run_all, worker_for
from tests.test_web import PASSWORD, agents  # noqa: F401  (fixture)
from tests.test_web_approve import export_bertil  # noqa: F401  (fixture)
from tests.test_web_browser import chromium  # noqa: F401  (fixture)

pytestmark = pytest.mark.usefixtures("agents")
LANGS = ("sv", "en")
# Words of erasing, in any inflection, that an export's pages must not use.
ERASE_WORDS = {
    "en": re.compile(r"eras|delet|anonymi|remov|replac", re.IGNORECASE),
    "sv": re.compile(r"rader|anonymiser|ersät|ta bort|tas bort|borttag", re.IGNORECASE),
}
# Text of a region of the page as a reader sees it; the element may be missing.
TEXT_OF = "sel => { const e = document.querySelector(sel); return e ? e.innerText : null; }"


def _no_erase_words(lang: str, text: str | None, where: str) -> None:
    assert text, f"{where} ({lang}) is empty or missing"
    # The one sentence that says outright that nothing is erased is export wording.
    nothing = i18n.strings(lang)["export_goes_to"].format(sender="eva@cykelbolaget.se")
    found = ERASE_WORDS[lang].findall(text.replace(nothing, ""))
    assert not found, f"{where} ({lang}) says {found}: {text!r}"


async def test_an_export_is_approved_confirmed_and_done_in_export_words_in_both_languages(
    aiohttp_server: Callable[..., Awaitable[Any]], config: Config, engine: Engine,
    export_bertil: str, chromium: str,  # noqa: F811
) -> None:
    from playwright.async_api import Page, async_playwright

    server = await aiohttp_server(make_app(config, engine))
    base = f"http://{server.host}:{server.port}"
    request_page = f"{base}/requests/{export_bertil}"
    looks = Looks()
    look = looks.look

    async def text(page: Page, selector: str) -> str | None:
        found: str | None = await page.evaluate(TEXT_OF, selector)
        return found

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium, headless=True,
                                          args=["--no-sandbox"])
        # axe is injected as a script, which the app's CSP (script-src 'none') forbids.
        context = await browser.new_context(viewport={"width": 1366, "height": 768},
                                            bypass_csp=True)
        page = await context.new_page()
        await page.goto(f"{base}/login")
        await page.fill("input[name=email]", "anna@kundo.se")  # a plain agent
        await page.fill("input[name=password]", PASSWORD)
        await page.click("form.stack button")

        for lang in LANGS:
            t = i18n.strings(lang)
            await page.goto(f"{request_page}?lang={lang}")
            assert await page.get_attribute("h1", "data-state") == "needs_review"
            preview = await text(page, "section:has(#preview)")
            assert t["preview_export"] in (preview or "")
            assert t["preview_export_heading"] in (preview or "")
            _no_erase_words(lang, preview, "preview")
            _no_erase_words(lang, await text(page, "#approve-box"), "approve box")
            _no_erase_words(lang, await text(page, ".badges"), "badges")
            await look(page, f"export-request-{lang}")

            # Approve leads to the confirmation page; nothing has happened yet.
            await page.click("#approve")
            assert await text(page, "#confirm-kinds") == t["kind_export"]
            assert "bertil@example.org" in (await text(page, "#confirm-subjects") or "")
            channels = await text(page, "#confirm-channels") or ""
            for channel in ("mail", "forum", "chat"):
                assert t[f"channel_{channel}"] in channels
            counts = await text(page, "#confirm-counts") or ""
            assert re.search(r"\d", counts), counts  # the preview's counts, in words
            assert await page.locator("#irreversible").count() == 0
            assert await text(page, "#confirm-button") == t["confirm_export_button"]
            _no_erase_words(lang, await text(page, "main"), "confirmation page")
            await look(page, f"export-confirm-{lang}")
            await page.goto(request_page)  # back, for the other language

        # Confirm (in English, the last language chosen): a message, then the state.
        await page.click("#approve")
        await page.click("#confirm-button")
        assert "done=approved" in page.url
        assert await page.get_attribute("h1", "data-state") == "approved"
        approved_url = page.url
        for lang in LANGS:
            await page.goto(f"{approved_url}&lang={lang}")
            flash = await text(page, "#flash")
            expected = i18n.strings(lang)["done_approved_export"].format(
                sender="eva@cykelbolaget.se")
            assert flash == expected
            _no_erase_words(lang, flash, "message after confirming")
            await look(page, f"export-approved-{lang}")

        # The worker makes the export and sends it; the result says what it held.
        await asyncio.to_thread(run_all, worker_for(config, engine))
        for lang in LANGS:
            t = i18n.strings(lang)
            await page.goto(f"{request_page}?lang={lang}")
            assert await page.get_attribute("h1", "data-state") == "done"
            result = await text(page, "#result") or ""
            held = t["export_held"].split("{items}", 1)[0]
            assert held in result and "bertil@example.org" in result
            _no_erase_words(lang, result, "result")
            trail = await text(page, "#audit")
            _no_erase_words(lang, trail, "audit trail")
            # Every event in words: none falls back to its code ("Event: run started").
            assert t["event_other"].split("{what}")[0] not in (trail or "")
            _no_erase_words(lang, await text(page, "#replies"), "replies")
            await look(page, f"export-done-{lang}")
        await browser.close()
    assert looks.violations == {}
