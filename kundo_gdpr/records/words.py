"""What the records commands say, in one table (never assembled in code).

A message with a count has "one" and "other" forms, chosen by `say`.
"""

from __future__ import annotations

from typing import Any

WORDS: dict[str, str | dict[str, str]] = {
    # ledger replay
    "ledger.entries": {"one": "Ledger: {n} entry, oldest {oldest}.",
                       "other": "Ledger: {n} entries, oldest {oldest}."},
    "ledger.empty": "Ledger: no entries{since}; nothing to replay.",
    "ledger.since": " since {since}",
    "ledger.found": "{reference}: erased again: {counts}.",
    "ledger.nothing": {"one": "{n} erasure checked, nothing of it was back.",
                       "other": "{n} erasures checked, nothing of them was back."},
    "skipped.bad_line": {
        "one": "Not checked: ledger line {detail} cannot be read.",
        "other": "Not checked: ledger lines {detail} cannot be read.",
    },
    "skipped.key_missing": {
        "one": "Not checked: {n} erasure was hashed with key {key}, which is not configured "
               "(add it to the variable named by records.old_hash_keys_env): {detail}.",
        "other": "Not checked: {n} erasures were hashed with key {key}, which is not configured "
                 "(add it to the variable named by records.old_hash_keys_env): {detail}.",
    },
    "skipped.not_in_ledger": {
        "one": "Not checked: {n} erasure done in this database is not in the ledger "
               "(done before the ledger began, or the ledger lost it): {detail}.",
        "other": "Not checked: {n} erasures done in this database are not in the ledger "
                 "(done before the ledger began, or the ledger lost them): {detail}.",
    },
    "error.date": "kundo-gdpr: --since {value!r} is not a date (YYYY-MM-DD or ISO 8601)",
    # proof verify
    "error.file": "kundo-gdpr: cannot read {path}: {reason}",
    "error.key": "kundo-gdpr: cannot use the public key: {reason}",
    "proof.valid": "{path}: VALID. Signed with Ed25519 key {key}.",
    "proof.invalid": "{path}: NOT VALID. {why}",
    "why.unreadable": "It is not a proof.json: not JSON, or proof, digests or signature missing.",
    "why.algorithm": "It is signed with an algorithm other than Ed25519.",
    "why.other_key": "It was signed with another key ({where}) than the one given.",
    "why.signature": "The signature does not match its content ({where} was changed, or more).",
    "why.field": "The field {where} was changed after signing.",
    "why.digest": "The digest {where} was changed after signing (the values hold).",
    "why.format": "It is not a kundo-gdpr proof of a known format ({where}).",
    "why.layout": "Its content is as signed, but the file's bytes were changed "
                  "(spaces, line breaks or encoding).",
    "says.intro": "It proves that {issuer} stated, on {issued_at}:",
    "says.received": "- request {reference} of {controller} was received on {received_at}, "
                     "as a mail whose SHA-256 is {mail};",
    "says.asked": {"one": "- it asked to {kinds} for {n} subject (keyed hash {subjects}), "
                          "in {channels};",
                   "other": "- it asked to {kinds} for {n} subjects (keyed hashes {subjects}), "
                            "in {channels};"},
    "says.due": "- it was due by {due_at};",
    "says.done": "- it was carried out on {done_at}:",
    "says.counts": "  {action} for {subject}: {counts};",
    "says.file": "  delivered {name}: {size} bytes, SHA-256 {sha256};",
    "says.receipt": "This is a receipt: it proves that the request was received, "
                    "not that it was carried out.",
    "and": " and ",
    # retention run
    "retention.done.request": "{reference} ({state}, closed {closed}): minimised: {what}.",
    "retention.dry.request": "{reference} ({state}, closed {closed}): would be minimised: "
                             "{what}.",
    "retention.done.requests": {
        "one": "Retention: {n} request closed more than {days} days ago minimised.",
        "other": "Retention: {n} requests closed more than {days} days ago minimised."},
    "retention.dry.requests": {
        "one": "Retention (dry run, nothing changed): {n} request closed more than {days} "
               "days ago would be minimised.",
        "other": "Retention (dry run, nothing changed): {n} requests closed more than {days} "
                 "days ago would be minimised."},
    "retention.done.mailbox": {
        "one": "Mailbox {source}: {n} processed copy older than {days} days deleted.",
        "other": "Mailbox {source}: {n} processed copies older than {days} days deleted."},
    "retention.dry.mailbox": {
        "one": "Mailbox {source}: {n} processed copy older than {days} days would be deleted.",
        "other": "Mailbox {source}: {n} processed copies older than {days} days would be "
                 "deleted."},
    "retention.mailbox_error": "kundo-gdpr: cannot reach the mailbox {source}: {reason}",
    "retention.subjects_hashed": {"one": "{n} subject address hashed and masked",
                           "other": "{n} subject addresses hashed and masked"},
    "retention.mails_emptied": {"one": "{n} mail emptied (SHA-256 and size kept)",
                        "other": "{n} mails emptied (SHA-256 and size kept)"},
    "retention.replies_emptied": {"one": "{n} reply emptied (purpose, Message-ID and SHA-256 kept)",
                          "other": "{n} replies emptied (purpose, Message-ID and SHA-256 kept)"},
    "retention.exports_deleted": {"one": "{n} export record deleted",
                          "other": "{n} export records deleted"},
    # item kinds in counts
    "item.posts": {"one": "post", "other": "posts"},
    "item.messages": {"one": "message", "other": "messages"},
    "item.sessions": {"one": "session", "other": "sessions"},
    "item.conversations": {"one": "conversation", "other": "conversations"},
    "item.attachments": {"one": "attachment", "other": "attachments"},
    "item.mentions": {"one": "address mention replaced", "other": "address mentions replaced"},
    "item.name_mentions": {"one": "name mention listed", "other": "name mentions listed"},
    "item.redacted": "redacted",
    "item.anonymised": "anonymised",
    "none": "nothing",
}


def item(code: str, n: int) -> str:
    """ "3 posts", "1 post"; an item kind not in the table as its code."""
    return f"{n} {say(f'item.{code}', n) if f'item.{code}' in WORDS else code}"


def say(message: str, n: int | None = None, **args: Any) -> str:
    entry = WORDS[message]
    if isinstance(entry, dict):
        entry = entry["one" if n == 1 else "other"]
    return entry.format(n=n, **args)
