"""`make demo` leaves an agent to sign in with, and says where."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy import select

from kundo_gdpr import config as config_module
from kundo_gdpr import db
from kundo_gdpr.demo import DEMO_AGENT, demo_agent
from kundo_gdpr.models import Agent
from kundo_gdpr.web.auth import authenticate

ROOT = Path(__file__).resolve().parent.parent


def test_the_demo_agent_gets_a_new_password_each_run_and_only_the_last_works(
    tmp_path: Path,
) -> None:
    shutil.copy(ROOT / "config.toml", tmp_path / "config.toml")
    config = config_module.load(tmp_path / "config.toml")
    engine = db.make_engine(config.database_url())
    db.upgrade(engine)
    first, second = demo_agent(config), demo_agent(config)
    assert first.url == "http://127.0.0.1:8080" and first.email == DEMO_AGENT
    assert first.password != second.password
    with db.session_factory(engine).begin() as session:
        assert authenticate(session, DEMO_AGENT, first.password) is None
        agent = authenticate(session, DEMO_AGENT, second.password)
        assert agent is not None and agent.is_admin
        assert len(session.scalars(select(Agent)).all()) == 1
    engine.dispose()


def test_the_demo_prints_the_address_and_the_login(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from kundo_gdpr.cli import main

    shutil.copy(ROOT / "config.toml", tmp_path / "config.toml")
    monkeypatch.chdir(tmp_path)
    assert main(["--config", "config.toml", "demo"]) == 0
    out = capsys.readouterr().out
    assert "run `kundo-gdpr web`, then open http://127.0.0.1:8080" in out
    password = out.split(f"sign in as {DEMO_AGENT} with password ", 1)[1].split()[0]
    config = config_module.load(tmp_path / "config.toml")
    engine = db.make_engine(config.database_url())
    with db.session_factory(engine).begin() as session:
        assert authenticate(session, DEMO_AGENT, password) is not None
    engine.dispose()
