"""The kundo-gdpr command: the parse contract, demo, requests."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kundo_gdpr.cli import main
from tests.helpers import SV_ASSERTION, request_mail

ROOT = Path(__file__).resolve().parents[1]
CONTRACT = ["file", "message_id", "sender", "language", "kinds", "subjects", "channels",
            "assertion", "problems"]


def test_parse_json_prints_one_line_per_file_in_order_and_errors_for_unreadable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "good.eml"
    good.write_bytes(request_mail(
        "Eva <eva@cykelbolaget.se>",
        f"Radera Alice@Example.com ur forum och chatt.\n\n{SV_ASSERTION}\n",
        message_id="<p1@cykelbolaget.se>"))
    empty = tmp_path / "empty.eml"
    empty.write_bytes(b"")
    missing = tmp_path / "missing.eml"
    assert main(["parse", str(good), str(missing), str(empty), "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["file"] for line in lines] == [str(good), str(missing), str(empty)]
    assert list(lines[0]) == CONTRACT
    assert lines[0] | {"file": ""} == {
        "file": "", "message_id": "<p1@cykelbolaget.se>", "sender": "eva@cykelbolaget.se",
        "language": "sv", "kinds": ["erase"], "subjects": ["alice@example.com"],
        "channels": ["forum", "chat"], "assertion": True, "problems": [],
    }
    assert set(lines[1]) == {"file", "error"}
    assert set(lines[2]) == {"file", "error"}


def test_parse_fails_only_when_no_file_could_be_read(tmp_path: Path) -> None:
    assert main(["parse", str(tmp_path / "nope.eml"), "--json"]) == 1


def test_demo_twice_handles_four_requests_and_writes_their_replies(tmp_path: Path) -> None:
    shutil.copy(ROOT / "config.toml", tmp_path / "config.toml")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for _ in range(2):
        out = subprocess.run(
            [sys.executable, "-m", "kundo_gdpr.cli", "--config", "config.toml", "demo"],
            cwd=tmp_path, env=env, capture_output=True, text=True, check=True,
        ).stdout
    table = {line.split()[0]: line.split()[2] for line in out.splitlines()[1:5]}
    assert table == {"demo-erase": "done", "demo-export": "done",
                     "demo-no-assertion": "rejected", "demo-not-editor": "rejected"}
    assert len(list((tmp_path / "var" / "outbox").glob("*.eml"))) == 6


def test_requests_list_show_approve_and_reject(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copy(ROOT / "config.toml", tmp_path / "config.toml")
    cfg = str(tmp_path / "config.toml")
    from kundo_gdpr import config as config_module
    from kundo_gdpr import db
    from kundo_gdpr.desk.seed import seed_demo
    from kundo_gdpr.intake.maildir import deliver
    from kundo_gdpr.web.auth import add_agent

    conf = config_module.load(cfg)
    engine = db.make_engine(conf.database_url())
    db.upgrade(engine)
    with db.session_factory(engine).begin() as session:
        seed_demo(session)
    body = f"Radera alice@example.com ur chatt.\n\n{SV_ASSERTION}\n"
    inbox = conf.path("var/inbox")
    deliver(inbox, request_mail("eva@cykelbolaget.se", body), "one")
    deliver(inbox, request_mail("eva@cykelbolaget.se", body.replace("alice", "bertil")), "two")
    assert main(["--config", cfg, "run", "--once"]) == 0
    capsys.readouterr()
    assert main(["--config", cfg, "requests", "list", "--state", "needs_review"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert len(listed) == 2
    first, second = sorted(line.split()[0] for line in listed)
    assert main(["--config", cfg, "requests", "preview", first]) == 0
    previewed = capsys.readouterr().out
    assert "chat   1 sessions, 2 messages" in previewed
    # As in the web app: erasure needs an admin (policy.erase_needs_admin), and --by names
    # the agent; someone who is not an admin agent is refused and nothing changes.
    assert main(["--config", cfg, "requests", "approve", first, "--by", "agent@kundo.se"]) == 1
    assert "Only an admin may approve erasure" in capsys.readouterr().err
    with db.session_factory(engine).begin() as session:
        add_agent(session, "agent@kundo.se", "a long password", is_admin=True)
    assert main(["--config", cfg, "requests", "approve", first, "--by", "agent@kundo.se"]) == 0
    assert main(["--config", cfg, "requests", "reject", second, "--reason", "Dubblett."]) == 0
    assert main(["--config", cfg, "requests", "approve", second]) == 1  # already rejected
    assert main(["--config", cfg, "run", "--once"]) == 0
    capsys.readouterr()
    assert main(["--config", cfg, "requests", "show", first]) == 0
    shown = capsys.readouterr().out
    assert "state      done" in shown
    assert "agent@kundo.se" in shown and "approved" in shown
    assert main(["--config", cfg, "requests", "show", "GDPR-1999-00001"]) == 1
