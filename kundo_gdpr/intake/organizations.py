"""Which organizations a request's own words name: reading text, so it lives in
intake; the authority check only asks (checks/authority.py)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Protocol

from kundo_gdpr.intake import quotes
from kundo_gdpr.intake.parse import ADDRESS_LIKE

COMPANY_SUFFIX = re.compile(r"\s+(?:AB|HB|KB|Ltd|Inc|GmbH|AS|Oy|ApS)\.?$", re.IGNORECASE)


class Named(Protocol):
    """An organization as the desk lists it (desk.OrganizationRef)."""

    @property
    def id(self) -> int: ...
    @property
    def name(self) -> str: ...
    @property
    def slug(self) -> str: ...


def named(subject_line: str, text: str, organizations: Iterable[Named]) -> list[int]:
    """Ids of the organizations named in the Subject and the mail's new text.

    Signatures and quotes are left out: an editor's signature names their
    employer, which says nothing about which organization a request is for.
    A name counts as a word, also in the genitive ("Cykelbolagets forum"),
    with or without a company suffix, or as the organization's slug; never
    inside an address or a domain.
    """
    words = ADDRESS_LIKE.sub(" ", subject_line + "\n" + quotes.without_signature(text))
    return [org.id for org in organizations if _names(words, org.name, org.slug)]


def _names(text: str, name: str, slug: str) -> bool:
    forms = {name, COMPANY_SUFFIX.sub("", name), slug}
    alternatives = "|".join(re.escape(f).replace(r"\ ", r"\s+") for f in forms if f)
    pattern = rf"(?<![\w.@-])(?:{alternatives})(?:s|'s|’s)?(?![\w@-]|\.\w)"
    return re.search(pattern, text, re.IGNORECASE) is not None
