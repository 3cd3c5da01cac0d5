"""The kundo-gdpr command: one module per command group, one small function per
subcommand. A group's module has `add(sub)`, which registers its parsers."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from kundo_gdpr import config as config_module
from kundo_gdpr import logs
from kundo_gdpr.cli import (
    agents,
    check,
    db,
    holds,
    outbox,
    parse,
    records,
    requests,
    schedules,
    service,
)
from kundo_gdpr.cli.common import Handler
from kundo_gdpr.config import ConfigError
from kundo_gdpr.desk import REGISTRY as DESK_STORES

# The command groups, in the order `--help` lists them.
GROUPS = (service, parse, check, db, requests, outbox, agents, holds, schedules, records)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logs.setup(args.log_format, args.verbose, states=getattr(args, "log_states", False))
    try:
        config = config_module.load(_config_path(args.config))
        config_module.check_registered("desk.store", config.desk.store, DESK_STORES)
    except ConfigError as exc:
        print(f"kundo-gdpr: configuration error: {exc}", file=sys.stderr)
        return 2
    handler: Handler = args.handler
    return handler(args, config)


def _config_path(given: str | None) -> Path | None:
    if given:
        return Path(given)
    if env := os.environ.get("KUNDO_GDPR_CONFIG"):
        return Path(env)
    default = Path("config.toml")
    return default if default.exists() else None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kundo-gdpr", description=__doc__)
    parser.add_argument("--config", help="config file (default: ./config.toml, $KUNDO_GDPR_CONFIG)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress")
    parser.add_argument("--log-format", choices=logs.FORMATS, default="plain",
                        help="log lines as plain text (default) or one JSON object each")
    sub = parser.add_subparsers(required=True, metavar="COMMAND")
    for group in GROUPS:
        group.add(sub)
    return parser

