"""Retention schedules: runs match their previews, approvals hold, summaries reach the editors."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import time_machine
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from kundo_gdpr.actions import schedules
from kundo_gdpr.cli import main
from kundo_gdpr.config import Config
from kundo_gdpr.models import (
    Channel,
    ChatSession,
    Event,
    MailConversation,
    Organization,
    RetentionRule,
    RetentionRun,
    UndoWindow,
)
from tests.conftest import make_config
from tests.helpers import outbox_messages
from tests.test_pipeline import run_all, worker_for
from tests.test_undo import checksums
from tests.test_web import MakeClient, _client, _csrf, _sign_in, _token, agents  # noqa: F401

DEC = dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.UTC)


@pytest.fixture
def auto_config(tmp_path: Path, db_url: str) -> Config:
    return make_config(tmp_path, db_url, policy={"auto_approve": True}, auth={"require": False})


def chats_at(session: Session, slug: str) -> int:
    return session.scalar(select(func.count()).select_from(ChatSession).join(Channel)
                          .join(Organization).where(Organization.slug == slug)) or 0


def conversations_at(session: Session, slug: str) -> int:
    return session.scalar(select(func.count()).select_from(MailConversation).join(Channel)
                          .join(Organization).where(Organization.slug == slug)) or 0


def runs(session: Session) -> list[RetentionRun]:
    return list(session.scalars(select(RetentionRun).order_by(RetentionRun.id)))


def test_the_first_run_waits_runs_as_previewed_and_mails_only_the_controllers_editors(
    world: None, auto_config: Config, engine: Engine, factory: sessionmaker[Session],
) -> None:
    with time_machine.travel(DEC, tick=False):
        with factory.begin() as session:
            rule = schedules.add(session, "cykelbolaget", "chat", schedules.INACTIVE, 6,
                                 "sessions", "agent@kundo.se")
            rule_id = rule.id
            before = chats_at(session, "cykelbolaget"), chats_at(session, "bokhandeln")
        worker = worker_for(auto_config, engine)
        run_all(worker)
        with factory() as session:
            (run,) = runs(session)
            assert (run.state, run.waits_for) == ("waiting", "first_run")
            assert run.total > 0 and run.counts["sessions"] > 0
            assert (chats_at(session, "cykelbolaget"), chats_at(session, "bokhandeln")) == before
        with factory.begin() as session:
            schedules.approve(session, run.id, "agent@kundo.se")
        run_all(worker)
    with factory() as session:
        (done,) = runs(session)
        assert done.state == "done"
        assert done.result == done.counts  # the preview is what ran
        assert chats_at(session, "cykelbolaget") == before[0] - done.counts["sessions"]
        assert chats_at(session, "bokhandeln") == before[1]
        rule = session.get(RetentionRule, rule_id)
        assert rule and rule.last_run_total == done.total
        window = session.scalars(select(UndoWindow)).one()
        assert window.retention_run_id == done.id and window.key is not None
        actions = [e.action for e in session.scalars(select(Event).where(
            Event.action.like("schedule_%")).order_by(Event.id))]
        assert actions == ["schedule_added", "schedule_previewed", "schedule_approved",
                           "schedule_run_done"]
    mails = [m for m in outbox_messages(auto_config.path("var/outbox"))
             if "Schemalagd radering" in m["Subject"]]
    assert [m["To"] for m in mails] == ["eva@cykelbolaget.se"]
    text = mails[0].get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert f"{done.counts['sessions']} chattar" in text
    assert "kunder utan aktivitet i chatten på 6 månader" in text
    assert "ångra det fram till 2026-12-04 08:00 UTC" in text


def test_a_run_touching_more_than_twice_the_last_waits_for_approval_again(
    world: None, auto_config: Config, engine: Engine, factory: sessionmaker[Session],
) -> None:
    worker = worker_for(auto_config, engine)
    with time_machine.travel(DEC, tick=False):
        with factory.begin() as session:
            schedules.add(session, "cykelbolaget", "mail", schedules.OLDER, 10, schedules.WHOLE,
                          "agent@kundo.se")
            total_before = conversations_at(session, "cykelbolaget")
        run_all(worker)
        with factory.begin() as session:
            (first,) = runs(session)
            schedules.approve(session, first.id, "agent@kundo.se")
        run_all(worker)
        with factory() as session:
            (first,) = runs(session)
            assert first.state == "done" and first.result == first.counts
            assert 0 < first.counts["conversations"] < total_before
            assert conversations_at(session, "cykelbolaget") == (
                total_before - first.counts["conversations"])
    with time_machine.travel(DEC + dt.timedelta(days=1), tick=False):
        run_all(worker)  # a day on: few new old items, within twice the last: it just runs
        with factory() as session:
            second = runs(session)[1]
            assert second.state == "done" and second.waits_for is None
            assert second.total <= 2 * first.total
    later = dt.datetime(2027, 7, 1, 8, 0, tzinfo=dt.UTC)
    with time_machine.travel(later, tick=False):
        run_all(worker)
        with factory() as session:
            third = runs(session)[2]
            assert third.total > 2 * first.total
            assert (third.state, third.waits_for) == ("waiting", "growth")
            left = conversations_at(session, "cykelbolaget")
        run_all(worker)
        with factory() as session:
            assert conversations_at(session, "cykelbolaget") == left  # still waiting


def test_a_rule_with_no_age_or_that_takes_a_whole_channel_is_refused(
    world: None, factory: sessionmaker[Session],
) -> None:
    with factory.begin() as session:
        with pytest.raises(schedules.ScheduleError) as zero:
            schedules.add(session, "cykelbolaget", "forum", schedules.OLDER, 0, schedules.WHOLE,
                          "agent@kundo.se")
        assert zero.value.code == "age_zero"
    with time_machine.travel(dt.datetime(2030, 1, 1, tzinfo=dt.UTC), tick=False):
        with factory.begin() as session, pytest.raises(schedules.ScheduleError) as whole:
            schedules.add(session, "cykelbolaget", "forum", schedules.INACTIVE, 12, "posts",
                          "agent@kundo.se")
        assert whole.value.code == "whole_channel"
        assert whole.value.detail["channel"] == "Cykelbolaget AB – forum"
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(RetentionRule)) == 0


def test_schedules_on_the_command_line_add_preview_list_and_remove(
    world: None, auto_config: Config, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    config_file = tmp_path / "config.toml"
    config_file.write_text(f'[database]\nurl = "{auto_config.database.url}"\n', encoding="utf-8")
    base = ["--config", str(config_file), "schedules"]
    with time_machine.travel(DEC, tick=False):
        assert main([*base, "add", "--org", "cykelbolaget", "--kind", "chat",
                     "--older-than", "0"]) == 1
        assert "the age must be at least one month" in capsys.readouterr().err
        assert main([*base, "add", "--org", "cykelbolaget", "--kind", "chat",
                     "--inactive-for", "6"]) == 0
        assert "rule #1: chat, customers inactive for 6 months, strategy sessions" in (
            capsys.readouterr().out)
        assert main([*base, "preview", "1"]) == 0
        assert "sessions" in capsys.readouterr().out
        assert main([*base, "list"]) == 0
        assert "#1    cykelbolaget" in capsys.readouterr().out
        assert main([*base, "remove", "1"]) == 0
        assert main([*base, "remove", "1"]) == 1
        assert "no rule #1" in capsys.readouterr().err


async def test_an_agent_sets_previews_and_approves_a_rule_on_the_web(
    aiohttp_client: MakeClient, world: None, auto_config: Config, engine: Engine,
    agents: None, factory: sessionmaker[Session],  # noqa: F811
) -> None:
    form = {"organization": "cykelbolaget", "kind": "chat", "basis": "inactive", "months": "6"}
    with time_machine.travel(dt.datetime(2030, 1, 1, tzinfo=dt.UTC), tick=False):
        anna = await _client(aiohttp_client, auto_config, engine)
        await _sign_in(anna, "anna@kundo.se")
        refused = await anna.post("/schedules", data={**form, "csrf": await _token(
            anna, "/schedules")})
        assert "would erase the whole channel Cykelbolaget AB – chatt today" in (
            await refused.text())
    with time_machine.travel(DEC, tick=False):
        anna = await _client(aiohttp_client, auto_config, engine)
        await _sign_in(anna, "anna@kundo.se")
        added = await anna.post("/schedules", data={**form, "csrf": await _token(
            anna, "/schedules")})
        assert "The rule is set." in await added.text()
        run_all(worker_for(auto_config, engine))
        html = await (await anna.get("/schedules")).text()
        assert "waiting: first run" in html and "customers with no activity for 6 months" in html
        with factory() as session:
            (run,) = runs(session)
        approved = await anna.post(f"/schedules/runs/{run.id}/approve",
                                   data={"csrf": _csrf(html)})
        assert "The run is approved." in await approved.text()
        run_all(worker_for(auto_config, engine))
    with factory() as session:
        (run,) = runs(session)
        assert run.state == "done" and run.approved_by == "anna@kundo.se"


def test_a_done_run_can_be_undone_within_its_window_exactly(
    world: None, auto_config: Config, engine: Engine, factory: sessionmaker[Session],
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    before = checksums(engine)
    with time_machine.travel(DEC, tick=False):
        with factory.begin() as session:
            schedules.add(session, "cykelbolaget", "forum", schedules.INACTIVE, 6, "posts",
                          "agent@kundo.se")
        run_all(worker_for(auto_config, engine))
        with factory.begin() as session:
            (run,) = runs(session)
            schedules.approve(session, run.id, "agent@kundo.se")
        run_all(worker_for(auto_config, engine))
        assert checksums(engine) != before
        config_file = tmp_path / "config.toml"
        config_file.write_text(f'[database]\nurl = "{auto_config.database.url}"\n',
                               encoding="utf-8")
        args = ["--config", str(config_file), "schedules", "undo", str(run.id), "--reason", "fel"]
        assert main(args) == 0
        assert checksums(engine) == before
        assert main(args) == 1
        assert "only a done erasure can be undone" in capsys.readouterr().err
    with factory() as session:
        (run,) = runs(session)
        assert run.state == "undone"
