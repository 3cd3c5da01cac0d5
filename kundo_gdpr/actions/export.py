"""Export a subject's items as .xlsx: a summary sheet and one sheet per channel kind.

openpyxl's write-only mode streams rows to disk, so memory stays flat however
many items the subject has.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.worksheet._write_only import WriteOnlyWorksheet

from kundo_gdpr import i18n
from kundo_gdpr.desk import ChannelRef, DeskStore, ExportSheet

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
WIDTHS = {"body": 80, "title": 40, "conversation_subject": 40, "date": 20, "from": 30, "to": 30}


@dataclass(frozen=True)
class ExportHeader:
    reference: str
    controller: str
    subject: str
    generated_at: dt.datetime
    language: str


def write_export(
    path: Path, header: ExportHeader, desk: DeskStore, channels: Sequence[ChannelRef]
) -> dict[str, int]:
    """Write the workbook to `path`; return the number of rows per channel kind."""
    workbook = Workbook(write_only=True)
    summary = workbook.create_sheet(i18n.text(header.language, "export.summary"))
    counts: dict[str, int] = {}
    for sheet in desk.export(header.subject, channels):
        counts[sheet.kind] = _write_sheet(workbook, sheet, header.language)
    _write_summary(summary, header, counts)
    path.parent.mkdir(parents=True, exist_ok=True)
    workbook.save(path)
    return counts


def _write_sheet(workbook: Workbook, sheet: ExportSheet, language: str) -> int:
    ws = workbook.create_sheet(i18n.text(language, f"export.sheets.{sheet.kind}"))
    ws.freeze_panes = "A2"
    for index, column in enumerate(sheet.columns):
        letter = _letter(index)
        ws.column_dimensions[letter].width = WIDTHS.get(column, 16)
    ws.append([_cell(ws, i18n.text(language, f"export.columns.{c}")) for c in sheet.columns])
    rows = 0
    for row in sheet.rows:
        ws.append([_cell(ws, value) for value in row])
        rows += 1
    return rows


def _write_summary(ws: WriteOnlyWorksheet, header: ExportHeader, counts: dict[str, int]) -> None:
    lang = header.language
    ws.column_dimensions["A"].width = 30
    ws.column_dimensions["B"].width = 60
    lines: list[tuple[str, Any]] = [
        (i18n.text(lang, "export.reference"), header.reference),
        (i18n.text(lang, "export.controller"), header.controller),
        (i18n.text(lang, "export.subject"), header.subject),
        (i18n.text(lang, "export.generated_at"), header.generated_at),
    ]
    for kind, count in counts.items():
        lines.append((i18n.text(lang, f"export.sheets.{kind}"), count))
    for kind in counts:
        lines.append(
            (i18n.text(lang, f"export.sheets.{kind}"), i18n.text(lang, f"export.holds.{kind}"))
        )
    for label, value in lines:
        ws.append([_cell(ws, label), _cell(ws, value)])


def _cell(ws: WriteOnlyWorksheet, value: Any) -> WriteOnlyCell:
    if isinstance(value, dt.datetime):
        # Excel has no time zones; exports state UTC in the column header.
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    if isinstance(value, str):
        value = ILLEGAL_CHARACTERS_RE.sub("", value)
    cell = WriteOnlyCell(ws, value=value)
    if isinstance(value, str):
        # openpyxl turns a string starting with "=" into a formula; a body the
        # customer typed must stay text, or the export runs their formula.
        cell.data_type = "s"
    return cell


def _letter(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def total(counts: Iterable[int]) -> int:
    return sum(counts)
