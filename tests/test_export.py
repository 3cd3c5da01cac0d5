"""The xlsx export: text stays text, dates are dates, Swedish survives."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import openpyxl
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from kundo_gdpr.actions.export import ExportHeader, write_export
from kundo_gdpr.desk import open_desk
from kundo_gdpr.models import Channel, ForumPost
from tests.helpers import read_xstring

HOSTILE = ["=HYPERLINK(\"http://evil.example\",\"x\")", "+1+1", "-2", "@SUM(A1)",
           "\tTAB", "\rCR", "Åsa skrev: ”hej” – € \x01", "x" * 30000]


@pytest.mark.parametrize("language", ["sv", "en"])
def test_formula_looking_bodies_come_back_as_text(
    world: None, factory: sessionmaker[Session], tmp_path: Path, language: str
) -> None:
    with factory.begin() as session:
        channel = session.scalars(select(Channel).where(Channel.kind == "forum")).first()
        assert channel is not None
        when = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
        for body in HOSTILE:
            session.add(ForumPost(channel_id=channel.id, author_email="Eve@Example.com",
                                  author_name="Eve", body=body, created_at=when))
        session.flush()
        desk = open_desk("sql", session)
        (ref,) = [c for c in desk.organization_channels(channel.organization_id, ["forum"])
                  if c.id == channel.id]
        header = ExportHeader("GDPR-2026-00001", "Org", "eve@example.com",
                              dt.datetime.now(dt.UTC), language)
        counts = write_export(tmp_path / "x.xlsx", header, desk, [ref])
    assert counts == {"forum": len(HOSTILE)}
    book = openpyxl.load_workbook(tmp_path / "x.xlsx")
    sheet = book.worksheets[1]
    assert sheet.freeze_panes == "A2"
    rows = list(sheet.iter_rows(min_row=2))
    bodies = [row[-1] for row in rows]
    assert all(cell.data_type == "s" for cell in bodies)
    # Control characters Excel cannot hold are dropped; a CR is kept (escaped).
    expected = [b.replace("\x01", "") for b in HOSTILE]
    assert [read_xstring(cell.value) for cell in bodies] == expected
    assert rows[0][6].value == dt.datetime(2026, 3, 1, 12, 0)
    assert rows[0][6].is_date
