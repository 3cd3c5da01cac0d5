"""Counted phrases follow each language's plural rule: 0, 1, 2, 5 and 21 items."""

from __future__ import annotations

import pytest

from kundo_gdpr import i18n
from kundo_gdpr.web.i18n import strings

EXPECTED = {
    "en": {0: "0 posts were deleted", 1: "1 post was deleted", 2: "2 posts were deleted",
           5: "5 posts were deleted", 21: "21 posts were deleted"},
    "sv": {0: "0 chattar raderades med alla sina meddelanden",
           1: "1 chatt raderades med alla sina meddelanden",
           2: "2 chattar raderades med alla sina meddelanden",
           5: "5 chattar raderades med alla sina meddelanden",
           21: "21 chattar raderades med alla sina meddelanden"},
}
KEYS = {"en": "past.posts", "sv": "past.sessions"}


@pytest.mark.parametrize("language", ["sv", "en"])
@pytest.mark.parametrize("n", [0, 1, 2, 5, 21])
def test_counted_phrases_take_the_languages_plural_form(language: str, n: int) -> None:
    assert i18n.counted(language, KEYS[language], n) == EXPECTED[language][n]


@pytest.mark.parametrize("language,n,one", [
    ("sv", 0, False), ("sv", 1, True), ("sv", 2, False), ("sv", 5, False), ("sv", 21, False),
    ("en", 0, False), ("en", 1, True), ("en", 2, False), ("en", 5, False), ("en", 21, False),
])
def test_the_plural_rule_picks_one_only_for_exactly_one(language: str, n: int, one: bool) -> None:
    assert (i18n.PLURAL_RULES[language](n) == "one") is one


@pytest.mark.parametrize("language", ["sv", "en"])
def test_every_counted_phrase_has_both_forms_and_the_number(language: str) -> None:
    counts = i18n.strings(language)["counts"]
    for tense in ("future", "past", "export"):
        for key, forms in counts[tense].items():
            assert set(forms) == {"one", "other"}, (tense, key)
            assert all("{n}" in form for form in forms.values()), (tense, key)
    web = strings(language)
    for key in [k for k in web if k.endswith("_one")]:
        assert key.replace("_one", "_other") in web, key


@pytest.mark.parametrize("language,n,expected", [
    ("en", 1, "1 day left"), ("en", 21, "21 days left"), ("en", 0, "0 days left"),
    ("sv", 1, "1 dag kvar"), ("sv", 5, "5 dagar kvar"), ("sv", 21, "21 dagar kvar"),
])
def test_days_left_on_the_queue(language: str, n: int, expected: str) -> None:
    web = strings(language)
    forms = {"one": web["days_left_one"], "other": web["days_left_other"]}
    assert i18n.plural(language, n, forms) == expected


def test_a_sentence_leaves_zero_items_out_and_joins_the_rest() -> None:
    items = {"posts": 3, "redacted": 1, "attachments": 0, "mentions": 0, "name_mentions": 0}
    assert i18n.erase_sentence("en", items, "past") == (
        "3 posts were deleted and 1 post was anonymised because others had replied to it")
    assert i18n.erase_sentence("sv", items, "past") == (
        "3 inlägg raderades och 1 inlägg anonymiserades eftersom andra hade svarat på det")
    assert i18n.erase_sentence("en", dict.fromkeys(items, 0), "past") == ""
    assert i18n.export_sentence("sv", {"mail": 1, "forum": 0, "chat": 21}) == (
        "1 e-postmeddelande och 21 chattmeddelanden")
