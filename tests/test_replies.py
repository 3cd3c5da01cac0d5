"""Replies read back as we sent them: the header a receiver matches on is exact."""

from __future__ import annotations

import email
import email.policy

from kundo_gdpr.replies.render import Envelope, make_message, new_message_id

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
