"""Which kinds a mail asks for, read in context: negations, limitations and
other senses take a kind word back, and every such reading is a doubt."""

from __future__ import annotations

import re
from dataclasses import dataclass

from kundo_gdpr.intake import phrases, senses
from kundo_gdpr.vocabulary import Kind


@dataclass(frozen=True)
class KindReading:
    kinds: tuple[str, ...]
    # The mail's own words that make the reading doubtful, for the agent.
    doubts: tuple[str, ...] = ()


def read_kinds(text: str) -> KindReading:
    """The kinds `text` asks for, and the words that cast doubt on them."""
    doubts: list[str] = []
    plain = _blank(senses.OTHER_SENSES_PATTERN, text, [])
    plain = _blank(senses.NOT_NEGATIONS_PATTERN, plain, [])
    for pattern in senses.NEGATION_PATTERNS.values():
        plain = _blank(pattern, plain, doubts)
    limited: list[str] = []
    plain = _blank(senses.EXPORT_ONLY_PATTERN, plain, limited)
    found = {k: list(p.finditer(plain)) for k, p in phrases.KIND_PATTERNS.items()}
    later = [m.group(0) for m in senses.NOT_YET_PATTERN.finditer(plain)
             if _near(m, found[Kind.ERASE])]
    doubts += limited + later
    wanted = {k for k, matches in found.items() if matches}
    if limited:
        wanted.add(Kind.EXPORT)  # "only a copy" asks for export in so many words
    if limited or later:
        wanted.discard(Kind.ERASE)  # "only a copy", "not yet": nothing is erased on doubt
    kinds = tuple(k for k in phrases.KIND_PATTERNS if k in wanted)
    doubts += _loose_negations(plain, [m for ms in found.values() for m in ms])
    if len(kinds) > 1:  # both kinds in one mail: the agent confirms both are meant
        doubts += [found[k][0].group(0) for k in kinds if found[k]]
    return KindReading(kinds, tuple(dict.fromkeys(" ".join(d.split()) for d in doubts)))


def _near(match: re.Match[str], others: list[re.Match[str]]) -> bool:
    return any(abs(o.start() - match.start()) <= senses.NEAR * 2 for o in others)


def _blank(pattern: re.Pattern[str], text: str, words: list[str]) -> str:
    """`text` with every match of `pattern` spaced out (positions kept); the
    matches are added to `words`."""

    def spaced(match: re.Match[str]) -> str:
        words.append(match.group(0))
        return re.sub(r"\S", " ", match.group(0))

    return pattern.sub(spaced, text)


def _loose_negations(text: str, matches: list[re.Match[str]]) -> list[str]:
    """The words around each kind word that has a bare negation close by, in its sentence."""
    found: list[str] = []
    for match in matches:
        start, end = _sentence(text, match.start(), match.end())
        start, end = max(start, match.start() - senses.NEAR), min(end, match.end() + senses.NEAR)
        if senses.LOOSE_NEGATION_PATTERN.search(text, start, end):
            found.append(text[start:end].strip())
    return found


def _sentence(text: str, start: int, end: int) -> tuple[int, int]:
    """The span of the sentence around text[start:end]."""
    before = 0
    for boundary in senses.SENTENCE_END.finditer(text, max(0, start - 4 * senses.NEAR), start):
        before = boundary.end()
    after = senses.SENTENCE_END.search(text, end)
    return before, after.start() if after else len(text)
