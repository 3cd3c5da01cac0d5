"""The export read back: xlsx and JSON match the database row for row.

Texts a customer typed come back as text (never formulas), Swedish letters
survive, and a body longer than Excel's 32,767-character cell limit is cut in
the xlsx with a marker saying so, while the JSON keeps all of it.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from kundo_gdpr import i18n
from kundo_gdpr.actions.export import CELL_LIMIT, ExportHeader, write_export
from kundo_gdpr.desk import open_desk
from kundo_gdpr.desk.sql import CHAT_COLUMNS, FORUM_COLUMNS, MAIL_COLUMNS
from kundo_gdpr.models import (
    Channel,
    ChatMessage,
    ChatSession,
    ForumPost,
    MailConversation,
    MailMessage,
    Organization,
)
from tests.helpers import read_xstring

EVE = "eve@example.com"
LONG = "Åsa ” € " + "lång text " * 4000  # 40,008 characters
TEXTS = ["=HYPERLINK(\"http://evil.example\",\"x\")", "=1+1", "+1+1", "-2", "@SUM(A1)",
         "\tTAB", "\rCR", "a\r\nb", "_x0041_ as typed", "#N/A",
         "Åsa skrev: ”hej” – € och ÅÄÖ åäö", LONG, "vanlig text"]
WHEN = dt.datetime(2026, 3, 1, 12, 30, 15, tzinfo=dt.UTC)


@pytest.fixture
def eve(world: None, factory: sessionmaker[Session]) -> None:
    """Eve wrote every hostile text in Cykelbolaget's mail, forum and chat."""
    with factory.begin() as session:
        mine = select(Channel).join(Organization).where(Organization.slug == "cykelbolaget")
        channels = {c.kind: c.id for c in session.scalars(mine)}
        for n, text in enumerate(TEXTS):
            when = WHEN + dt.timedelta(minutes=n)
            session.add(ForumPost(channel_id=channels["forum"], author_email="Eve@Example.com",
                                  author_name="Eve Ödman", author_ip="192.0.2.5", title=text[:500],
                                  body=text, created_at=when))
            conv = MailConversation(channel_id=channels["mail"], customer_email=EVE,
                                    customer_name="Eve", subject=text[:500], created_at=when)
            chat = ChatSession(channel_id=channels["chat"], visitor_email=EVE,
                               visitor_ip="203.0.113.5", started_at=when)
            session.add_all([conv, chat])
            session.flush()
            session.add_all([
                MailMessage(conversation_id=conv.id, direction="in", from_addr=EVE,
                            to_addr="support@shop.example", body=text, created_at=when),
                MailMessage(conversation_id=conv.id, direction="out", to_addr=EVE,
                            from_addr="support@shop.example", body="> " + text,
                            created_at=when + dt.timedelta(hours=1)),
                ChatMessage(session_id=chat.id, sender="visitor", body=text, sent_at=when),
            ])


def database_rows(session: Session) -> dict[str, list[tuple[Any, ...]]]:
    """Eve's items straight from the tables, independent of the desk's queries."""
    mail = session.execute(
        select(MailConversation.id, MailConversation.subject, MailMessage.direction,
               MailMessage.from_addr, MailMessage.to_addr, MailMessage.created_at,
               MailMessage.body)
        .join(MailMessage, MailMessage.conversation_id == MailConversation.id)
        .join(Channel, Channel.id == MailConversation.channel_id).join(Organization)
        .where(MailConversation.customer_email == EVE, Organization.slug == "cykelbolaget")
        .order_by(MailConversation.id, MailMessage.created_at, MailMessage.id))
    forum = session.execute(
        select(ForumPost.id, Channel.name, ForumPost.topic_id, ForumPost.title,
               ForumPost.author_name, ForumPost.author_ip, ForumPost.created_at, ForumPost.body)
        .join(Channel, Channel.id == ForumPost.channel_id)
        .where(ForumPost.author_email == "Eve@Example.com")
        .order_by(ForumPost.created_at, ForumPost.id))
    chat = session.execute(
        select(ChatSession.id, Channel.name, ChatSession.visitor_ip, ChatMessage.sender,
               ChatMessage.sent_at, ChatMessage.body)
        .join(Channel, Channel.id == ChatSession.channel_id)
        .join(ChatMessage, ChatMessage.session_id == ChatSession.id)
        .where(ChatSession.visitor_email == EVE)
        .order_by(ChatSession.id, ChatMessage.sent_at, ChatMessage.id))
    return {"mail": [tuple(r) for r in mail], "forum": [tuple(r) for r in forum],
            "chat": [tuple(r) for r in chat]}


def as_excel(value: Any, marker: str) -> Any:
    """What Excel must show for a stored value."""
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).replace(tzinfo=None)
    if isinstance(value, str):
        if len(value) > CELL_LIMIT:
            value = value[: CELL_LIMIT - len(marker)] + marker
        return value
    return value


def as_json(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).replace(tzinfo=None).isoformat() + "Z"
    return value


# The channels' names as a reader of the workbook sees them.
SHEET_TITLES = {"sv": {"mail": "E-post", "forum": "Forum", "chat": "Chatt"},
                "en": {"mail": "Email", "forum": "Forum", "chat": "Chat"}}
ROWS = {"sv": "antal rader", "en": "rows"}


@pytest.mark.parametrize("language", ["sv", "en"])
def test_xlsx_and_json_match_the_database_row_for_row(
    eve: None, factory: sessionmaker[Session], tmp_path: Path, language: str
) -> None:
    with factory() as session:
        org = session.scalars(select(Organization).where(Organization.slug == "cykelbolaget")).one()
        desk = open_desk("sql", session)
        channels = desk.organization_channels(org.id, ["mail", "forum", "chat"])
        header = ExportHeader("GDPR-2026-00042", org.name, EVE, WHEN, language)
        counts = write_export(tmp_path / "x.xlsx", header, desk, channels, tmp_path / "x.json")
        expected = database_rows(session)
    assert counts == {k: len(v) for k, v in expected.items()}
    assert counts == {"mail": 2 * len(TEXTS), "forum": len(TEXTS), "chat": len(TEXTS)}
    marker = i18n.text(language, "export.truncated")
    book = openpyxl.load_workbook(tmp_path / "x.xlsx")
    sheets = dict(zip(("mail", "forum", "chat"), book.worksheets[1:], strict=True))
    data = json.loads((tmp_path / "x.json").read_text(encoding="utf-8"))
    columns = {"mail": MAIL_COLUMNS, "forum": FORUM_COLUMNS, "chat": CHAT_COLUMNS}
    for kind, rows in expected.items():
        sheet = sheets[kind]
        assert sheet.title == SHEET_TITLES[language][kind]
        assert sheet.freeze_panes == "A2"
        cells = list(sheet.iter_rows(min_row=2))
        assert len(cells) == len(rows)
        for stored, got in zip(rows, cells, strict=True):
            assert [read_xstring(c.value) for c in got] == [as_excel(v, marker) for v in stored]
            for value, cell in zip(stored, got, strict=True):
                if isinstance(value, str):
                    assert cell.data_type == "s", (value[:20], cell.data_type)
                    assert len(cell.value) <= CELL_LIMIT
                if isinstance(value, dt.datetime):
                    assert cell.is_date
        assert data["sheets"][kind] == [
            {c: as_json(v) for c, v in zip(columns[kind], row, strict=True)} for row in rows]
    # The long body: cut with the marker in Excel, whole in JSON.
    forum_bodies = [r[-1].value for r in sheets["forum"].iter_rows(min_row=2)]
    assert LONG[: CELL_LIMIT - len(marker)] + marker in forum_bodies
    assert LONG in [row["body"] for row in data["sheets"]["forum"]]
    assert data["counts"] == counts and data["subject"] == EVE
    assert data["generated_at"] == "2026-03-01T12:30:15+00:00"


@pytest.mark.parametrize(("language", "labels"), [
    ("sv", ("Referens", "Personuppgiftsansvarig", "Den registrerade", "Skapad (UTC)")),
    ("en", ("Reference", "Controller", "Data subject", "Generated (UTC)")),
])
def test_the_summary_sheet_says_who_what_and_when_in_the_requests_language(
    eve: None, factory: sessionmaker[Session], tmp_path: Path, language: str,
    labels: tuple[str, ...],
) -> None:
    with factory() as session:
        org = session.scalars(select(Organization).where(Organization.slug == "cykelbolaget")).one()
        desk = open_desk("sql", session)
        channels = desk.organization_channels(org.id, ["mail", "forum", "chat"])
        header = ExportHeader("GDPR-2026-00042", org.name, EVE, WHEN, language)
        counts = write_export(tmp_path / "x.xlsx", header, desk, channels)
    book = openpyxl.load_workbook(tmp_path / "x.xlsx")
    summary = book.worksheets[0]
    assert summary.title == i18n.text(language, "export.summary")
    values = {r[0]: r[1] for r in summary.iter_rows(values_only=True)}
    assert [values[label] for label in labels] == [
        "GDPR-2026-00042", "Cykelbolaget AB", EVE, dt.datetime(2026, 3, 1, 12, 30, 15)]
    for kind, n in counts.items():
        title = SHEET_TITLES[language][kind]
        assert values[f"{title}: {ROWS[language]}"] == n
        assert values[title] == i18n.text(language, f"export.holds.{kind}")
    assert i18n.text(language, "export.json_file") in values
