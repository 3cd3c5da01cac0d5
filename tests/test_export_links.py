"""Large exports travel as signed, expiring links served by the web app."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import io
import re
import zipfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from kundo_gdpr.actions import links
from kundo_gdpr.config import Config
from kundo_gdpr.models import Event, Export, OutboundMail, Request
from kundo_gdpr.web import downloads, make_app
from tests.conftest import make_config
from tests.helpers import delivered, drop, request_mail
from tests.test_pipeline import EXPORT_BERTIL, run_all, worker_for

Client = TestClient[Any, Any]
MakeClient = Callable[..., Awaitable[Client]]
SECRET = "test secret for export links"


@pytest.fixture
def small_limit(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Config:
    """Auto-approving, and any export is 'too large' to attach."""
    monkeypatch.setenv("KUNDO_GDPR_SECRET", SECRET)
    return make_config(tmp_path, db_url, policy={"auto_approve": True}, auth={"require": False},
                       export={"max_attachment_bytes": 1})


@pytest.fixture
def link(world: None, small_limit: Config, engine: Engine) -> str:
    """Bertil's export done; the path of the download link in the done reply."""
    drop(small_limit.path("var/inbox"),
         request_mail("olle@bokhandeln.se", EXPORT_BERTIL, subject="Data export"), "x1")
    run_all(worker_for(small_limit, engine))
    with Session(engine) as session:
        done = session.scalars(select(OutboundMail).where(OutboundMail.purpose == "done")).one()
    msg = email.message_from_bytes(done.raw, policy=email.policy.default)
    assert isinstance(msg, email.message.EmailMessage)
    assert delivered(msg) == []
    body = msg.get_body(("plain",))
    assert body is not None
    text = body.get_content()
    assert "too large to attach" in text and "at most once a minute" in text
    (url,) = re.findall(r"http://127\.0\.0\.1:8080(/downloads/\S+)", text)
    return str(url)


def events(factory: sessionmaker[Session], action: str) -> list[Event]:
    with factory() as session:
        return list(session.scalars(select(Event).where(Event.action == action)))


async def test_the_link_in_the_reply_downloads_the_export_without_sign_in(
    link: str, small_limit: Config, engine: Engine, factory: sessionmaker[Session],
    aiohttp_client: MakeClient,
) -> None:
    client = await aiohttp_client(make_app(small_limit, engine))
    response = await client.get(link, allow_redirects=False)
    assert response.status == 200
    assert response.headers["Content-Disposition"].endswith('.zip"')
    archive = zipfile.ZipFile(io.BytesIO(await response.read()))
    names = archive.namelist()
    assert any(n.endswith(".xlsx") for n in names) and any(n.endswith(".json") for n in names)
    assert any(n.startswith("attachments/") for n in names)
    (xlsx,) = [n for n in names if n.endswith(".xlsx")]
    book = openpyxl.load_workbook(io.BytesIO(archive.read(xlsx)))
    assert book.sheetnames[0] == "Summary"
    (downloaded,) = events(factory, "export_downloaded")
    with factory() as session:
        request = session.scalars(select(Request)).one()
        assert downloaded.request_id == request.id
        export = session.scalars(select(Export)).one()
        assert export.last_download_at is not None


async def test_a_second_download_within_a_minute_is_refused_with_429(
    link: str, small_limit: Config, engine: Engine, factory: sessionmaker[Session],
    aiohttp_client: MakeClient, monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = await aiohttp_client(make_app(small_limit, engine))
    assert (await client.get(link)).status == 200
    again = await client.get(link, headers={"Accept-Language": "sv"})
    assert again.status == 429
    assert int(again.headers["Retry-After"]) <= 60
    page = await again.text()
    assert "högst en gång i minuten" in page and "at most once a minute" in page
    (refused,) = events(factory, "export_download_refused")
    assert refused.detail["reason"] == "too_soon"
    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=61)
    monkeypatch.setattr(downloads, "utcnow", lambda: later)
    assert (await client.get(link)).status == 200


@pytest.mark.parametrize("tamper", ["id", "expiry", "signature"])
async def test_a_tampered_link_is_refused_and_logged(
    link: str, small_limit: Config, engine: Engine, factory: sessionmaker[Session],
    aiohttp_client: MakeClient, tamper: str,
) -> None:
    export_id, expiry, signature = link.removeprefix("/downloads/").split(".")
    forged = {
        "id": f"{int(export_id) + 1}.{expiry}.{signature}",
        "expiry": f"{export_id}.{int(expiry) + 86400}.{signature}",
        "signature": f"{export_id}.{expiry}.{signature[:-2]}AA",
    }[tamper]
    client = await aiohttp_client(make_app(small_limit, engine))
    response = await client.get("/downloads/" + forged, allow_redirects=False)
    assert response.status == 404
    assert "not valid" in await response.text()
    (refused,) = events(factory, "export_download_refused")
    assert refused.detail["reason"] == "invalid"
    assert events(factory, "export_downloaded") == []


async def test_an_expired_link_answers_410_and_the_sweep_deletes_the_file(
    link: str, small_limit: Config, engine: Engine, factory: sessionmaker[Session],
    aiohttp_client: MakeClient, monkeypatch: pytest.MonkeyPatch,
) -> None:
    with factory() as session:
        export = session.scalars(select(Export)).one()
        path, expires_at = Path(export.path), export.expires_at
    assert path.is_file()
    assert expires_at - dt.datetime.now(dt.UTC) > dt.timedelta(hours=23)
    later = expires_at + dt.timedelta(seconds=1)
    monkeypatch.setattr(downloads, "utcnow", lambda: later)
    client = await aiohttp_client(make_app(small_limit, engine))
    response = await client.get(link)
    assert response.status == 410
    assert "expired" in await response.text()
    assert links.sweep(factory, now=expires_at - dt.timedelta(seconds=1)) == 0
    assert path.is_file()
    assert links.sweep(factory, now=later) == 1
    assert not path.exists()
    with factory() as session:
        assert session.scalars(select(Export)).one().deleted_at is not None
    (deleted,) = events(factory, "export_deleted")
    assert deleted.request_id is not None
    assert (await client.get(link)).status == 410
    assert links.sweep(factory, now=later) == 0


def test_without_a_web_secret_no_link_is_made(
    world: None, tmp_path: Path, db_url: str, engine: Engine, factory: sessionmaker[Session],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("KUNDO_GDPR_SECRET", raising=False)
    config = make_config(tmp_path, db_url, policy={"auto_approve": True},
                         auth={"require": False}, export={"max_attachment_bytes": 1})
    drop(config.path("var/inbox"),
         request_mail("olle@bokhandeln.se", EXPORT_BERTIL, subject="Data export"), "x1")
    run_all(worker_for(config, engine))
    with factory() as session:
        request = session.scalars(select(Request)).one()
        assert request.state == "failed"
        (failed,) = [e for e in session.scalars(select(Event).where(Event.action == "failed"))]
        assert "secret" in failed.detail["error"]
