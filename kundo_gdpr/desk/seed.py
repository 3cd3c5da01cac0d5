"""A sample desk for `kundo-gdpr demo` and for tests: two controllers, their
channels and editors, and customers who wrote in every channel."""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from kundo_gdpr.models import (
    Attachment,
    Channel,
    ChatMessage,
    ChatSession,
    Editor,
    ForumPost,
    MailConversation,
    MailMessage,
    Organization,
)
from kundo_gdpr.vocabulary import ChannelKind

CUSTOMERS = (
    ("Alice Andersson", "alice@example.com"),
    ("Bertil Berg", "bertil@example.org"),
)
OTHERS = tuple((f"Kund {n}", f"kund{n}@example.net") for n in range(1, 21))
BODIES = (
    "Hej! Min cykel har punktering, kan ni hjälpa mig?",
    "Tack för snabbt svar, det löste sig.",
    "När kommer nästa leverans av reservdelar?",
    "Jag vill byta min beställning till en större storlek.",
    "Hello, is the shop open on Sundays?",
    "Åäö fungerar fint här – ”citat” och € också.",
)


@dataclass(frozen=True)
class SeedResult:
    organizations: int
    items: int


def seed_demo(session: Session, rng: random.Random | None = None) -> SeedResult:
    """Create the sample desk unless it is there already (safe to run twice)."""
    if session.scalar(select(Organization.id).where(Organization.slug == "cykelbolaget")):
        return SeedResult(0, 0)
    rng = rng or random.Random(42)
    bikes = _organization(session, "Cykelbolaget AB", "cykelbolaget", "sv")
    books = _organization(session, "Bokhandeln i Norr", "bokhandeln", "sv")
    eva = Editor(name="Eva Ek", email="eva@cykelbolaget.se")
    olle = Editor(name="Olle Ohlsson", email="olle@bokhandeln.se")
    session.add_all([eva, olle])
    for channel in bikes.channels:
        channel.editors.append(eva)
    for channel in books.channels:
        channel.editors.append(olle)
    session.flush()
    items = 0
    for org in (bikes, books):
        for channel in org.channels:
            items += fill_channel(session, channel, (*CUSTOMERS, *OTHERS), rng)
    return SeedResult(2, items)


def _organization(session: Session, name: str, slug: str, language: str) -> Organization:
    org = Organization(name=name, slug=slug, language=language)
    org.channels = [
        Channel(kind=ChannelKind.MAIL, name=f"{name} – kundtjänst"),
        Channel(kind=ChannelKind.FORUM, name=f"{name} – forum"),
        Channel(kind=ChannelKind.CHAT, name=f"{name} – chatt"),
    ]
    session.add(org)
    return org


def fill_channel(
    session: Session, channel: Channel, people: tuple[tuple[str, str], ...], rng: random.Random
) -> int:
    """Give every person a few items in the channel; returns items created."""
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    count = 0
    for name, email in people:
        when = start + dt.timedelta(days=rng.randint(0, 300), minutes=rng.randint(0, 1440))
        if channel.kind == ChannelKind.MAIL:
            count += _mail(session, channel, name, email, when, rng)
        elif channel.kind == ChannelKind.FORUM:
            count += _forum(session, channel, name, email, when, people, rng)
        else:
            count += _chat(session, channel, name, email, when, rng)
    return count


def _mail(
    session: Session, channel: Channel, name: str, email: str, when: dt.datetime, rng: random.Random
) -> int:
    conversation = MailConversation(
        channel_id=channel.id,
        customer_name=name,
        customer_email=email,
        subject="Fråga om beställning",
        created_at=when,
    )
    question = MailMessage(
        direction="in",
        from_addr=email,
        to_addr="support@shop.example",
        body=rng.choice(BODIES),
        created_at=when,
    )
    answer = MailMessage(
        direction="out",
        from_addr="support@shop.example",
        to_addr=email,
        body=f"Hej {name}!\n\n> {question.body}\n\nVi hjälper dig gärna.",
        created_at=when + dt.timedelta(hours=2),
    )
    conversation_messages = [question, answer]
    session.add(conversation)
    session.flush()
    for message in conversation_messages:
        message.conversation_id = conversation.id
    session.add_all(conversation_messages)
    session.flush()
    session.add(
        Attachment(
            mail_message_id=question.id,
            filename="kvitto.txt",
            content_type="text/plain",
            data=b"kvitto",
            size=6,
        )
    )
    return 3


def _forum(
    session: Session,
    channel: Channel,
    name: str,
    email: str,
    when: dt.datetime,
    people: tuple[tuple[str, str], ...],
    rng: random.Random,
) -> int:
    opener = ForumPost(
        channel_id=channel.id,
        author_name=name,
        author_email=email,
        author_ip=f"192.0.2.{rng.randint(1, 254)}",
        title="Punktering igen",
        body=rng.choice(BODIES),
        created_at=when,
    )
    session.add(opener)
    session.flush()
    other_name, other_email = rng.choice([p for p in people if p[1] != email])
    reply = ForumPost(
        channel_id=channel.id,
        topic_id=opener.id,
        parent_id=opener.id,
        author_name=other_name,
        author_email=other_email,
        author_ip="198.51.100.7",
        body="Samma här, prova ny slang.",
        created_at=when + dt.timedelta(hours=1),
    )
    own = ForumPost(
        channel_id=channel.id,
        author_name=name,
        author_email=email,
        author_ip="192.0.2.99",
        title="En till fråga",
        body=rng.choice(BODIES),
        created_at=when + dt.timedelta(days=1),
    )
    session.add_all([reply, own])
    return 3


def _chat(
    session: Session, channel: Channel, name: str, email: str, when: dt.datetime, rng: random.Random
) -> int:
    chat = ChatSession(
        channel_id=channel.id,
        visitor_name=name,
        visitor_email=email,
        visitor_ip=f"203.0.113.{rng.randint(1, 254)}",
        started_at=when,
    )
    session.add(chat)
    session.flush()
    session.add_all(
        [
            ChatMessage(
                session_id=chat.id, sender="visitor", body=rng.choice(BODIES), sent_at=when
            ),
            ChatMessage(
                session_id=chat.id,
                sender="agent",
                body="Vi tittar på det direkt!",
                sent_at=when + dt.timedelta(minutes=1),
            ),
        ]
    )
    return 3
