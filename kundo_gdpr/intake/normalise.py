"""Text as it reads, not as it was typed: one form before any matching.

Editors paste from web pages, PDFs and phones. Zero-width characters, soft
hyphens and byte-order marks are invisible but split words; no-break and
other Unicode spaces look like spaces but are not `" "`; fullwidth or
decomposed letters (macOS writes "å" as "a" + ring) look the same as their
plain forms. The sentence, kinds, channels and addresses are all matched on
the normalised text.
"""

from __future__ import annotations

import html
import re
import unicodedata

# Zero-width space, non-joiner, joiner; word joiner; BOM / zero-width no-break
# space; soft hyphen; Mongolian vowel separator; bidi marks and isolates.
INVISIBLE = re.compile(
    "[\u200b\u200c\u200d\u2060\ufeff\u00ad\u180e\u200e\u200f\u202a-\u202e\u2066-\u2069]"
)
# Every Unicode space but the line breaks: no-break, en/em/thin/hair, narrow
# no-break, ideographic, ... (what `str.isspace` calls space, less \n and \r).
SPACES = re.compile("[^\\S\n\r]")
LINE_SEPARATORS = re.compile("[\u2028\u2029\x85]")
# HTML entities for "@" and "." left in plain text by web forms and copy-paste.
ADDRESS_ENTITIES = re.compile(r"&(?:#0*64|#x0*40|commat|#0*46|#x0*2e|period);", re.IGNORECASE)


def text(value: str) -> str:
    """`value` with invisible characters removed and every space a plain space."""
    value = INVISIBLE.sub("", value)
    value = unicodedata.normalize("NFKC", value)
    # NFKC can bring back what it composes away; the order above keeps it cheap.
    value = LINE_SEPARATORS.sub("\n", value)
    value = SPACES.sub(" ", value)
    return ADDRESS_ENTITIES.sub(lambda m: html.unescape(m.group(0)), value)


def address(value: str) -> str:
    """One lower-case form of an address as written: entities, case, stray dots."""
    return text(html.unescape(value)).strip().strip(".").lower()
