"""No copy of an export outlives its link: not in the stored reply, not in the
outbox folder after expiry, not after the subject is erased."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from kundo_gdpr.actions import links
from kundo_gdpr.config import Config
from kundo_gdpr.models import Event, Export, OutboundMail, Request
from kundo_gdpr.replies.transports import eml_name
from kundo_gdpr.stages import decide
from tests.helpers import SV_ASSERTION, drop, request_mail
from tests.test_pipeline import EXPORT_BERTIL, auto_config, run_all, worker_for

__all__ = ["auto_config"]  # the fixture, used by name
ERASE_BERTIL = (
    "Hej!\n\nVår kund bertil@example.org vill bli bortglömd. Radera allt i forum, "
    f"e-post och chatt.\n\n{SV_ASSERTION}\n\nMed vänliga hälsningar\nOlle\n"
)


def _attachments(raw: bytes) -> list[tuple[str, bytes]]:
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    return [(a.get_filename() or "", a.get_payload(decode=True) or b"")
            for a in msg.iter_attachments() if a.get_filename() != "proof.json"]


def _export_done(config: Config, engine: Engine) -> tuple[OutboundMail, Export]:
    drop(config.path("var/inbox"),
         request_mail("olle@bokhandeln.se", EXPORT_BERTIL, subject="Data export"), "x1")
    run_all(worker_for(config, engine))
    with Session(engine) as session:
        done = session.scalars(select(OutboundMail).where(OutboundMail.purpose == "done")).one()
        return done, session.scalars(select(Export)).one()


def test_the_stored_reply_keeps_no_export_bytes_once_sent_and_the_eml_none_after_expiry(
    world: None, auto_config: Config, engine: Engine, factory: sessionmaker[Session],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    done, export = _export_done(auto_config, engine)
    assert done.state == "sent"
    ((name, note),) = _attachments(done.raw)
    assert name == f"{export.filename}.removed.txt" and b"removed" in note
    assert "proof.json" in str(done.raw)  # kept: it names nobody in clear
    eml = auto_config.path("var/outbox") / eml_name(done.message_id)
    ((delivered, data),) = _attachments(eml.read_bytes())  # what was delivered: the file
    assert delivered == export.filename and data == Path(export.path).read_bytes()

    later = export.expires_at + dt.timedelta(seconds=1)
    monkeypatch.setattr(links, "utcnow", lambda: later)
    worker_for(auto_config, engine).run_once()  # what `run --once` does
    assert not Path(export.path).exists()
    ((name, _),) = _attachments(eml.read_bytes())
    assert name.endswith(".removed.txt")
    with factory() as session:
        swept = session.get(Export, export.id)
        assert swept is not None and swept.deleted_at is not None


def test_an_erase_of_the_subject_deletes_their_kept_export(
    world: None, auto_config: Config, engine: Engine, factory: sessionmaker[Session],
) -> None:
    _, export = _export_done(auto_config, engine)
    assert Path(export.path).is_file()
    drop(auto_config.path("var/inbox"),
         request_mail("olle@bokhandeln.se", ERASE_BERTIL, subject="Radera"), "x2")
    run_all(worker_for(auto_config, engine))
    assert not Path(export.path).exists()
    with factory() as session:
        kept = session.get(Export, export.id)
        assert kept is not None and kept.deleted_at is not None
        deleted = session.scalars(select(Event).where(Event.action == "export_deleted")).one()
        assert deleted.detail["reason"] == "erased"


def test_a_resent_done_reply_carries_the_export_while_it_is_kept(
    world: None, auto_config: Config, engine: Engine, factory: sessionmaker[Session],
) -> None:
    done, export = _export_done(auto_config, engine)
    with factory.begin() as session:
        request = session.scalars(select(Request)).one()
        copy = decide.resend(session, auto_config, request, decide.Actor("agent@kundo.se"),
                             done.id)
        copy_id = copy.message_id
    run_all(worker_for(auto_config, engine))
    eml = auto_config.path("var/outbox") / eml_name(copy_id)
    ((name, data),) = _attachments(eml.read_bytes())
    assert name == export.filename and data == Path(export.path).read_bytes()
    with factory() as session:
        stored = session.scalars(select(OutboundMail).where(
            OutboundMail.message_id == copy_id)).one()
        ((name, _),) = _attachments(stored.raw)
        assert name.endswith(".removed.txt")
