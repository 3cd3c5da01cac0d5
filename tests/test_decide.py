"""One place decides: the policy in force when a request is decided, and the
same rules for the CLI as for the web app."""

from __future__ import annotations

import argparse
import dataclasses

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from kundo_gdpr.cli.requests import cmd_requests_approve
from kundo_gdpr.config import Config
from kundo_gdpr.models import Request
from kundo_gdpr.stages import confirm
from kundo_gdpr.web.auth import add_agent
from tests.helpers import drop, request_mail
from tests.test_confirm import ERASE_ALICE, asked, confirm_config
from tests.test_pipeline import EXPORT_BERTIL, run_all, worker_for

__all__ = ["asked", "confirm_config"]  # fixtures, used by name


def _state(factory: sessionmaker[Session]) -> str:
    with factory() as session:
        return session.scalars(select(Request.state)).one()


@pytest.mark.parametrize("auto_then", [True, False])
def test_a_confirmed_request_is_decided_under_the_policy_in_force_when_confirmed(
    asked: str, confirm_config: Config, factory: sessionmaker[Session], auto_then: bool,
) -> None:
    """Checked under auto_approve = true; confirmed after the policy changed (or not)."""
    later = dataclasses.replace(
        confirm_config, policy=dataclasses.replace(confirm_config.policy, auto_approve=auto_then))
    with factory.begin() as session:
        confirm.confirm_token(session, later, asked)
    assert _state(factory) == ("approved" if auto_then else "needs_review")


@pytest.fixture
def review_config(config: Config) -> Config:
    """No auto-approve; erasure needs an admin; unsigned mail trusted."""
    return dataclasses.replace(
        config,
        policy=dataclasses.replace(config.policy, auto_approve=False, erase_needs_admin=True),
        auth=dataclasses.replace(config.auth, require=False),
    )


def _approve(config: Config, reference: str, by: str) -> int:
    return cmd_requests_approve(argparse.Namespace(reference=reference, by=by), config)


def _waiting(config: Config, engine: Engine, factory: sessionmaker[Session], body: str,
             sender: str = "eva@cykelbolaget.se") -> str:
    drop(config.path("var/inbox"), request_mail(sender, body), f"m{hash(body)}")
    run_all(worker_for(config, engine))
    with factory() as session:
        request = session.scalars(select(Request).where(Request.sender == sender)).one()
        assert request.state == "needs_review", request.findings
        return request.reference or ""


def test_cli_approve_needs_an_admin_agent_for_erasure_as_the_web_does(
    world: None, review_config: Config, engine: Engine, factory: sessionmaker[Session],
    capsys: pytest.CaptureFixture[str],
) -> None:
    reference = _waiting(review_config, engine, factory, ERASE_ALICE)
    with factory.begin() as session:
        add_agent(session, "anna@kundo.se", "a long password")
        add_agent(session, "adam@kundo.se", "a long password", is_admin=True)
    for by in ("anna@kundo.se", "someone"):
        assert _approve(review_config, reference, by) == 1
        assert "Only an admin may approve erasure" in capsys.readouterr().err
        assert _state(factory) == "needs_review"
    assert _approve(review_config, reference, "ADAM@kundo.se") == 0
    assert _state(factory) == "approved"


def test_cli_approve_refuses_a_request_with_blocking_findings_as_the_web_does(
    world: None, review_config: Config, engine: Engine, factory: sessionmaker[Session],
    capsys: pytest.CaptureFixture[str],
) -> None:
    reference = _waiting(review_config, engine, factory, EXPORT_BERTIL, "olle@bokhandeln.se")
    with factory.begin() as session:  # as a correction can leave it: no subject any more
        request = session.scalars(select(Request)).one()
        request.findings = [*request.findings,
                            {"code": "no_subject", "severity": "reject", "args": {}}]
    assert _approve(review_config, reference, "someone") == 1
    assert "must be corrected" in capsys.readouterr().err
    assert _state(factory) == "needs_review"
