"""The agents' review queue: an aiohttp app with server-rendered pages."""

from __future__ import annotations

from kundo_gdpr.web.app import make_app

__all__ = ["make_app"]
