"""The parser against mail: our own request corpus, and real-world mail from elsewhere."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from kundo_gdpr.intake.parse import parse
from tests.conftest import need_server

MAILS = Path(__file__).parent / "mails"
SHARED_CORPUS = Path(__file__).parents[1].parent / "shared" / "corpus"
SUPPORT = ("support@kundo.se",)
MACHINE_MAIL = ("bounce", "complaint", "disposition-notification")


def _request_mails() -> list[Path]:
    return sorted(MAILS.glob("*.eml"))


def _shared_mails() -> list[Path]:
    if not SHARED_CORPUS.is_dir():
        need_server(str(SHARED_CORPUS))
    return sorted(SHARED_CORPUS.rglob("*.eml"))


def test_the_request_corpus_has_forty_mails_each_with_its_expectation() -> None:
    mails = _request_mails()
    assert len(mails) >= 40
    assert [m for m in mails if not m.with_suffix(".json").is_file()] == []


@pytest.mark.parametrize("path", _request_mails(), ids=lambda p: p.stem)
def test_it_reads_the_request_mail_as_a_support_agent_would(path: Path) -> None:
    expected = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
    assert parse(path.read_bytes(), SUPPORT).contract() == expected


def _cli_lines(paths: list[Path]) -> list[dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, "-m", "kundo_gdpr.cli", "parse", *map(str, paths), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def test_every_real_world_mail_gives_one_json_line_without_a_crash() -> None:
    paths = _shared_mails()
    assert paths, f"no .eml files under {SHARED_CORPUS}"
    lines = _cli_lines(paths)
    assert [line["file"] for line in lines] == [str(p) for p in paths]
    assert [line for line in lines if "error" in line] == []


def test_bounces_complaints_and_read_receipts_are_machine_mail() -> None:
    paths = [p for p in _shared_mails() if any(word in p.name for word in MACHINE_MAIL)]
    assert paths, "the shared corpus has no bounces, complaints or read receipts"
    lines = _cli_lines(paths)
    assert [line["file"] for line in lines if "auto_reply" not in line["problems"]] == []
