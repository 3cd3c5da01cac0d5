"""`schedules`: retention rules per controller, their previews and approvals."""

from __future__ import annotations

import argparse
import os
import sys

from kundo_gdpr.actions import schedules
from kundo_gdpr.cli.common import Subparsers, open_session
from kundo_gdpr.config import Config
from kundo_gdpr.models import RetentionRule, RetentionRun
from kundo_gdpr.vocabulary import CHANNELS

MESSAGES = {
    "no_such_organization": "no organization with the slug {organization!r}",
    "invalid_choice": "unknown channel kind {kind!r} or basis {basis!r}",
    "age_zero": "the age must be at least one month, not {months}",
    "invalid_strategy": "strategy {strategy!r} is not one of: {allowed}",
    "whole_channel": "the rule would erase the whole channel {channel!r} today; refused",
    "no_such_rule": "no rule #{rule_id}",
    "no_such_run": "no run #{run_id}",
    "not_waiting": "run #{run_id} is {state}, not waiting for approval",
}


def add(sub: Subparsers) -> None:
    p = sub.add_parser("schedules", help="retention rules per controller (scheduled erasure)")
    ssub = p.add_subparsers(required=True, metavar="ACTION")
    ap = ssub.add_parser("add", help="a rule; refused if it has no age or takes a whole channel")
    ap.add_argument("--org", required=True, help="the organization's slug")
    ap.add_argument("--kind", required=True, choices=CHANNELS)
    basis = ap.add_mutually_exclusive_group(required=True)
    basis.add_argument("--older-than", type=int, metavar="MONTHS",
                       help="conversations, threads and chats with no activity for MONTHS")
    basis.add_argument("--inactive-for", type=int, metavar="MONTHS",
                       help="customers with no activity in the channel kind for MONTHS")
    ap.add_argument("--strategy", default=None,
                    help="as [erase] for the kind (inactive); 'whole' for --older-than")
    ap.add_argument("--by", default=os.environ.get("USER", "cli"), help="who sets it")
    ap.set_defaults(handler=cmd_add)
    ssub.add_parser("list", help="rules and their latest run").set_defaults(handler=cmd_list)
    pp = ssub.add_parser("preview", help="what a rule's run would remove now; changes nothing")
    pp.add_argument("rule", type=int)
    pp.set_defaults(handler=cmd_preview)
    ok = ssub.add_parser("approve", help="approve a run waiting for an agent")
    ok.add_argument("run", type=int)
    ok.add_argument("--by", default=os.environ.get("USER", "cli"), help="who approves")
    ok.set_defaults(handler=cmd_approve)
    up = ssub.add_parser("undo", help="put back what a run removed, within its safety window")
    up.add_argument("run", type=int)
    up.add_argument("--reason", required=True)
    up.add_argument("--by", default=os.environ.get("USER", "cli"), help="who undoes it")
    up.set_defaults(handler=cmd_undo)
    rp = ssub.add_parser("remove", help="remove a rule (its waiting runs are discarded)")
    rp.add_argument("rule", type=int)
    rp.add_argument("--by", default=os.environ.get("USER", "cli"), help="who removes it")
    rp.set_defaults(handler=cmd_remove)


def _refused(exc: schedules.ScheduleError) -> int:
    print(f"kundo-gdpr: {MESSAGES[exc.code].format(**exc.detail)}", file=sys.stderr)
    return 1


def cmd_add(args: argparse.Namespace, config: Config) -> int:
    basis = schedules.OLDER if args.older_than is not None else schedules.INACTIVE
    months = args.older_than if args.older_than is not None else args.inactive_for
    strategy = args.strategy or (schedules.WHOLE if basis == schedules.OLDER
                                 else getattr(config.erase, args.kind))
    with open_session(config) as session, session.begin():
        try:
            rule = schedules.add(session, args.org, args.kind, basis, months, strategy, args.by)
        except schedules.ScheduleError as exc:
            return _refused(exc)
        print(f"rule #{rule.id}: {_describe(rule)}; its first run waits for approval")
    return 0


def _describe(rule: RetentionRule) -> str:
    what = "customers inactive" if rule.basis == schedules.INACTIVE else "items older"
    return f"{rule.kind}, {what} for {rule.months} months, strategy {rule.strategy}"


def cmd_list(args: argparse.Namespace, config: Config) -> int:
    with open_session(config) as session:
        for rule, slug, run in schedules.rules(session):
            print(f"#{rule.id:<4} {slug:<16} {_describe(rule)}")
            if run is not None:
                print(f"      run #{run.id} {_run_state(run)}: {run.total} items")
    return 0


def _run_state(run: RetentionRun) -> str:
    return f"{run.state} ({run.waits_for})" if run.waits_for and run.state == "waiting" else (
        run.state)


def cmd_preview(args: argparse.Namespace, config: Config) -> int:
    with open_session(config) as session:
        rule = session.get(RetentionRule, args.rule)
        if rule is None or rule.removed_at is not None:
            return _refused(schedules.ScheduleError("no_such_rule", rule_id=args.rule))
        _plan, counts = schedules.preview(session, config, rule)
        print(f"rule #{rule.id}: {_describe(rule)}")
        for name, n in counts.items():
            print(f"  {n:>7} {name}")
        print(f"  {schedules.total(counts):>7} in all")
    return 0


def cmd_approve(args: argparse.Namespace, config: Config) -> int:
    with open_session(config) as session, session.begin():
        try:
            schedules.approve(session, args.run, args.by)
        except schedules.ScheduleError as exc:
            return _refused(exc)
        print(f"run #{args.run} approved; the worker carries it out")
    return 0


def cmd_remove(args: argparse.Namespace, config: Config) -> int:
    with open_session(config) as session, session.begin():
        try:
            schedules.remove(session, args.rule, args.by)
        except schedules.ScheduleError as exc:
            return _refused(exc)
        print(f"rule #{args.rule} removed")
    return 0


def cmd_undo(args: argparse.Namespace, config: Config) -> int:
    from kundo_gdpr.stages import undo

    with open_session(config) as session, session.begin():
        try:
            restored = schedules.undo(session, args.run, args.by, args.reason)
        except schedules.ScheduleError as exc:
            return _refused(exc)
        except undo.UndoRefused as exc:
            print(f"kundo-gdpr: run #{args.run}: {undo.explain(exc)}", file=sys.stderr)
            return 1
        print(f"run #{args.run} undone: {sum(restored.values())} rows restored")
    return 0
