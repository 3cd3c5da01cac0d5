"""End to end on embedded parts: Maildir in, the database, .eml files out."""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import openpyxl
import pytest
from sqlalchemy import Engine, func, or_, select
from sqlalchemy.orm import Session, sessionmaker

from kundo_gdpr.config import Config
from kundo_gdpr.models import (
    ChatSession,
    Event,
    ForumPost,
    InboundMail,
    MailConversation,
    OutboundMail,
    Request,
)
from kundo_gdpr.replies.transports import FolderTransport
from kundo_gdpr.stages.driver import Worker, make_source
from tests.conftest import make_config
from tests.helpers import (
    EN_ASSERTION,
    SV_ASSERTION,
    delivered,
    drop,
    outbox_messages,
    request_mail,
)

ERASE_ALICE = (
    "Hej!\n\nVår kund alice@example.com vill bli bortglömd. Radera allt i forum, "
    f"e-post och chatt.\n\n{SV_ASSERTION}\n\nMed vänliga hälsningar\nEva\n"
)
EXPORT_BERTIL = (
    "Hello,\n\nPlease export everything bertil@example.org wrote in mail, forum "
    f"posts and chats.\n\n{EN_ASSERTION}\n\nBest regards\nEva\n"
)


def worker_for(config: Config, engine: Engine) -> Worker:
    return Worker(config, engine, make_source(config),
                  FolderTransport(config.path(config.outbox.folder.path)))


def run_all(worker: Worker) -> None:
    while worker.run_once():
        pass


@pytest.fixture
def auto_config(tmp_path: Path, db_url: str) -> Config:
    # These mails are unsigned; tests/test_auth.py covers authentication.
    return make_config(tmp_path, db_url, policy={"auto_approve": True}, auth={"require": False})


def fingerprint(session: Session, exclude: str) -> str:
    """A checksum of every desk item not belonging to `exclude`."""
    rows: list[str] = []
    for model, column in ((ForumPost, ForumPost.author_email),
                          (MailConversation, MailConversation.customer_email),
                          (ChatSession, ChatSession.visitor_email)):
        stmt = select(model).where(func.lower(column) != exclude).order_by(model.id)
        for item in session.scalars(stmt):
            rows.append(repr(sorted((k, str(v)) for k, v in vars(item).items()
                                    if not k.startswith("_"))))
    return hashlib.sha256("\n".join(rows).encode()).hexdigest()


def test_it_erases_the_subject_everywhere_and_leaves_everyone_else(
    world: None, auto_config: Config, engine: Engine, factory: sessionmaker[Session]
) -> None:
    with factory() as session:
        before = fingerprint(session, "alice@example.com")
    inbox = auto_config.path("var/inbox")
    drop(inbox, request_mail("Eva Ek <eva@cykelbolaget.se>", ERASE_ALICE,
                             message_id="<erase-1@cykelbolaget.se>"), "erase-1")
    run_all(worker_for(auto_config, engine))

    with factory() as session:
        request = session.scalars(select(Request)).one()
        assert request.state == "done"
        assert request.reference and request.reference.startswith("GDPR-2026-")
        # Alice's items in Cykelbolaget's channels are gone ...
        alice = "alice@example.com"
        org = request.organization_id
        for model, column in ((MailConversation, MailConversation.customer_email),
                              (ChatSession, ChatSession.visitor_email)):
            left = session.scalar(select(func.count()).select_from(model).where(
                func.lower(column) == alice, model.channel_id.in_(
                    [c.channel_id for c in request.channels])))
            assert left == 0
        posts = session.scalars(select(ForumPost).where(ForumPost.author_email == alice,
                                ForumPost.channel_id.in_([c.channel_id for c in request.channels])))
        assert list(posts) == []
        # ... her opening post with others' replies is kept, anonymised.
        redacted = session.scalars(select(ForumPost).where(
            ForumPost.body == "[Inlägget har tagits bort på begäran.]")).all()
        assert len(redacted) == 1 and redacted[0].author_email is None
        assert redacted[0].author_ip is None
        # ... her items at the other controller are untouched.
        elsewhere = session.scalar(select(func.count()).select_from(ChatSession).where(
            ChatSession.visitor_email == alice))
        assert elsewhere == 1
        assert org is not None
        # Everyone else's items are byte for byte the same (the redacted opener
        # had Alice's address, so it is outside this checksum).
        assert fingerprint(session, alice) == before
        assert request.result is not None
        counts = request.result["erase"][alice]
        assert counts["mail"]["conversations"] == 1
        assert counts["chat"]["sessions"] == 1
        assert counts["forum"]["redacted"] == 1

    replies = outbox_messages(auto_config.path("var/outbox"))
    assert [m["Subject"] for m in replies] == [
        f"[{request.reference}] Vi har tagit emot er begäran",
        f"[{request.reference}] Er begäran är utförd",
    ]
    for reply in replies:
        assert reply["To"] == "eva@cykelbolaget.se"
        assert reply["In-Reply-To"] == "<erase-1@cykelbolaget.se>"
        assert "<erase-1@cykelbolaget.se>" in reply["References"]
        assert reply["Auto-Submitted"] == "auto-replied"
        assert reply["Message-ID"].endswith("@gdpr.kundo.se>")
    assert len({r["Message-ID"] for r in replies}) == 2
    done_body = replies[1].get_body(("plain",))
    assert done_body is not None
    assert "1 ärende raderades med alla sina meddelanden" in done_body.get_content()


def test_it_exports_an_xlsx_in_the_requests_language(
    world: None, auto_config: Config, engine: Engine, factory: sessionmaker[Session]
) -> None:
    drop(auto_config.path("var/inbox"),
         request_mail("olle@bokhandeln.se", EXPORT_BERTIL, subject="Data export"), "x1")
    run_all(worker_for(auto_config, engine))
    replies = outbox_messages(auto_config.path("var/outbox"))
    done = replies[-1]
    assert done["Subject"].endswith("Your request has been carried out")
    # Bertil's items have attachments, so the export comes as one .zip.
    (attachment,) = delivered(done)
    assert attachment.get_filename().endswith(".zip")
    archive = zipfile.ZipFile(io.BytesIO(attachment.get_content()))
    (xlsx,) = [n for n in archive.namelist() if n.endswith(".xlsx")]
    workbook = openpyxl.load_workbook(io.BytesIO(archive.read(xlsx)))
    assert workbook.sheetnames == ["Summary", "Email", "Forum", "Chat"]
    summary = {row[0]: row[1] for row in workbook["Summary"].iter_rows(values_only=True)}
    assert summary["Data subject"] == "bertil@example.org"
    assert summary["Controller"] == "Bokhandeln i Norr"
    chat = list(workbook["Chat"].iter_rows(values_only=True))
    assert chat[0][-1] == "Text"
    with factory() as session:
        # Both directions of Bertil's conversation, and his chat, all exported.
        assert len(chat) - 1 == 2
        mail_rows = list(workbook["Email"].iter_rows(values_only=True))[1:]
        assert {r[2] for r in mail_rows} == {"in", "out"}
        forum_rows = list(workbook["Forum"].iter_rows(values_only=True))[1:]
        stored = session.scalar(select(func.count()).select_from(ForumPost).where(
            ForumPost.author_email == "bertil@example.org",
            ForumPost.channel_id.in_([c.channel_id for c in
                                      session.scalars(select(Request)).one().channels])))
        assert len(forum_rows) == stored
        # Nothing was erased by an export.
        assert session.scalar(select(func.count()).select_from(ChatSession).where(
            ChatSession.visitor_email == "bertil@example.org")) == 2


def test_it_rejects_a_request_without_the_assertion_and_says_how_to_fix_it(
    world: None, auto_config: Config, engine: Engine, factory: sessionmaker[Session]
) -> None:
    body = "Hej,\n\nRadera alice@example.com ur forumet.\n\nMvh Eva\n"
    drop(auto_config.path("var/inbox"), request_mail("eva@cykelbolaget.se", body), "r1")
    run_all(worker_for(auto_config, engine))
    with factory() as session:
        request = session.scalars(select(Request)).one()
        assert request.state == "rejected"
        assert request.problems == ["missing_assertion"]
        assert session.scalar(select(func.count()).select_from(ForumPost).where(
            ForumPost.author_email == "alice@example.com")) > 0
    (reply,) = outbox_messages(auto_config.path("var/outbox"))
    text = reply.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert SV_ASSERTION in text
    assert "Meningen om identitet saknas" in text


def test_it_rejects_a_sender_who_is_not_an_editor(
    world: None, auto_config: Config, engine: Engine, factory: sessionmaker[Session]
) -> None:
    drop(auto_config.path("var/inbox"),
         request_mail("mallory@example.net", ERASE_ALICE), "r1")
    run_all(worker_for(auto_config, engine))
    with factory() as session:
        request = session.scalars(select(Request)).one()
        assert request.state == "rejected"
        assert "not_editor" in request.problems
        assert session.scalar(select(func.count()).select_from(ChatSession).where(
            ChatSession.visitor_email == "alice@example.com")) == 2


def test_without_auto_approve_a_valid_request_waits_for_review(
    world: None, config: Config, engine: Engine, factory: sessionmaker[Session]
) -> None:
    drop(config.path("var/inbox"), request_mail("eva@cykelbolaget.se", ERASE_ALICE), "r1")
    run_all(worker_for(config, engine))
    with factory() as session:
        request = session.scalars(select(Request)).one()
        assert request.state == "needs_review"
        assert [m.purpose for m in session.scalars(select(OutboundMail))] == ["receipt"]


def test_machine_mail_is_stored_and_never_answered(
    world: None, auto_config: Config, engine: Engine, factory: sessionmaker[Session]
) -> None:
    raw = request_mail("eva@cykelbolaget.se", ERASE_ALICE, subject="Autosvar: GDPR",
                       extra_headers={"Auto-Submitted": "auto-replied"})
    drop(auto_config.path("var/inbox"), raw, "auto")
    run_all(worker_for(auto_config, engine))
    with factory() as session:
        assert session.scalars(select(Request)).one().state == "ignored"
        assert session.scalar(select(func.count()).select_from(OutboundMail)) == 0
        assert session.scalars(select(InboundMail)).one().raw == raw


def test_garbage_is_kept_and_quarantined_while_the_loop_goes_on(
    world: None, auto_config: Config, engine: Engine, factory: sessionmaker[Session]
) -> None:
    inbox = auto_config.path("var/inbox")
    drop(inbox, b"\x00\xff\xfe not a mail at all", "a-garbage")
    drop(inbox, b"From: <>\r\n\r\n", "b-nosender")
    drop(inbox, request_mail("eva@cykelbolaget.se", ERASE_ALICE), "c-valid")
    run_all(worker_for(auto_config, engine))
    with factory() as session:
        states = sorted(r.state for r in session.scalars(select(Request)))
        assert states == ["done", "quarantined", "quarantined"]
        assert session.scalar(select(func.count()).select_from(InboundMail)) == 3


def test_a_mail_seen_twice_is_stored_once(
    world: None, auto_config: Config, engine: Engine, factory: sessionmaker[Session]
) -> None:
    raw = request_mail("eva@cykelbolaget.se", ERASE_ALICE, message_id="<same@c.se>")
    inbox = auto_config.path("var/inbox")
    drop(inbox, raw, "first")
    drop(inbox, raw, "second")  # same bytes under another file name
    worker = worker_for(auto_config, engine)
    run_all(worker)
    # Resent with a different Date header: same Message-ID, same sender.
    drop(inbox, raw.replace(b"09:00:00", b"09:05:00"), "third")
    run_all(worker)
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(InboundMail)) == 2
        assert session.scalar(select(func.count()).select_from(Request)) == 1
        receipts = session.scalars(select(OutboundMail).where(
            OutboundMail.purpose == "receipt")).all()
        assert len(receipts) == 1


def test_every_state_change_is_in_the_audit_trail(
    world: None, auto_config: Config, engine: Engine, factory: sessionmaker[Session]
) -> None:
    drop(auto_config.path("var/inbox"), request_mail("eva@cykelbolaget.se", ERASE_ALICE), "r1")
    run_all(worker_for(auto_config, engine))
    with factory() as session:
        actions = [e.action for e in session.scalars(select(Event).order_by(Event.id))]
    assert actions[:1] == ["mail_stored"]
    for expected in ("parsed", "checked", "approved", "done", "reply_queued", "reply_sent"):
        assert expected in actions


def test_a_crash_during_the_run_leaves_the_request_to_be_resumed(
    world: None, auto_config: Config, engine: Engine, factory: sessionmaker[Session],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    drop(auto_config.path("var/inbox"), request_mail("eva@cykelbolaget.se", ERASE_ALICE), "r1")
    worker = worker_for(auto_config, engine)
    worker.fetch_once()
    from kundo_gdpr.stages import run

    def crash(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt  # not an Exception: like a kill, nothing is caught

    monkeypatch.setattr(run, "run_request", crash)
    with pytest.raises(KeyboardInterrupt):
        worker.process_once()
    with factory() as session:
        assert session.scalars(select(Request)).one().state == "approved"
    monkeypatch.undo()
    run_all(worker)
    with factory() as session:
        request = session.scalars(select(Request)).one()
        assert request.state == "done"
        assert session.scalar(select(func.count()).select_from(OutboundMail).where(
            or_(OutboundMail.purpose == "done", OutboundMail.purpose == "receipt"))) == 2
