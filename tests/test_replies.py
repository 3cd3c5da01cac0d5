"""Replies read back as we sent them: the header a receiver matches on is exact, the
language header survives, and counts read as sentences with the right plurals."""

from __future__ import annotations

import email
import email.policy
import re

import pytest

from kundo_gdpr.replies import render
from kundo_gdpr.replies.render import Envelope, FileAttachment, make_message, new_message_id

CONTEXT = {"reference": "GDPR-2026-00001", "kinds": ["erase"]}


def test_a_reply_message_id_reads_back_exactly_as_stored() -> None:
    # Receivers thread and dedupe on the Message-ID; a folded header read back
    # with a leading space no longer matches the one in our outbox row. The
    # random part and the purpose vary, so try many.
    purposes = ("receipt", "rejected", "done", "deadline_extended", "rejected.resend")
    for number in range(1000):
        purpose = f"GDPR-2026-{number:05}.{purposes[number % len(purposes)]}"
        domain = ("gdpr.kundo.se", "mail.gdpr.example-desk.com")[number % 2]  # 13 and 25 chars
        message_id = new_message_id(purpose, domain)
        envelope = Envelope("support@kundo.se", "Kundo", "eva@cykelbolaget.se", message_id)
        raw = make_message("confirm_expired", "sv", envelope, CONTEXT).as_bytes()
        back = email.message_from_bytes(raw.replace(b"\n", b"\r\n"), policy=email.policy.default)
        assert back["Message-ID"] == message_id


def test_message_ids_are_unique_and_sort_in_the_order_they_were_made() -> None:
    # The outbox folder names files by Message-ID; sorted, they read as a history.
    ids = [new_message_id("GDPR-2026-00001.receipt", "gdpr.kundo.se") for _ in range(10_000)]
    assert len(set(ids)) == 10_000
    times = [i.split(".", 1)[0] for i in ids]
    assert times == sorted(times)


RESULT = {"erase": {"alice@example.com": {
    "forum": {"posts": 3, "redacted": 1, "attachments": 0, "mentions": 0, "name_mentions": 0},
    "chat": {"sessions": 1, "messages": 0, "attachments": 0, "mentions": 0, "name_mentions": 0},
    "mail": {"conversations": 0, "messages": 0, "attachments": 0, "mentions": 0,
             "name_mentions": 0},
}}, "export": {"bertil@example.org": {"mail": 1, "forum": 0, "chat": 21}}}


@pytest.mark.parametrize("language,expected", [
    ("en", ["- Forum: 3 posts were deleted and 1 post was anonymised because others had "
            "replied to it.", "- Chat: 1 chat was deleted with all its messages.",
            "Export for bertil@example.org: 1 email message and 21 chat messages."]),
    ("sv", ["- Forum: 3 inlägg raderades och 1 inlägg anonymiserades eftersom andra hade "
            "svarat på det.", "- Chatt: 1 chatt raderades med alla sina meddelanden.",
            "Registerutdrag för bertil@example.org: 1 e-postmeddelande och 21 "
            "chattmeddelanden."]),
])
def test_the_done_reply_says_the_counts_in_sentences_without_zero_lines(
    language: str, expected: list[str]
) -> None:
    _subject, body = render.render("done", language, {
        "reference": "GDPR-2026-00001", "kinds": ["erase", "export"], "result": RESULT})
    for line in expected:
        assert line in body, body
    assert not re.search(r"\b0 ", body), body  # no zero lines
    assert "E-post:" not in body and "Email:" not in body  # nothing erased in mail


@pytest.mark.parametrize("attachments", [(), (FileAttachment("a.zip", "application/zip", b"PK"),)])
def test_the_content_language_header_survives_the_body_and_attachments(
    attachments: tuple[FileAttachment, ...]
) -> None:
    envelope = Envelope("support@kundo.se", "Kundo", "eva@cykelbolaget.se", "<x@gdpr.kundo.se>")
    msg = render.make_message("done", "sv", envelope, {
        "reference": "GDPR-2026-00001", "kinds": ["export"],
        "result": {"export": {"bertil@example.org": {"mail": 2}}}}, attachments)
    parsed = email.message_from_bytes(msg.as_bytes(), policy=email.policy.default)
    assert parsed["Content-Language"] == "sv"
