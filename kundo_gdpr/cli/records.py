"""`ledger replay`, `proof verify` (and `retention run`): our own records."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path
from typing import Any

from kundo_gdpr import db
from kundo_gdpr.cli.common import Subparsers
from kundo_gdpr.config import Config
from kundo_gdpr.records.words import item, say


def add(sub: Subparsers) -> None:
    lp = sub.add_parser("ledger", help="the erasure ledger: erase again after a backup restore")
    lsub = lp.add_subparsers(required=True, metavar="ACTION")
    rp = lsub.add_parser("replay", help="erase again what the ledger says was erased "
                         "(run after restoring a database backup)")
    rp.add_argument("--since", help="only erasures from this date on (YYYY-MM-DD)")
    rp.set_defaults(handler=cmd_ledger_replay)
    pp = sub.add_parser("proof", help="signed proofs of handling (proof.json)")
    psub = pp.add_subparsers(required=True, metavar="ACTION")
    vp = psub.add_parser("verify", help="check a proof.json and say what it proves")
    vp.add_argument("file")
    vp.add_argument("--public-key", help="PEM file (default: this service's key, as at "
                    "/.well-known/kundo-gdpr-proof.pub)")
    vp.set_defaults(handler=cmd_proof_verify)
    tp = sub.add_parser("retention", help="minimise our own records after their retention")
    tsub = tp.add_subparsers(required=True, metavar="ACTION")
    xp = tsub.add_parser("run", help="minimise requests past [retention] request_days and "
                         "delete the mailbox's processed copies past mailbox_days")
    xp.add_argument("--dry-run", action="store_true",
                    help="say what would change, change nothing")
    xp.set_defaults(handler=cmd_retention_run)


def cmd_ledger_replay(args: argparse.Namespace, config: Config) -> int:
    from kundo_gdpr.records import ledger

    since = None
    if args.since:
        try:
            since = dt.datetime.fromisoformat(args.since)
        except ValueError:
            print(say("error.date", value=args.since), file=sys.stderr)
            return 2
        since = since if since.tzinfo else since.replace(tzinfo=dt.UTC)
    engine = db.make_engine(config.database_url())
    db.upgrade(engine, config=config)
    report = ledger.replay(db.session_factory(engine), config, since)
    if not report.entries:
        print(say("ledger.empty", since=say("ledger.since", since=args.since) if since else ""))
    else:
        print(say("ledger.entries", report.entries, oldest=_when(report.oldest)))
    found = {ref: counts for ref, counts in report.erased.items() if counts}
    for reference, counts in sorted(found.items()):
        print(say("ledger.found", reference=reference, counts=_counts(counts)))
    if quiet := len(report.erased) - len(found):
        print(say("ledger.nothing", quiet))
    for skipped in report.skipped:
        detail = skipped.detail
        key = detail[0] if skipped.code == "key_missing" else ""
        listed = detail[1:] if skipped.code == "key_missing" else detail
        print(say(f"skipped.{skipped.code}", skipped.count, key=key,
                  detail=", ".join(listed)))
    return 1 if report.skipped else 0


def cmd_retention_run(args: argparse.Namespace, config: Config) -> int:
    import imaplib

    from kundo_gdpr.stages import sweep
    from kundo_gdpr.stages.driver import make_source

    engine = db.make_engine(config.database_url())
    db.upgrade(engine, config=config)
    dry = "dry" if args.dry_run else "done"
    days = config.retention.request_days
    minimised = sweep.minimise_due(db.session_factory(engine), config, dry_run=args.dry_run)
    engine.dispose()
    for m in minimised:
        print(say(f"retention.{dry}.request", reference=m.reference, state=m.state,
                  closed=_when(m.closed_at), what=_what(m.counts())))
    print(say(f"retention.{dry}.requests", len(minimised), days=days))
    source = make_source(config)
    try:
        purged = sweep.purge_mailbox(source, config, dry_run=args.dry_run)
    except (OSError, imaplib.IMAP4.error) as exc:
        print(say("retention.mailbox_error", source=source.name, reason=exc), file=sys.stderr)
        return 1
    finally:
        close = getattr(source, "close", None)
        if close is not None:
            close()
    print(say(f"retention.{dry}.mailbox", purged, days=config.retention.mailbox_days,
              source=source.name))
    return 0


def _what(counts: dict[str, int]) -> str:
    return ", ".join(say(f"retention.{k}", n) for k, n in counts.items())


def cmd_proof_verify(args: argparse.Namespace, config: Config) -> int:
    from kundo_gdpr.records import proof, signing

    try:
        data = Path(args.file).read_bytes()
        pem = Path(args.public_key).read_bytes() if args.public_key else None
    except OSError as exc:
        print(say("error.file", path=exc.filename, reason=exc.strerror), file=sys.stderr)
        return 2
    try:
        public = (signing.load_public(pem) if pem is not None
                  else signing.private_key(config).public_key())
    except (ValueError, signing.ProofKeyError) as exc:
        print(say("error.key", reason=exc), file=sys.stderr)
        return 2
    verdict = proof.verify(data, public)
    if not verdict.ok:
        why = say(f"why.{verdict.problem}", where=verdict.where)
        print(say("proof.invalid", path=args.file, why=why))
        return 1
    print(say("proof.valid", path=args.file, key=signing.key_id(public)))
    for line in says(verdict.fields):
        print(line)
    return 0


def says(fields: dict[str, Any]) -> list[str]:
    """What a valid proof proves, in words."""
    subjects = fields["subjects"]
    channels = ", ".join(f'{c["kind"]} "{c["name"]}"' for c in fields["channels"])
    lines = [
        say("says.intro", issuer=fields["issuer"], issued_at=fields["issued_at"]),
        say("says.received", reference=fields["reference"], controller=fields["controller"],
            received_at=fields["received_at"], mail=fields["request_mail_sha256"]),
        say("says.asked", len(subjects), kinds=say("and").join(fields["kinds"]),
            subjects=", ".join(subjects), channels=channels or say("none")),
        say("says.due", due_at=fields["due_at"]),
    ]
    if fields["done_at"] is None:
        return [*lines, say("says.receipt")]
    lines.append(say("says.done", done_at=fields["done_at"]))
    for action, per_subject in fields["counts"].items():
        for subject, counts in per_subject.items():
            lines.append(say("says.counts", action=action, subject=subject,
                             counts=_counts(counts)))
    lines += [say("says.file", name=f["name"], size=f["size"], sha256=f["sha256"])
              for f in fields["files"]]
    return lines


def _counts(counts: dict[str, Any]) -> str:
    """{"forum": {"posts": 3}} as "forum 3 posts"; {"forum": 3} as "forum 3"."""
    parts = []
    for kind, items in counts.items():
        if isinstance(items, dict) and any(items.values()):
            parts.append(f"{kind} " + ", ".join(item(i, n) for i, n in items.items() if n))
        elif isinstance(items, int) and items:
            parts.append(f"{kind} {items}")
    return "; ".join(parts) or say("none")


def _when(value: dt.datetime | None) -> str:
    return f"{value:%Y-%m-%d %H:%M} UTC" if value else "-"
