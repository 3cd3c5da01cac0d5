"""More than `service.digest_after` held replies to one address go out as one digest
listing each reference and its state; replies with exported data stay held."""

from __future__ import annotations

import email
import email.policy
import re
from pathlib import Path

from sqlalchemy import Engine, select

from kundo_gdpr import db
from kundo_gdpr.models import Event, Request
from kundo_gdpr.replies.render import render
from tests.helpers import EN_ASSERTION, drop, request_mail
from tests.test_mailbox_limits import EVA, erase_request, replies, run, setup

REFERENCE = re.compile(r"^- (GDPR-\S+) \((\w[^)]*)\): (.+)$", re.M)


def export_request(n: int) -> bytes:
    body = (f"Hello,\n\nPlease export everything bertil@example.org wrote in the forum.\n\n"
            f"{EN_ASSERTION}\n")
    return request_mail(EVA, body, message_id=f"<digest-export-{n}@example.se>")


def sent_digests(tmp_path: Path) -> list[email.message.EmailMessage]:
    found = []
    for path in sorted((tmp_path / "outbox").glob("*.eml")):
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if msg["X-Kundo-GDPR-Reply"] == "digest":
            found.append(msg)
    return found


def test_more_than_five_held_replies_go_out_as_one_digest_listing_each_request(
    tmp_path: Path, db_url: str, engine: Engine, world: None,
) -> None:
    config, _ = setup(tmp_path, db_url, service={"max_replies_per_sender_per_hour": 2},
                      policy={"auto_approve": False})
    for n in range(8):
        drop(tmp_path / "inbox", erase_request(EVA, "alice@example.com", n), f"eva-{n}")
    run(config, engine)

    rows = [r for r in replies(engine) if r.to_addr == "eva@cykelbolaget.se"]
    assert [r.state for r in rows] == ["sent"] * 2 + ["bundled"] * 6 + ["sent"]
    (digest,) = sent_digests(tmp_path)
    body = digest.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert digest["Subject"] == "[Kundo] 6 svar om era begäranden, i ett mejl"
    listed = REFERENCE.findall(body)
    with db.session_factory(engine)() as session:
        by_id = {r.id: r for r in session.scalars(select(Request))}
        expected = [(by_id[r.request_id].reference, "mottagningsbekräftelse",
                     "väntar på granskning av en handläggare") for r in rows[2:8]]
        assert listed == expected
        bundled = session.scalars(select(Event).where(Event.action == "reply_bundled")).all()
        assert sorted(e.request_id for e in bundled) == sorted(r.request_id for r in rows[2:8])
        assert {e.detail["digest"] for e in bundled} == {rows[8].message_id}
    proofs = sorted(p.get_filename() for p in digest.iter_attachments())
    assert proofs == sorted(f"{ref}-receipt-proof.json" for ref, _, _ in expected)
    run(config, engine)  # nothing is held any more: no second digest
    assert len(sent_digests(tmp_path)) == 1


def test_replies_with_exported_data_stay_held_and_the_digest_says_they_follow(
    tmp_path: Path, db_url: str, engine: Engine, world: None,
) -> None:
    config, _ = setup(tmp_path, db_url, service={"max_replies_per_sender_per_hour": 1})
    for n in range(6):
        drop(tmp_path / "inbox", export_request(n), f"export-{n}")
    run(config, engine)

    rows = replies(engine)
    held = [r for r in rows if r.state == "held"]
    assert held and all(r.purpose == "done" for r in held)  # they carry the export
    assert all(r.state in ("sent", "bundled") for r in rows if r.purpose != "done"
               and r.state != "held")
    digests = sent_digests(tmp_path)
    assert digests
    text = "\n".join(d.get_body(("plain",)).get_content() for d in digests)  # type: ignore[union-attr]
    with db.session_factory(engine)() as session:
        references = {r.id: r.reference for r in session.scalars(select(Request))}
    # The digest names the results held when it went out (how many depends on how far
    # the runs had come), in the right number, and each of them is still held.
    (line,) = [x for x in text.splitlines() if "exported data" in x]
    named = re.findall(r"GDPR-\d{4}-\d{5}", line)
    assert named and set(named) <= {references[row.request_id] for row in held}
    if len(named) == 1:
        assert line.startswith("1 reply carries exported data and follows in its own mail")
    else:
        assert line.startswith(f"{len(named)} replies carry exported data and follow in "
                               "their own mails")


def test_the_digest_counts_in_both_languages() -> None:
    one = {"items": [{"reference": "GDPR-1", "purpose": "done", "state": "done"}],
           "waiting": []}
    two = {"items": one["items"] * 2, "waiting": ["GDPR-3"]}
    assert render("digest", "en", one)[0] == "[Kundo] 1 reply about your requests, in one mail"
    assert render("digest", "en", two)[0] == "[Kundo] 2 replies about your requests, in one mail"
    assert "1 reply carries exported data and follows in its own mail" in render(
        "digest", "en", two)[1]
    assert render("digest", "sv", one)[0] == "[Kundo] 1 svar om era begäranden, i ett mejl"
    assert "- GDPR-1 (resultat): utförd" in render("digest", "sv", one)[1]
    assert "1 svar innehåller exporterade uppgifter och skickas i ett eget mejl" in render(
        "digest", "sv", two)[1]
