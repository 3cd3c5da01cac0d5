"""What the parser understood of one mail: the contract between intake and checks."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

LANGUAGES = ("sv", "en")


@dataclass(frozen=True)
class ParsedMail:
    """A request mail as read by `intake.parse.parse`.

    `problems` holds stable codes (`missing_assertion`, `no_subject`, ...);
    tests, templates and the agents' UI key on them.
    """

    message_id: str | None
    sender: str | None
    sender_name: str | None
    subject_line: str
    language: str
    kinds: tuple[str, ...]
    subjects: tuple[str, ...]
    channels: tuple[str, ...]
    assertion: bool
    problems: tuple[str, ...]
    text: str = ""
    invalid_subjects: tuple[str, ...] = ()
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()
    reply_to: str | None = None
    attachments: tuple[AttachmentInfo, ...] = field(default=())
    # What the reading is unsure of, with the mail's words; checks make findings of them.
    doubts: tuple[Doubt, ...] = ()

    @property
    def auto_reply(self) -> bool:
        return "auto_reply" in self.problems

    def contract(self) -> dict[str, Any]:
        """The fields of the `parse --json` contract, in its order."""
        return {
            "message_id": self.message_id,
            "sender": self.sender,
            "language": self.language,
            "kinds": list(self.kinds),
            "subjects": list(self.subjects),
            "channels": list(self.channels),
            "assertion": self.assertion,
            "problems": list(self.problems),
        }

    def to_json(self, file: str) -> str:
        return json.dumps({"file": file, **self.contract()}, ensure_ascii=False)


@dataclass(frozen=True)
class Doubt:
    """A reading the parser is not sure of: `kind_doubt`, or `subject_is_staff`
    (a role or own-domain address the text names as the person)."""

    code: str
    words: str
    subject: str | None = None


@dataclass(frozen=True)
class AttachmentInfo:
    """An attachment as listed to an agent; its bytes are never decoded here."""

    filename: str | None
    content_type: str
    size: int
