"""What a transport is: one `send`, and one error type that says whether a
failure is permanent (never retry) or not.

Any other exception from `send` is a transport's bug; the driver counts it as
a failed attempt of the deliver stage all the same.
"""

from __future__ import annotations

from typing import Protocol


class TransportError(Exception):
    def __init__(self, message: str, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class Transport(Protocol):
    def send(self, sender: str, recipient: str, raw: bytes, message_id: str) -> None:
        """Deliver or raise TransportError. Sending the same Message-ID twice
        may deliver twice; the Message-ID lets the recipient recognise it."""
