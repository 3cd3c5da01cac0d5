"""The access log never holds a credential: link tokens in paths are cut.

`/downloads/<token>` works for anyone who has it until it expires, and
`/confirm/<token>` confirms a request; a log that keeps them hands both to
anyone who can read the log.
"""

from __future__ import annotations

import logging
import re

TOKEN_PATH = re.compile(r"(/(?:downloads|confirm)/)[^\s\"?#]+")
CUT = r"\1…"


def cut(text: str) -> str:
    return TOKEN_PATH.sub(CUT, text)


class CutTokens(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = cut(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(cut(a) if isinstance(a, str) else a for a in record.args)
        return True


def cut_tokens_from_access_log() -> None:
    """Install the filter on aiohttp's access logger, once per process."""
    logger = logging.getLogger("aiohttp.access")
    if not any(isinstance(f, CutTokens) for f in logger.filters):
        logger.addFilter(CutTokens())
