"""Retention schedules: a controller's rules, previewed by an agent, run by the worker.

A rule covers one channel kind of one organization and one of two bases:
`inactive` (customers with no activity there for N months: each is erased
with the desk's own erase, as a request would) or `older` (conversations,
forum threads and chats with no activity for N months: removed whole). Legal
holds are kept out of both, and a run's changes go to its undo vault.

Every day a due rule gets a preview (`RetentionRun`, with the exact plan).
The first run of a rule waits for an agent's approval, and so does one that
would touch more than twice what the rule's last run did; others are
approved by the rule's history. A run acts on its plan only, each subject or
unit checked again first, so what it removes is what the preview showed
(less anything that became active since).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import delete, exists, func, or_, select
from sqlalchemy.orm import Session, sessionmaker

from kundo_gdpr import audit
from kundo_gdpr.actions import vault
from kundo_gdpr.config import Config
from kundo_gdpr.desk import ChannelRef, Strategy, open_desk
from kundo_gdpr.models import (
    Attachment,
    Channel,
    ChatMessage,
    ChatSession,
    Editor,
    ForumPost,
    LegalHold,
    MailConversation,
    MailMessage,
    Organization,
    RetentionRule,
    RetentionRun,
    channel_editors,
    utcnow,
)
from kundo_gdpr.models.schedules import (
    APPROVED,
    DISCARDED,
    DONE,
    INACTIVE,
    OLDER,
    UNDONE,
    WAITING,
)
from kundo_gdpr.vocabulary import ChannelKind

__all__ = ["INACTIVE", "OLDER", "WHOLE", "ScheduleError", "add", "approve", "preview"]

STRATEGIES: dict[str, tuple[str, ...]] = {
    ChannelKind.MAIL: ("conversations", "messages"),
    ChannelKind.FORUM: ("posts", "delete_threads"),
    ChannelKind.CHAT: ("sessions",),
}
WHOLE = "whole"  # the `older` basis: units are removed whole
GROWTH = 2  # a run touching more than this many times the last run's items waits
UNITS = 500  # units or subjects per committed batch
# Listed for review, not changed: not part of what a run touches.
NOT_TOUCHED = ("name_mentions",)


class ScheduleError(Exception):
    """A rule refused at creation, or an action on a run in the wrong state."""

    def __init__(self, code: str, **detail: Any) -> None:
        super().__init__(code, detail)
        self.code = code
        self.detail = detail


# -- rules ------------------------------------------------------------------------------


def add(
    session: Session, organization: str, kind: str, basis: str, months: int, strategy: str,
    actor: str, now: dt.datetime | None = None,
) -> RetentionRule:
    """Create a rule, or refuse it: no age, an unknown choice, or a whole channel."""
    now = now or utcnow()
    org = session.scalar(select(Organization).where(Organization.slug == organization))
    if org is None:
        raise ScheduleError("no_such_organization", organization=organization)
    if kind not in STRATEGIES or basis not in (OLDER, INACTIVE):
        raise ScheduleError("invalid_choice", kind=kind, basis=basis)
    if months <= 0:
        raise ScheduleError("age_zero", months=months)
    allowed = (WHOLE,) if basis == OLDER else STRATEGIES[kind]
    if strategy not in allowed:
        raise ScheduleError("invalid_strategy", strategy=strategy, allowed=", ".join(allowed))
    rule = RetentionRule(organization_id=org.id, kind=kind, basis=basis, months=months,
                         strategy=strategy, created_by=actor, created_at=now, next_due_at=now)
    for channel in _channels(session, rule):
        if _whole_channel(session, rule, channel, cutoff(rule, now)):
            raise ScheduleError("whole_channel", channel=channel.name)
    session.add(rule)
    session.flush()
    audit.record(session, "schedule_added", actor=actor, rule_id=rule.id,
                 organization=org.slug, kind=kind, basis=basis, months=months,
                 strategy=strategy)
    return rule


def remove(session: Session, rule_id: int, actor: str, now: dt.datetime | None = None) -> None:
    rule = session.get(RetentionRule, rule_id)
    if rule is None or rule.removed_at is not None:
        raise ScheduleError("no_such_rule", rule_id=rule_id)
    rule.removed_at = now or utcnow()
    for run in session.scalars(select(RetentionRun).where(
            RetentionRun.rule_id == rule.id, RetentionRun.state.in_((WAITING, APPROVED)))):
        run.state = DISCARDED
    audit.record(session, "schedule_removed", actor=actor, rule_id=rule.id)


def rules(session: Session) -> list[tuple[RetentionRule, str, RetentionRun | None]]:
    """Active rules with their organization's slug and latest run."""
    found = session.execute(select(RetentionRule, Organization.slug).join(Organization)
                            .where(RetentionRule.removed_at.is_(None))
                            .order_by(RetentionRule.id)).all()
    return [(rule, slug, _latest(session, rule.id)) for rule, slug in found]


def _latest(session: Session, rule_id: int) -> RetentionRun | None:
    return session.scalar(select(RetentionRun).where(RetentionRun.rule_id == rule_id)
                          .order_by(RetentionRun.id.desc()).limit(1))


def cutoff(rule: RetentionRule, now: dt.datetime) -> dt.datetime:
    """Now less the rule's months (calendar months, the day clamped to the month's end)."""
    month = now.month - 1 - rule.months
    year, month = now.year + month // 12, month % 12 + 1
    for day in range(now.day, 27, -1):
        try:
            return now.replace(year=year, month=month, day=day)
        except ValueError:
            continue
    return now.replace(year=year, month=month, day=min(now.day, 28))


def _channels(session: Session, rule: RetentionRule) -> list[ChannelRef]:
    return open_desk("sql", session).organization_channels(rule.organization_id, (rule.kind,))


# -- what a rule matches ------------------------------------------------------------------


def _held_keys(session: Session, organization_id: int, channel_id: int,
               now: dt.datetime) -> set[str]:
    return set(session.scalars(select(LegalHold.subject).where(
        LegalHold.organization_id == organization_id, LegalHold.ended_at.is_(None),
        LegalHold.ends_at > now,
        or_(LegalHold.channel_id.is_(None), LegalHold.channel_id == channel_id))))


def _units(session: Session, kind: str, channel_id: int, before: dt.datetime | None,
           held: set[str]) -> list[int]:
    """Conversations, forum threads (their openers) or chats of the channel with no
    activity since `before` (None: all of them), none of them a held subject's."""
    if kind == ChannelKind.MAIL:
        c, m = MailConversation, MailMessage
        stmt = select(c.id).where(c.channel_id == channel_id)
        if before is not None:
            stmt = stmt.where(c.created_at < before, ~exists().where(
                m.conversation_id == c.id, m.created_at >= before))
        if held:
            stmt = stmt.where(or_(c.customer_key.is_(None), c.customer_key.not_in(held)),
                              ~exists().where(m.conversation_id == c.id, m.from_key.in_(held)))
        return list(session.scalars(stmt.order_by(c.id)))
    if kind == ChannelKind.FORUM:
        p = ForumPost
        reply = select(ForumPost.id).where(ForumPost.topic_id == p.id)
        stmt = select(p.id).where(p.channel_id == channel_id, p.topic_id.is_(None))
        if before is not None:
            stmt = stmt.where(p.created_at < before, ~exists(reply.where(
                ForumPost.created_at >= before)))
        if held:
            stmt = stmt.where(or_(p.author_key.is_(None), p.author_key.not_in(held)),
                              ~exists(reply.where(ForumPost.author_key.in_(held))))
        return list(session.scalars(stmt.order_by(p.id)))
    s, cm = ChatSession, ChatMessage
    stmt = select(s.id).where(s.channel_id == channel_id)
    if before is not None:
        stmt = stmt.where(s.started_at < before, ~exists().where(
            cm.session_id == s.id, cm.sent_at >= before))
    if held:
        stmt = stmt.where(or_(s.visitor_key.is_(None), s.visitor_key.not_in(held)))
    return list(session.scalars(stmt.order_by(s.id)))


def _customers(session: Session, kind: str, channel_id: int,
               since: dt.datetime | None) -> set[str]:
    """Keys of the channel's customers (active since `since`, or all of them)."""
    if kind == ChannelKind.MAIL:
        c, m = MailConversation, MailMessage
        stmt = select(c.customer_key).where(c.channel_id == channel_id,
                                            c.customer_key.is_not(None))
        if since is not None:
            stmt = stmt.where(or_(c.created_at >= since, exists().where(
                m.conversation_id == c.id, m.created_at >= since)))
    elif kind == ChannelKind.FORUM:
        stmt = select(ForumPost.author_key).where(ForumPost.channel_id == channel_id,
                                                  ForumPost.author_key.is_not(None))
        if since is not None:
            stmt = stmt.where(ForumPost.created_at >= since)
    else:
        s, cm = ChatSession, ChatMessage
        stmt = select(s.visitor_key).where(s.channel_id == channel_id, s.visitor_key.is_not(None))
        if since is not None:
            stmt = stmt.where(or_(s.started_at >= since, exists().where(
                cm.session_id == s.id, cm.sent_at >= since)))
    return {k for k in session.scalars(stmt.distinct()) if k}


def _inactive(session: Session, kind: str, channel_id: int, before: dt.datetime) -> list[str]:
    return sorted(_customers(session, kind, channel_id, None)
                  - _customers(session, kind, channel_id, before))


def _whole_channel(session: Session, rule: RetentionRule, channel: ChannelRef,
                   before: dt.datetime) -> bool:
    if rule.basis == OLDER:
        everything = _units(session, rule.kind, channel.id, None, set())
        return bool(everything) and len(_units(session, rule.kind, channel.id, before,
                                               set())) == len(everything)
    customers = _customers(session, rule.kind, channel.id, None)
    return bool(customers) and len(_inactive(session, rule.kind, channel.id,
                                             before)) == len(customers)


# -- previews ------------------------------------------------------------------------------


def preview(session: Session, config: Config, rule: RetentionRule,
            now: dt.datetime | None = None) -> tuple[dict[str, Any], dict[str, int]]:
    """What a run of the rule would remove now: (plan, counts), changing nothing."""
    now = now or utcnow()
    before = cutoff(rule, now)
    plan: dict[str, Any] = {"channels": {}}
    counts: dict[str, int] = {}
    desk = open_desk(config.desk.store, session)
    for channel in _channels(session, rule):
        held = _held_keys(session, rule.organization_id, channel.id, now)
        if rule.basis == OLDER:
            units = _units(session, rule.kind, channel.id, before, held)
            plan["channels"][str(channel.id)] = units
            _add(counts, _count_units(session, rule.kind, units))
            continue
        subjects = [k for k in _inactive(session, rule.kind, channel.id, before)
                    if k not in held]
        plan["channels"][str(channel.id)] = subjects
        for subject in subjects:
            _add(counts, desk.count(subject, [channel], _strategy(config, rule)).get(
                rule.kind, {}))
    return plan, counts


def total(counts: dict[str, int]) -> int:
    return sum(n for name, n in counts.items() if name not in NOT_TOUCHED)


def _add(into: dict[str, int], more: dict[str, int]) -> None:
    for name, n in more.items():
        into[name] = into.get(name, 0) + n


def _strategy(config: Config, rule: RetentionRule) -> Strategy:
    if rule.basis == OLDER:
        return config.erase
    choice: dict[str, Any] = {rule.kind: rule.strategy}
    return dataclasses.replace(config.erase, **choice)


def _count_units(session: Session, kind: str, units: list[int]) -> dict[str, int]:
    counts = {name: 0 for name in _UNIT_NAMES[kind]}
    for chunk in _chunks(units):
        _add(counts, _unit_rows(session, kind, chunk, dry_run=True))
    return counts


_UNIT_NAMES: dict[str, tuple[str, ...]] = {
    ChannelKind.MAIL: ("conversations", "messages", "attachments"),
    ChannelKind.FORUM: ("posts", "replies", "attachments"),
    ChannelKind.CHAT: ("sessions", "messages", "attachments"),
}


def _unit_rows(session: Session, kind: str, ids: list[int], dry_run: bool) -> dict[str, int]:
    """Count (dry_run) or delete the units with these ids, children first."""
    if kind == ChannelKind.MAIL:
        messages = select(MailMessage.id).where(MailMessage.conversation_id.in_(ids))
        parts: list[tuple[str, Any, Any]] = [
            ("attachments", Attachment, Attachment.mail_message_id.in_(messages)),
            ("messages", MailMessage, MailMessage.conversation_id.in_(ids)),
            ("conversations", MailConversation, MailConversation.id.in_(ids))]
    elif kind == ChannelKind.FORUM:
        thread = select(ForumPost.id).where(or_(ForumPost.id.in_(ids),
                                                ForumPost.topic_id.in_(ids)))
        parts = [("attachments", Attachment, Attachment.forum_post_id.in_(thread)),
                 ("replies", ForumPost, ForumPost.topic_id.in_(ids)),
                 ("posts", ForumPost, ForumPost.id.in_(ids))]
    else:
        messages = select(ChatMessage.id).where(ChatMessage.session_id.in_(ids))
        parts = [("attachments", Attachment, Attachment.chat_message_id.in_(messages)),
                 ("messages", ChatMessage, ChatMessage.session_id.in_(ids)),
                 ("sessions", ChatSession, ChatSession.id.in_(ids))]
    done: dict[str, int] = {}
    for name, model, where in parts:
        if dry_run:
            done[name] = int(session.scalar(
                select(func.count()).select_from(model).where(where)) or 0)
        else:
            result = session.execute(delete(model).where(where),
                                     execution_options={"synchronize_session": False})
            done[name] = int(getattr(result, "rowcount", 0) or 0)
    return done


def _chunks(values: Sequence[Any]) -> Iterator[list[Any]]:
    for start in range(0, len(values), UNITS):
        yield list(values[start:start + UNITS])


# -- the daily evaluation, approval and runs ---------------------------------------------------


def evaluate_due(factory: sessionmaker[Session], config: Config,
                 now: dt.datetime | None = None) -> int:
    """Preview every rule that is due (daily); how many previews were made."""
    now = now or utcnow()
    made = 0
    with factory.begin() as session:
        due = session.scalars(select(RetentionRule).where(
            RetentionRule.removed_at.is_(None), RetentionRule.next_due_at <= now)
            .order_by(RetentionRule.id)).all()
        for rule in due:
            if session.scalar(select(RetentionRun.id).where(
                    RetentionRun.rule_id == rule.id, RetentionRun.state == APPROVED)):
                continue  # runs first; the next preview after it
            propose(session, config, rule, now)
            rule.next_due_at = now + dt.timedelta(days=1)
            made += 1
    return made


def propose(session: Session, config: Config, rule: RetentionRule,
            now: dt.datetime) -> RetentionRun:
    """A fresh preview for the rule, approved by its history or waiting for an agent."""
    for old in session.scalars(select(RetentionRun).where(
            RetentionRun.rule_id == rule.id, RetentionRun.state == WAITING)):
        old.state = DISCARDED  # an agent approves what is true today, not last week
    plan, counts = preview(session, config, rule, now)
    touched = total(counts)
    waits = ("first_run" if rule.last_run_total is None
             else "growth" if touched > GROWTH * rule.last_run_total else None)
    run = RetentionRun(rule_id=rule.id, state=WAITING if waits else APPROVED, waits_for=waits,
                       cutoff=cutoff(rule, now), plan=plan, counts=counts, total=touched,
                       created_at=now, result={})
    if waits is None:
        run.approved_by, run.approved_at = "schedule", now
    session.add(run)
    session.flush()
    audit.record(session, "schedule_previewed", rule_id=rule.id, run_id=run.id,
                 counts=counts, total=touched, waits_for=waits)
    return run


def approve(session: Session, run_id: int, actor: str, now: dt.datetime | None = None) -> None:
    run = session.get(RetentionRun, run_id)
    if run is None:
        raise ScheduleError("no_such_run", run_id=run_id)
    if run.state != WAITING:
        raise ScheduleError("not_waiting", run_id=run_id, state=run.state)
    run.state, run.approved_by, run.approved_at = APPROVED, actor, now or utcnow()
    audit.record(session, "schedule_approved", actor=actor, rule_id=run.rule_id, run_id=run.id,
                 total=run.total)


def execute(factory: sessionmaker[Session], config: Config, run_id: int,
            watched: sessionmaker[Session]) -> None:
    """Carry out an approved run's plan, a batch per transaction with its counts."""
    with factory() as session:
        run = session.get(RetentionRun, run_id)
        assert run is not None
        rule = session.get(RetentionRule, run.rule_id)
        assert rule is not None
        channels = {str(c.id): c for c in _channels(session, rule)}
        plan, before, strategy = dict(run.plan["channels"]), run.cutoff, _strategy(config, rule)
        kind, basis, org = rule.kind, rule.basis, rule.organization_id
        if not run.result:  # the preview's names, so that the two compare item by item
            run.result = dict.fromkeys(run.counts, 0)
            session.commit()
    with watched() as session:
        for channel_id, items in plan.items():
            channel = channels.get(channel_id)
            if channel is None:
                continue
            held = _held_keys(session, org, channel.id, utcnow())
            if basis == OLDER:
                still = set(_units(session, kind, channel.id, before, held))
                for chunk in _chunks([u for u in items if u in still]):
                    _record(session, run_id, _unit_rows(session, kind, chunk, dry_run=False))
                    session.commit()
                continue
            inactive = set(_inactive(session, kind, channel.id, before)) - held
            desk = open_desk(config.desk.store, session)
            for subject in (s for s in items if s in inactive):
                for step in desk.erase(subject, [channel], strategy):
                    _record(session, run_id, step.counts.get(kind, {}))
                    session.commit()


def _record(session: Session, run_id: int, counts: dict[str, int]) -> None:
    run = session.get(RetentionRun, run_id)
    assert run is not None
    result = dict(run.result)
    _add(result, counts)
    run.result = result  # reassigned: a JSON column is saved when replaced


def finish(session: Session, run: RetentionRun, now: dt.datetime) -> RetentionRule:
    rule = session.get(RetentionRule, run.rule_id)
    assert rule is not None
    run.state, run.done_at = DONE, now
    rule.last_run_total = total(run.result)
    audit.record(session, "schedule_run_done", rule_id=rule.id, run_id=run.id,
                 counts=run.result, total=rule.last_run_total)
    return rule


def editors(session: Session, organization_id: int) -> list[str]:
    """The controller's editors: who edits any of its channels."""
    stmt = (select(Editor.email).join(channel_editors, channel_editors.c.editor_id == Editor.id)
            .join(Channel, Channel.id == channel_editors.c.channel_id)
            .where(Channel.organization_id == organization_id).distinct())
    return sorted({e.lower() for e in session.scalars(stmt)})


def undo(session: Session, run_id: int, actor: str, reason: str,
         now: dt.datetime | None = None) -> dict[str, int]:
    """Put back what a done run removed, within its safety window (as a request's undo):
    every row or none (`vault.UndoRefused`). The rows restored per table."""
    now = now or utcnow()
    run = session.get(RetentionRun, run_id)
    if run is None:
        raise ScheduleError("no_such_run", run_id=run_id)
    window = vault.run_window(session, run_id)
    if run.state != DONE or window is None:
        raise vault.UndoRefused("not_erased", state=run.state)
    restored = vault.restore(session, window, now)
    run.state = UNDONE
    audit.record(session, "schedule_run_undone", actor=actor, rule_id=run.rule_id,
                 run_id=run.id, reason=reason, restored=restored)
    return restored
