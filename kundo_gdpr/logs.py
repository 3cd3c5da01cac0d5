"""Log lines: plain text by default, one JSON object per line with
`--log-format json`.

The driver logs one INFO line per state change, with the fields
`reference`, `stage`, `from_state`, `to_state` and `seconds` (never a subject
address or mail text); the formatters render those fields, and any other
record as usual.
"""

from __future__ import annotations

import json
import logging
from typing import Any

FORMATS = ("plain", "json")
CHANGE_FIELDS = ("reference", "stage", "from_state", "to_state", "seconds")
# The loggers whose INFO lines `run` and `serve` show without -v.
STATE_LOGGER = "kundo_gdpr.stages.driver"


def _change(record: logging.LogRecord) -> dict[str, Any] | None:
    if not all(hasattr(record, name) for name in CHANGE_FIELDS):
        return None
    return {name: getattr(record, name) for name in CHANGE_FIELDS}


class PlainFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        change = _change(record)
        if change is not None:
            record.msg, record.args = "%s %s: %s -> %s (%.3f s)", (
                change["reference"], change["stage"], change["from_state"],
                change["to_state"], change["seconds"])
        return super().format(record)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "at": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update(_change(record) or {})
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def setup(log_format: str = "plain", verbose: bool = False, states: bool = False) -> None:
    """Log to stderr: WARNING and up, everything at INFO with `verbose`, and the
    state changes at INFO with `states` (the long-running commands)."""
    root = logging.getLogger()
    if not root.handlers:  # as logging.basicConfig: a host that set up logging keeps it
        handler = logging.StreamHandler()
        handler.setFormatter(JsonFormatter() if log_format == "json" else PlainFormatter())
        root.addHandler(handler)
        root.setLevel(logging.INFO if verbose else logging.WARNING)
    if states:
        logging.getLogger(STATE_LOGGER).setLevel(logging.INFO)
