"""Export a subject's items as .xlsx and .json: a summary and one sheet per channel kind.

One pass over the rows writes both files. openpyxl's write-only mode and the
JSON writer stream to disk, so memory stays flat however many items the
subject has.

Excel holds at most 32,767 characters in a cell: a longer text is cut there,
ending with a marker that says so, and the JSON file keeps the full text.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ERROR_CODES, ILLEGAL_CHARACTERS_RE
from openpyxl.worksheet._write_only import WriteOnlyWorksheet

from kundo_gdpr import i18n
from kundo_gdpr.desk import ChannelRef, DeskStore, ExportSheet

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
JSON = "application/json"
ZIP = "application/zip"
WIDTHS = {"body": 80, "title": 40, "conversation_subject": 40, "date": 20, "from": 30, "to": 30}
CELL_LIMIT = 32767
_ERRORS = frozenset(ERROR_CODES)
_ZERO = dt.timedelta(0)
# One encoder for every row: json.dumps with an option builds a new one per call.
_encode = json.JSONEncoder(ensure_ascii=False).encode
# SpreadsheetML strings escape characters XML cannot carry as _xHHHH_
# (ECMA-376 Part 1, ST_Xstring); a text that already looks like an escape has
# its underscore escaped, so it reads back as written.
_LOOKS_ESCAPED = re.compile(r"_(x[0-9A-Fa-f]{4}_)")


@dataclass(frozen=True)
class ExportHeader:
    reference: str
    controller: str
    subject: str
    generated_at: dt.datetime
    language: str


def write_export(
    path: Path,
    header: ExportHeader,
    desk: DeskStore,
    channels: Sequence[ChannelRef],
    json_path: Path | None = None,
) -> dict[str, int]:
    """Write the workbook to `path` (and the same data as JSON to `json_path`);
    return the number of rows per channel kind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    workbook = Workbook(write_only=True)
    summary = workbook.create_sheet(i18n.text(header.language, "export.summary"))
    counts: dict[str, int] = {}
    with _JsonFile(json_path, header) as js:
        for sheet in desk.export(header.subject, channels):
            counts[sheet.kind] = _write_sheet(workbook, sheet, header.language, js)
        js.close(counts)
    _write_summary(summary, header, counts)
    workbook.save(path)
    return counts


def _write_sheet(
    workbook: Workbook, sheet: ExportSheet, language: str, js: _JsonFile
) -> int:
    ws = workbook.create_sheet(i18n.channel_name(language, sheet.kind).capitalize())
    ws.freeze_panes = "A2"
    for index, column in enumerate(sheet.columns):
        ws.column_dimensions[_letter(index)].width = WIDTHS.get(column, 16)
    ws.append([_text(ws, i18n.text(language, f"export.columns.{c}")) for c in sheet.columns])
    marker = i18n.text(language, "export.truncated")
    js.open_sheet(sheet.kind, sheet.columns)
    rows = 0
    for row in sheet.rows:
        values = [_naive_utc(v) if isinstance(v, dt.datetime) else v for v in row]
        ws.append([_cell(ws, v, marker) if type(v) is str else v for v in values])
        js.row(values)
        rows += 1
    return rows


def _naive_utc(value: dt.datetime) -> dt.datetime:
    """Excel has no time zones: every time in the export is UTC, as the summary says."""
    if value.tzinfo is None or value.utcoffset() == _ZERO:
        return value.replace(tzinfo=None)
    return value.astimezone(dt.UTC).replace(tzinfo=None)


def _write_summary(ws: WriteOnlyWorksheet, header: ExportHeader, counts: dict[str, int]) -> None:
    lang = header.language
    ws.column_dimensions["A"].width = 30
    ws.column_dimensions["B"].width = 80
    generated = header.generated_at.astimezone(dt.UTC).replace(tzinfo=None)
    lines: list[tuple[str, Any]] = [
        (i18n.text(lang, "export.reference"), header.reference),
        (i18n.text(lang, "export.controller"), header.controller),
        (i18n.text(lang, "export.subject"), header.subject),
        (i18n.text(lang, "export.generated_at"), generated),
    ]
    for kind, count in counts.items():
        name = i18n.channel_name(lang, kind).capitalize()
        lines.append((i18n.text(lang, "export.rows").format(channel=name), count))
    for kind in counts:
        lines.append(
            (i18n.channel_name(lang, kind).capitalize(), i18n.text(lang, f"export.holds.{kind}"))
        )
    lines.append((i18n.text(lang, "export.json_file"), i18n.text(lang, "export.json_holds")))
    for label, value in lines:
        ws.append([_text(ws, label), _text(ws, value) if isinstance(value, str) else value])


def _cell(ws: WriteOnlyWorksheet, value: str, marker: str) -> Any:
    """A text value as Excel will show it: never a formula, never an error code."""
    # Most texts are printable but for line breaks; only the rest need the search.
    if not value.isprintable() and ILLEGAL_CHARACTERS_RE.search(value):
        value = ILLEGAL_CHARACTERS_RE.sub("", value)
    if len(value) > CELL_LIMIT:
        value = value[: CELL_LIMIT - len(marker)] + marker
    # openpyxl turns "=…" into a formula and "#N/A" into an error; a text the
    # customer typed must stay text, or the export runs their formula.
    # (+, -, @, tab and CR are only formulas to a CSV import, never in xlsx.)
    if value[:1] == "=" or value in _ERRORS:
        return _text(ws, value)
    return _xstring(value)


def _text(ws: WriteOnlyWorksheet, value: str) -> WriteOnlyCell:
    cell = WriteOnlyCell(ws, value=_xstring(ILLEGAL_CHARACTERS_RE.sub("", value)[:CELL_LIMIT]))
    cell.data_type = "s"
    return cell


def _xstring(value: str) -> str:
    """The text as SpreadsheetML stores it: a carriage return survives (XML
    would read a lone CR as a line feed), and nothing else changes."""
    if "_x" in value:
        value = _LOOKS_ESCAPED.sub(r"_x005F_\1", value)
    return value.replace("\r", "_x000D_") if "\r" in value else value


class _JsonFile:
    """Streams the export as one JSON document, a row at a time."""

    def __init__(self, path: Path | None, header: ExportHeader) -> None:
        self.path = path
        self.header = header
        self.out: IO[str] | None = None
        self.columns: tuple[str, ...] = ()
        self.sheets = 0
        self.rows = 0

    def __enter__(self) -> _JsonFile:
        if self.path is not None:
            self.out = self.path.open("w", encoding="utf-8")
            head = {
                "reference": self.header.reference,
                "controller": self.header.controller,
                "subject": self.header.subject,
                "generated_at": self.header.generated_at.astimezone(dt.UTC).isoformat(),
                "language": self.header.language,
            }
            self.out.write(json.dumps(head, ensure_ascii=False)[:-1] + ', "sheets": {')
        return self

    def open_sheet(self, kind: str, columns: tuple[str, ...]) -> None:
        if self.out is None:
            return
        self._end_sheet()
        self.out.write(("," if self.sheets else "") + f'\n"{kind}": [')
        self.columns, self.rows = columns, 0
        self.sheets += 1

    def row(self, values: list[Any]) -> None:
        if self.out is None:
            return
        item = {c: v.isoformat() + "Z" if isinstance(v, dt.datetime) else v
                for c, v in zip(self.columns, values, strict=True)}
        self.out.write(("," if self.rows else "") + "\n" + _encode(item))
        self.rows += 1

    def close(self, counts: dict[str, int]) -> None:
        if self.out is None:
            return
        self._end_sheet()
        self.out.write('\n}, "counts": ' + json.dumps(counts) + "}\n")

    def _end_sheet(self) -> None:
        if self.out is not None and self.sheets:
            self.out.write("]")

    def __exit__(self, *exc: object) -> None:
        if self.out is not None:
            self.out.close()


def _letter(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters
