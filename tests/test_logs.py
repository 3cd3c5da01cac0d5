"""`run` logs one line per state change: reference, stage, from -> to, seconds;
plain text by default, one JSON object per line with --log-format json; never a
subject's address or the mail's text."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kundo_gdpr import config as config_module
from kundo_gdpr import db
from kundo_gdpr.desk.seed import seed_demo
from kundo_gdpr.intake.maildir import deliver
from tests.helpers import SV_ASSERTION, request_mail

ROOT = Path(__file__).resolve().parents[1]
BODY = f"Radera alice@example.com ur chatt.\n\nHemligt meddelande.\n\n{SV_ASSERTION}\n"


def run_once(tmp_path: Path, *options: str) -> str:
    shutil.copy(ROOT / "config.toml", tmp_path / "config.toml")
    conf = config_module.load(tmp_path / "config.toml")
    engine = db.make_engine(conf.database_url())
    db.upgrade(engine)
    with db.session_factory(engine).begin() as session:
        seed_demo(session)
    engine.dispose()
    deliver(conf.path("var/inbox"), request_mail("eva@cykelbolaget.se", BODY), "one")
    done = subprocess.run(
        [sys.executable, "-m", "kundo_gdpr.cli", "--config", "config.toml", *options,
         "run", "--once"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    for private in ("alice@example.com", "eva@cykelbolaget.se", "Hemligt"):
        assert private not in done.stderr
    return done.stderr


def test_json_lines_name_reference_stage_and_states(tmp_path: Path) -> None:
    lines = [json.loads(line) for line in run_once(tmp_path, "--log-format", "json").splitlines()]
    changes = [(c["stage"], c["from_state"], c["to_state"]) for c in lines if "stage" in c]
    assert ("parse", "stored", "parsed") in changes
    assert ("check", "parsed", "needs_review") in changes
    assert ("deliver", "queued", "sent") in changes
    checked = next(c for c in lines if c.get("stage") == "check")
    assert checked["reference"].startswith("GDPR-") and checked["level"] == "INFO"
    assert isinstance(checked["seconds"], float)


def test_plain_lines_by_default(tmp_path: Path) -> None:
    logged = run_once(tmp_path)
    assert any(" check: parsed -> needs_review (" in line and "GDPR-" in line
               for line in logged.splitlines()), logged


@pytest.mark.parametrize("fmt", ["xml"])
def test_an_unknown_log_format_is_refused(fmt: str) -> None:
    done = subprocess.run([sys.executable, "-m", "kundo_gdpr.cli", "--log-format", fmt, "run"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "--log-format" in done.stderr
