"""`kundo-gdpr demo`: the whole path on embedded defaults, with sample data."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from kundo_gdpr import db
from kundo_gdpr.config import Config
from kundo_gdpr.desk.seed import seed_demo
from kundo_gdpr.intake.maildir import deliver
from kundo_gdpr.models import Agent, InboundMail, OutboundMail, Request
from kundo_gdpr.replies.transports import make_transport
from kundo_gdpr.stages.driver import Worker, make_source
from kundo_gdpr.web.auth import add_agent, set_password

DEMO_AGENT = "agent@kundo.example"

HEADERS = "To: support@kundo.se\nDate: Mon, 23 Nov 2026 09:00:00 +0100\n"
HEADERS += "MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n"
HEADERS += "Content-Transfer-Encoding: 8bit\n"

DEMO_MAILS: dict[str, str] = {
    "demo-erase": (
        "From: Eva Ek <eva@cykelbolaget.se>\nSubject: Radering av kunduppgifter\n"
        "Message-ID: <demo-erase@cykelbolaget.se>\n" + HEADERS + "\n"
        "Hej!\n\nVår kund alice@example.com vill bli bortglömd. Radera allt hon har skrivit\n"
        "i forum, e-post och chatt.\n\nVi har bekräftat personen/personernas identitet.\n\n"
        "Med vänliga hälsningar\nEva Ek\nCykelbolaget AB\n"
    ),
    "demo-export": (
        "From: Olle Ohlsson <olle@bokhandeln.se>\nSubject: Data export request\n"
        "Message-ID: <demo-export@bokhandeln.se>\n" + HEADERS + "\n"
        "Hello,\n\nOur customer bertil@example.org has asked for a copy of all their data:\n"
        "mail, forum posts and chats.\n\nWe have confirmed the person's identity.\n\n"
        "Best regards\nOlle\n"
    ),
    "demo-no-assertion": (
        "From: Eva Ek <eva@cykelbolaget.se>\nSubject: Ta bort kund\n"
        "Message-ID: <demo-no-assertion@cykelbolaget.se>\n" + HEADERS + "\n"
        "Hej,\n\nKan ni radera bertil@example.org ur vårt forum?\n\nMvh Eva\n"
    ),
    "demo-not-editor": (
        "From: Mallory <mallory@example.net>\nSubject: Radera kund\n"
        "Message-ID: <demo-not-editor@example.net>\n" + HEADERS + "\n"
        "Hej!\n\nRadera alice@example.com ur chatt och forum hos Cykelbolaget.\n\n"
        "Vi har bekräftat personen/personernas identitet.\n"
    ),
}


@dataclass(frozen=True)
class DemoRow:
    mail: str
    reference: str
    state: str
    problems: str
    replies: str


def run_demo(config: Config) -> list[DemoRow]:
    """Seed, drop the demo mails into the inbox, run the pipeline to the end."""
    engine = db.make_engine(config.database_url())
    db.upgrade(engine, config=config)
    factory = db.session_factory(engine)
    with factory.begin() as session:
        seed_demo(session)
    inbox = config.path(config.intake.maildir.path)
    for name, text in DEMO_MAILS.items():
        if not _already_there(inbox, name):
            deliver(inbox, text.replace("\n", "\r\n").encode("utf-8"), name)
    worker = Worker(config, engine, make_source(config), make_transport(config))
    while worker.run_once():
        pass
    return _table(factory)


def _already_there(inbox: Path, name: str) -> bool:
    return any(any((inbox / sub).glob(f"{name}*")) for sub in ("new", "cur"))


def _table(factory: sessionmaker[Session]) -> list[DemoRow]:
    rows = []
    with factory() as session:
        for name in DEMO_MAILS:
            request = session.scalar(
                select(Request)
                .join(InboundMail, InboundMail.id == Request.inbound_mail_id)
                .where(InboundMail.message_id == f"<{name}@{_domain(name)}>")
            )
            if request is None:
                continue
            replies = session.scalars(
                select(OutboundMail.purpose).where(OutboundMail.request_id == request.id)
            ).all()
            rows.append(
                DemoRow(
                    name,
                    request.reference or "",
                    request.state,
                    ",".join(request.problems) or "-",
                    ",".join(replies) or "-",
                )
            )
    return rows


def _domain(name: str) -> str:
    text = DEMO_MAILS[name]
    return text.split("Message-ID: <", 1)[1].split("@", 1)[1].split(">", 1)[0]


@dataclass(frozen=True)
class DemoLogin:
    url: str
    email: str
    password: str


def demo_agent(config: Config) -> DemoLogin:
    """The demo's agent (an admin, so every button works) with a new password.

    A fresh random password on every run: the demo stays safe to run twice,
    and no password anyone could look up ever opens a real install.
    """
    password = secrets.token_urlsafe(12)
    engine = db.make_engine(config.database_url())
    with db.session_factory(engine).begin() as session:
        agent = session.scalar(select(Agent).where(func.lower(Agent.email) == DEMO_AGENT))
        if agent is None:
            add_agent(session, DEMO_AGENT, password, is_admin=True)
        else:
            set_password(session, agent, password)  # and the old password's sessions end
    engine.dispose()
    return DemoLogin(config.web.base_url, DEMO_AGENT, password)
