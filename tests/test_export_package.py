"""What an export reply carries: xlsx and JSON, zipped with the person's attachments."""

from __future__ import annotations

import email
import email.policy
import io
import json
import unicodedata
import zipfile
from email.message import EmailMessage

import openpyxl
from sqlalchemy import Engine, delete, select
from sqlalchemy.orm import Session, sessionmaker

from kundo_gdpr.config import Config
from kundo_gdpr.models import Attachment, Channel, ForumPost, Organization, OutboundMail
from kundo_gdpr.replies.transports import eml_name
from tests.helpers import delivered, drop, request_mail
from tests.test_pipeline import EXPORT_BERTIL, auto_config, run_all, worker_for

__all__ = ["auto_config"]  # the fixture, used by name
BERTIL = "bertil@example.org"


def done_mail(engine: Engine, config: Config) -> EmailMessage:
    """The done reply as the editor received it (the outbox folder's file): the
    stored copy in the database keeps no attachment bytes once it is sent."""
    with Session(engine) as session:
        message_id = session.scalars(
            select(OutboundMail.message_id).where(OutboundMail.purpose == "done")).one()
    raw = (config.path(config.outbox.folder.path) / eml_name(message_id)).read_bytes()
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def test_without_attachments_the_reply_carries_the_xlsx_and_the_json(
    world: None, auto_config: Config, engine: Engine, factory: sessionmaker[Session]
) -> None:
    with factory.begin() as session:
        session.execute(delete(Attachment))
    drop(auto_config.path("var/inbox"),
         request_mail("olle@bokhandeln.se", EXPORT_BERTIL, subject="Data export"), "x1")
    run_all(worker_for(auto_config, engine))
    sent = done_mail(engine, auto_config)
    files = {a.get_filename(): a.get_content() for a in delivered(sent)}
    assert sorted(name.rsplit(".", 1)[1] for name in files) == ["json", "xlsx"]
    (xlsx,) = [v for k, v in files.items() if k.endswith(".xlsx")]
    (js,) = [v for k, v in files.items() if k.endswith(".json")]
    data = json.loads(js)
    book = openpyxl.load_workbook(io.BytesIO(xlsx))
    for kind, sheet in zip(("mail", "forum", "chat"), book.worksheets[1:], strict=True):
        assert len(data["sheets"][kind]) == sheet.max_row - 1 == data["counts"][kind]
    assert data["subject"] == BERTIL


def test_attachments_go_in_the_zip_under_safe_names(
    world: None, auto_config: Config, engine: Engine, factory: sessionmaker[Session]
) -> None:
    with factory.begin() as session:
        post = session.scalars(select(ForumPost).join(Channel).join(Organization).where(
            ForumPost.author_email == BERTIL, Organization.slug == "bokhandeln")).first()
        assert post
        odd = Attachment(forum_post_id=post.id, filename="../../etc/pass\\wd:åäö.txt",
                         data=b"secret-ish", size=10)
        # Right-to-left override: would show as "…exe.jpg"; and a zero-width space.
        tricky = Attachment(forum_post_id=post.id, filename="bild\u202egpj.exe\u200b",
                            data=b"x", size=1)
        session.add_all([odd, tricky])
        session.flush()
        odd_id = odd.id
    drop(auto_config.path("var/inbox"),
         request_mail("olle@bokhandeln.se", EXPORT_BERTIL, subject="Data export"), "x1")
    run_all(worker_for(auto_config, engine))
    (attachment,) = delivered(done_mail(engine, auto_config))
    archive = zipfile.ZipFile(io.BytesIO(attachment.get_content()))
    names = archive.namelist()
    assert all(not n.startswith("/") and ".." not in n.split("/") for n in names)
    assert all(unicodedata.category(c) not in ("Cc", "Cf") for n in names for c in n)
    assert any(n.endswith("-bild_gpj.exe_") for n in names)
    (mine,) = [n for n in names if n.endswith("wd_åäö.txt")]
    assert archive.read(mine) == b"secret-ish"
    # A Windows path too: only the last part of the name is kept.
    assert mine == f"attachments/forum/{odd_id}-wd_åäö.txt"
    with factory() as session:
        on_file = session.scalars(select(Attachment.filename)).all()
    # Every attachment of Bertil's exported items is in the zip, none of anyone else's.
    assert len([n for n in names if n.startswith("attachments/")]) < len(on_file)
