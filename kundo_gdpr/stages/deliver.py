"""Stage deliver: `outbound_mail` `queued` -> `sent` | `failed` (and `held`
-> `queued` when the hourly limit allows, or `held` -> `bundled` into one digest
when more than `service.digest_after` wait for one address).

Reads the outbox; writes each reply's delivery state, attempts and last
error, with `reply_sent`/`reply_failed` audit events (`replies.outbox`).
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.orm import Session, sessionmaker

from kundo_gdpr.config import Config
from kundo_gdpr.replies.digest import bundle_held
from kundo_gdpr.replies.outbox import deliver_one, release_due
from kundo_gdpr.replies.transports import Transport


def deliver_all(
    factory: sessionmaker[Session], config: Config, transport: Transport,
    should_stop: Callable[[], bool] = lambda: False,
) -> int:
    """Send every reply that is due; returns how many were sent or failed.

    Released replies count as work only once sent, so an idle pass stays idle.
    """
    bundle_held(factory, config)
    release_due(factory, config)
    done = 0
    while not should_stop() and deliver_one(factory, config, transport):
        done += 1
    return done
