"""A subject's export as files: .xlsx and .json, zipped with their attachments
when there are any; an `Export` row for each file.

What a done reply carries is decided here too: the files themselves when they
are small enough together, otherwise a signed link to each.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import unicodedata
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from sqlalchemy import select
from sqlalchemy.orm import Session

from kundo_gdpr.actions import links
from kundo_gdpr.actions.export import JSON, XLSX, ZIP, ExportHeader, write_export
from kundo_gdpr.config import Config
from kundo_gdpr.desk import ChannelRef, DeskStore
from kundo_gdpr.models import Export, Request, utcnow
from kundo_gdpr.replies.render import FileAttachment

CONTENT_TYPES = {".xlsx": XLSX, ".json": JSON, ".zip": ZIP}
_UNSAFE = re.compile(r"[\x00-\x1f\\/:*?\"<>|]")
# Control, format (bidi marks and overrides, zero-width), line/paragraph separators.
_INVISIBLE = frozenset({"Cc", "Cf", "Zl", "Zp"})


@dataclass(frozen=True)
class Link:
    filename: str
    url: str
    expires_at: dt.datetime


def write_files(folder: Path, stem: str, header: ExportHeader, desk: DeskStore,
                channels: Sequence[ChannelRef]) -> tuple[dict[str, int], list[Path]]:
    """Rows per channel kind, and the files to deliver."""
    xlsx, js = folder / f"{stem}.xlsx", folder / f"{stem}.json"
    counts = write_export(xlsx, header, desk, channels, js)
    files = desk.attachments(header.subject, channels)
    first = next(files, None)
    if first is None:
        return counts, [xlsx, js]
    archive = folder / f"{stem}.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as out:
        out.write(xlsx, xlsx.name)
        out.write(js, js.name)
        for kind, item_id, filename, data in _chain(first, files):
            out.writestr(f"attachments/{kind}/{item_id}-{_safe(filename)}", data)
    xlsx.unlink()
    js.unlink()
    return counts, [archive]


def record(session: Session, config: Config, request: Request, subject: str,
           paths: list[Path]) -> None:
    """An Export row per file, expiring with its link."""
    now = utcnow()
    for path in paths:
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        session.add(Export(
            request_id=request.id, subject=subject, path=str(path), filename=path.name,
            content_type=CONTENT_TYPES[path.suffix], size=path.stat().st_size,
            sha256=digest.hexdigest(), created_at=now,
            expires_at=now + dt.timedelta(hours=config.export.link_ttl_hours),
        ))


def deliverables(session: Session, config: Config,
                 request: Request) -> tuple[list[FileAttachment], list[Link]]:
    """Attach the request's export files, or link to them when together too large."""
    exports = list(session.scalars(
        select(Export).where(Export.request_id == request.id).order_by(Export.id)))
    if sum(e.size for e in exports) <= config.export.max_attachment_bytes:
        return [FileAttachment(e.filename, e.content_type, Path(e.path).read_bytes())
                for e in exports], []
    return [], [Link(e.filename, links.url(config, e), e.expires_at) for e in exports]


def _chain(first: tuple[str, int, str, bytes],
           rest: Iterator[tuple[str, int, str, bytes]]) -> Iterator[tuple[str, int, str, bytes]]:
    yield first
    yield from rest


def _safe(filename: str) -> str:
    """A file name that stays inside attachments/ whatever the customer called it,
    and reads as it is: no control, bidirectional or other invisible format
    character (U+202E would show "gpj.exe" as "exe.jpg")."""
    visible = "".join("_" if unicodedata.category(c) in _INVISIBLE else c for c in filename)
    name = _UNSAFE.sub("_", PurePosixPath(visible.replace("\\", "/")).name).strip(". ")
    return name or "file"
