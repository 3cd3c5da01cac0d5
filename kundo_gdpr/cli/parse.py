"""`parse`: what the parser understands of mail files, without a database."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from kundo_gdpr.cli.common import Subparsers
from kundo_gdpr.config import Config
from kundo_gdpr.intake.parse import ParseError, parse


def add(sub: Subparsers) -> None:
    p = sub.add_parser("parse", help="parse mail files and print what was understood")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--json", action="store_true", help="one JSON object per line per file")
    p.set_defaults(handler=cmd_parse)


def cmd_parse(args: argparse.Namespace, config: Config) -> int:
    readable = 0
    for name in args.files:
        try:
            raw = Path(name).read_bytes()
            readable += 1
            parsed = parse(raw, config.service.support_addresses)
        except (OSError, ParseError) as exc:
            print(json.dumps({"file": name, "error": str(exc)}, ensure_ascii=False), flush=True)
            continue
        if args.json:
            print(parsed.to_json(name), flush=True)
        else:
            _print_parsed(name, parsed.contract())
    return 0 if readable else 1


def _print_parsed(name: str, fields: dict[str, object]) -> None:
    print(name)
    for key, value in fields.items():
        shown = ", ".join(map(str, value)) if isinstance(value, list) else value
        print(f"  {key:<11} {shown}")
