"""Words in context, as tables: what takes a kind word back, and what it means
in another sense. Each row is tested (tests/test_parse_context.py).

Patterns are matched case-insensitively on normalised text (intake.normalise).
Word gaps are `(?:[\\w'’-]+\\s+){0,N}`: a sentence's punctuation ends them, so
a negation never reaches into the next sentence.
"""

from __future__ import annotations

import re

from kundo_gdpr.vocabulary import Kind

GAP2 = r"(?:[\w'’-]+\s+){0,2}?"
GAP3 = r"(?:[\w'’-]+\s+){0,3}?"
GAP5 = r"(?:[\w'’-]+\s+){0,5}?"

# kind -> phrases that say this kind is NOT wanted. A kind word inside one does
# not count, and the phrase is a doubt the agent sees.
NEGATIONS: dict[Kind, tuple[str, ...]] = {
    Kind.ERASE: (
        r"(?:radera|raderar|ta bort|anonymisera)\s+(?:inte|ej|icke|ingenting|inget|inga|aldrig)\b",
        r"\bta\s+(?:inte|ej|ingenting|inget|inga)\s+(?:\w+\s+){0,2}?bort\b",
        r"\b(?:inte|ej|icke|aldrig|ingenting|inget|inga|utan att)\s+" + GAP2
        + r"(?:radera\w*|ta bort|tas bort|tar bort|anonymiser\w*|glömmas)\b",
        r"\b(?:do not|don't|dont|does not|doesn't|should not|shouldn't|must not|mustn't|"
        r"need not|needn't|please don't|not|never|no need to|without|nothing|no)\s+" + GAP3
        + r"(?:delet\w*|eras\w*|remov\w*|anonymi[sz]\w*|forget|forgotten)\b",
        r"\b(?:delete|erase|remove)\s+(?:nothing|anything)\b",
    ),
    Kind.EXPORT: (
        r"\b(?:inte|ej|icke|aldrig|ingen|inget|inga|utan)\s+" + GAP2
        + r"(?:kopia|kopian|kopior|utdrag\w*|registerutdrag\w*|exporter\w*|export)\b",
        r"\b(?:do not|don't|dont|does not|doesn't|should not|need not|no need for|"
        r"no need to|not|never|without|no)\s+" + GAP3
        + r"(?:export\w*|cop(?:y|ies)|access request|subject access)\b",
    ),
}
# Phrases that limit a request to export ("just a copy"): erase words elsewhere
# are then a doubt, and erase is not read.
EXPORT_ONLY: tuple[str, ...] = (
    r"\b(?:bara|endast|enbart|bara vill ha|vill bara ha)\s+(?:ha\s+)?(?:en\s+)?(?:kopia|utdrag|"
    r"registerutdrag|export)\b",
    r"\b(?:only|just|merely)\s+(?:want\s+|need\s+)?(?:a\s+)?(?:copy|export|extract)\b",
    r"\b(?:export|copy|kopia|utdrag|registerutdrag)\s+(?:only|endast|enbart)\b",
)
# "Not yet" and its kin: a kind asked for later is not asked for now.
NOT_YET: tuple[str, ...] = (
    r"\bnot yet\b",
    r"\b(?:inte|ej)\s+(?:ännu|än)\b",
    r"\bännu\s+(?:inte|ej)\b",
)
# Export words used in another sense: a copy that is attached, a copy of a
# document, a copy to a colleague. Blanked out before kinds are looked for.
OTHER_SENSES: tuple[str, ...] = (
    r"\bkopia\s+(?:av|på)\s+" + GAP3
    + r"(?:legitimation|leg|id|id-handling|pass|körkort|faktura|kvitto|avtal|intyg|fullmakt|"
    r"brev|beslut|id-kort)\w*",
    r"\b(?:kopia|kopian|kopior)\s+" + GAP5
    + r"(?:bifogas|bifogad|bifogat|bifogade|finns bifogad\w*|skickas med|följer med)\b",
    r"\b(?:bifogar|bifogat|bifogad|bifogade|bifogas|skickar med|bifogar vi)\s+" + GAP2
    + r"(?:kopia|kopian|kopior)\b",
    r"\b(?:kopia|kopian)\s+till\b",
    r"^\s*kopia\s*:",
    r"\bcopy\s+of\s+" + GAP5 + r"(?:is|are|was|were|has been|have been)\s+(?:\w+\s+)?"
    r"(?:attached|enclosed|included)\b",
    r"\b(?:attached|enclosed|attaching|enclosing|attach|enclose)\s+" + GAP3 + r"cop(?:y|ies)\b",
    r"\bcop(?:y|ies)\s+(?:of\s+" + GAP3 + r")?(?:attached|enclosed)\b",
    r"\bcopy\s+of\s+(?:[\w'’-]+\s+){0,3}?(?:invoice|receipt|id|passport|driving licen[cs]e|"
    r"driver'?s licen[cs]e|licen[cs]e|contract|agreement|letter|certificate|id card|"
    r"identity document|power of attorney|order|bill)s?\b",
    r"\b(?:in|on|as a)\s+(?:carbon\s+)?copy\b",
    r"\bcopy\s+(?:to|in)\b",
)
# "Not only" is no negation: "radera inte bara forumet utan även chatten".
NOT_NEGATIONS: tuple[str, ...] = (
    r"\b(?:inte|ej)\s+(?:bara|endast|enbart|minst)\b",
    r"\bnot\s+(?:only|just|merely|least)\b",
)
# Within this many characters of a kind word, a bare negation is a doubt.
NEAR = 40
LOOSE_NEGATION = r"\b(?:inte|ej|icke|aldrig|not|never|n't|no)\b"


# Between two words of one sentence: spaces, or a line break when the next
# line goes on in lower case (a hard-wrapped sentence). A blank line, or a
# line that starts anew with a capital, ends the sentence.
SEP = r"(?:[ \t]+|[ \t]*\n[ \t]*(?=(?-i:[a-zåäö])))"
# Where a sentence ends, for the window of a bare negation.
SENTENCE_END = re.compile(r"[.!?](?=\s|$)|\n\s*\n|\n(?=\s*[A-ZÅÄÖ>])")


def compile_all(rows: tuple[str, ...]) -> re.Pattern[str]:
    alternatives = "|".join(f"(?:{r})" for r in rows).replace(r"\s+", SEP)
    return re.compile(alternatives, re.IGNORECASE | re.MULTILINE)


NEGATION_PATTERNS = {kind: compile_all(rows) for kind, rows in NEGATIONS.items()}
EXPORT_ONLY_PATTERN = compile_all(EXPORT_ONLY)
NOT_YET_PATTERN = compile_all(NOT_YET)
OTHER_SENSES_PATTERN = compile_all(OTHER_SENSES)
NOT_NEGATIONS_PATTERN = compile_all(NOT_NEGATIONS)
LOOSE_NEGATION_PATTERN = re.compile(LOOSE_NEGATION, re.IGNORECASE)
