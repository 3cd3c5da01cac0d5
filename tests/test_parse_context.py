"""Words in context: one test per row of intake/senses.py, intake/channels.py and
the signature and role-address rules, in Swedish and English."""

from __future__ import annotations

from email.message import EmailMessage

import pytest

from kundo_gdpr.intake import channels, phrases, senses
from kundo_gdpr.intake.parse import parse
from kundo_gdpr.intake.result import ParsedMail

SV_ASSERTION = "Vi har bekräftat personens identitet."
EN_ASSERTION = "We have confirmed the person's identity."

# Every row of the tables, with mail text it must take back. A row without an
# example fails `test_every_table_row_has_an_example`.
NEGATION_EXAMPLES: dict[str, list[str]] = {
    senses.NEGATIONS["erase"][0]: ["Exportera forumet för alice@example.com, radera inte något."],
    senses.NEGATIONS["erase"][1]: ["Skicka ett utdrag om alice@example.com, ta inte bort något."],
    senses.NEGATIONS["erase"][2]: ["Exportera forumet för alice@example.com, inget ska raderas.",
                                   "Exportera alice@example.com utan att radera forumet."],
    senses.NEGATIONS["erase"][3]: ["Please export alice@example.com's forum posts. Do not delete "
                                   "anything.", "Export alice@example.com; don't erase the forum."],
    senses.NEGATIONS["erase"][4]: ["Export the forum posts of alice@example.com, delete nothing."],
    senses.NEGATIONS["export"][0]: ["Radera forumet för alice@example.com, ingen kopia behövs."],
    senses.NEGATIONS["export"][1]: ["Erase alice@example.com from the forum; no need to export."],
}
EXPORT_ONLY_EXAMPLES: dict[str, str] = {
    senses.EXPORT_ONLY[0]: "Vi vill bara ha en kopia av forumet för alice@example.com, "
                           "radera ingenting ännu.",
    senses.EXPORT_ONLY[1]: "We only want a copy of alice@example.com's forum posts; "
                           "the account should be deleted later.",
    senses.EXPORT_ONLY[2]: "Forum posts of alice@example.com: export only, keep the account "
                           "(we may delete it later).",
}
NOT_YET_EXAMPLES: dict[str, str] = {
    senses.NOT_YET[0]: "Please export alice@example.com's forum posts, not yet delete them.",
    senses.NOT_YET[1]: "Exportera forumet för alice@example.com, radera dem inte än.",
    senses.NOT_YET[2]: "Exportera forumet för alice@example.com; radera ännu inte.",
}
OTHER_SENSE_EXAMPLES: dict[str, str] = {
    senses.OTHER_SENSES[0]: "Radera forumet för alice@example.com. Kopia av legitimationen.",
    senses.OTHER_SENSES[1]: "Radera forumet för alice@example.com. En kopia av hennes "
                            "legitimation bifogas.",
    senses.OTHER_SENSES[2]: "Radera forumet för alice@example.com. Jag bifogar en kopia.",
    senses.OTHER_SENSES[3]: "Radera forumet för alice@example.com, kopia till vår jurist.",
    senses.OTHER_SENSES[4]: "Radera forumet för alice@example.com.\nKopia: jurist@byran.se",
    senses.OTHER_SENSES[5]: "Erase alice@example.com's forum posts. A copy of the "
                            "customer's ID is attached.",
    senses.OTHER_SENSES[6]: "Erase alice@example.com's forum posts. Attached is a copy.",
    senses.OTHER_SENSES[7]: "Erase alice@example.com's forum posts (copy of passport "
                            "attached).",
    senses.OTHER_SENSES[8]: "Erase alice@example.com's forum posts. She sent a copy of the "
                            "invoice.",
    senses.OTHER_SENSES[9]: "Erase alice@example.com's forum posts; our lawyer is in copy.",
    senses.OTHER_SENSES[10]: "Erase alice@example.com's forum posts, copy to our lawyer.",
}
NOT_NEGATION_EXAMPLES: dict[str, str] = {
    senses.NOT_NEGATIONS[0]: "Radera inte bara forumet utan även chatten för alice@example.com.",
    senses.NOT_NEGATIONS[1]: "Please erase not only the forum but also the chat of "
                             "alice@example.com.",
}


def _parse(body: str, subject: str = "GDPR", sender: str = "Eva Ek <eva@cykelbolaget.se>",
           ) -> ParsedMail:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = "support@kundo.se"
    msg["Subject"] = subject
    msg["Message-ID"] = "<context@test.example>"
    msg.set_content(body)
    return parse(msg.as_bytes(), ("support@kundo.se",))


def _doubts(parsed: ParsedMail, code: str = "kind_doubt") -> list[str]:
    return [d.words for d in parsed.doubts if d.code == code]


def test_every_table_row_has_an_example() -> None:
    tables = [
        (senses.NEGATIONS["erase"] + senses.NEGATIONS["export"], NEGATION_EXAMPLES),
        (senses.EXPORT_ONLY, EXPORT_ONLY_EXAMPLES),
        (senses.NOT_YET, NOT_YET_EXAMPLES),
        (senses.OTHER_SENSES, OTHER_SENSE_EXAMPLES),
        (senses.NOT_NEGATIONS, NOT_NEGATION_EXAMPLES),
    ]
    for rows, examples in tables:
        assert [r for r in rows if r not in examples] == []


@pytest.mark.parametrize(
    ("row", "text"), [(r, t) for r, texts in NEGATION_EXAMPLES.items() for t in texts]
)
def test_a_negated_kind_is_not_read_and_is_a_doubt(row: str, text: str) -> None:
    negated = "erase" if row in senses.NEGATIONS["erase"] else "export"
    parsed = _parse(f"Hej,\n\n{text}\n{SV_ASSERTION}\n")
    assert negated not in parsed.kinds
    assert parsed.kinds == (("export",) if negated == "erase" else ("erase",))
    assert _doubts(parsed)


@pytest.mark.parametrize(("row", "text"), EXPORT_ONLY_EXAMPLES.items())
def test_only_a_copy_is_an_export_and_never_an_erase(row: str, text: str) -> None:
    parsed = _parse(f"Hello,\n\n{text}\n{EN_ASSERTION}\n")
    assert parsed.kinds == ("export",)
    assert _doubts(parsed)


@pytest.mark.parametrize(("row", "text"), NOT_YET_EXAMPLES.items())
def test_not_yet_takes_the_erase_back(row: str, text: str) -> None:
    parsed = _parse(f"Hello,\n\n{text}\n{EN_ASSERTION}\n")
    assert parsed.kinds == ("export",)
    assert _doubts(parsed)


@pytest.mark.parametrize(("row", "text"), OTHER_SENSE_EXAMPLES.items())
def test_a_copy_in_another_sense_is_no_export(row: str, text: str) -> None:
    parsed = _parse(f"Hej,\n\n{text}\n{SV_ASSERTION}\n")
    assert parsed.kinds == ("erase",)
    assert _doubts(parsed) == []


@pytest.mark.parametrize(("row", "text"), NOT_NEGATION_EXAMPLES.items())
def test_not_only_is_no_negation(row: str, text: str) -> None:
    parsed = _parse(f"Hej,\n\n{text}\n{SV_ASSERTION}\n")
    assert parsed.kinds == ("erase",)
    assert parsed.channels == ("forum", "chat")


@pytest.mark.parametrize(
    "text",
    ["Please export alice@example.com's forum posts. Don't delete anything.",
     "Exportera alice@example.com:s foruminlägg. Radera ingenting."],
)
def test_an_export_that_says_do_not_delete_is_an_export_with_a_doubt(text: str) -> None:
    parsed = _parse(f"Hi,\n\n{text}\n{EN_ASSERTION}\n")
    assert parsed.kinds == ("export",)
    assert _doubts(parsed)


def test_both_kinds_in_one_mail_is_a_doubt() -> None:
    parsed = _parse(f"Please export and then delete alice@example.com's forum posts.\n"
                    f"{EN_ASSERTION}\n")
    assert parsed.kinds == ("erase", "export")
    assert _doubts(parsed) == ["delete", "export"]


def test_a_bare_negation_near_a_kind_word_is_a_doubt_but_keeps_the_kind() -> None:
    parsed = _parse(f"Please delete, if not already done, alice@example.com's forum posts.\n"
                    f"{EN_ASSERTION}\n")
    assert parsed.kinds == ("erase",)
    (words,) = _doubts(parsed)
    assert "Please delete, if not already done" in words


def test_can_you_not_just_is_a_polite_request_not_a_negation() -> None:
    parsed = _parse(f"Kan ni inte bara radera alice@example.com i forumet?\n{SV_ASSERTION}\n")
    assert parsed.kinds == ("erase",)


def test_a_negation_in_the_previous_sentence_is_no_doubt() -> None:
    parsed = _parse(f"Det gick inte förra gången.\nRadera forumet för alice@example.com.\n"
                    f"{SV_ASSERTION}\n")
    assert parsed.kinds == ("erase",)
    assert _doubts(parsed) == []


# -- channels --------------------------------------------------------------------------


@pytest.mark.parametrize(("prefix", "kind"), channels.PREFIXES)
@pytest.mark.parametrize("second", channels.SECOND_PARTS)
def test_a_compound_of_a_channel_part_and_a_second_part_names_the_channel(
    prefix: str, kind: str, second: str
) -> None:
    parsed = _parse(f"Radera alla {prefix}{second}er för alice@example.com.\n{SV_ASSERTION}\n")
    assert parsed.channels == (kind,)


@pytest.mark.parametrize(
    ("word", "kind"),
    [("supportärenden", "mail"), ("kundärendena", "mail"), ("blogginläggen", "forum"),
     ("chatt-", "chat")],
)
def test_a_part_that_names_a_channel_inside_any_compound(word: str, kind: str) -> None:
    parsed = _parse(f"Radera {word} för alice@example.com.\n{SV_ASSERTION}\n")
    assert kind in parsed.channels


@pytest.mark.parametrize(
    "word", ["mailbox", "chatbot", "mejlade", "telefonsamtal", "ärendet", "ärendenummer",
             "tråden", "e-postadressen", "chattnamnet"],
)
def test_a_word_that_only_looks_like_a_channel_names_none(word: str) -> None:
    parsed = _parse(f"Radera i forumet: {word} alice@example.com.\n{SV_ASSERTION}\n")
    assert parsed.channels == ("forum",)


@pytest.mark.parametrize("preposition", channels.SCOPE_WORDS)
def test_each_scope_word_narrows_everything(preposition: str) -> None:
    parsed = _parse(f"Please erase everything alice@example.com wrote {preposition} our chat.\n"
                    f"{EN_ASSERTION}\n")
    assert parsed.channels == ("chat",)
    assert "channels_widened" not in parsed.problems


# -- signatures and role addresses ------------------------------------------------------


@pytest.mark.parametrize(
    "closing",
    ["All the best,", "Ha det fint!", "Allt gott,", "Take care,", "Trevlig helg!", "Warmly,",
     "Tack på förhand!", "Sincerely,", "Tack på förhand.", "Best wishes", "Vänligen"],
)
def test_any_closing_line_with_a_name_block_ends_the_new_text(closing: str) -> None:
    parsed = _parse(f"Hej,\n\nRadera forumet för alice@example.com.\n{SV_ASSERTION}\n\n"
                    f"{closing}\nKarin Berg\nKundansvarig\nkarin.berg@partner.se\n+46 8 12 34\n")
    assert parsed.subjects == ("alice@example.com",)


@pytest.mark.parametrize("sign_off", ["/Karin", "/ Karin Berg", "– Karin", "—Karin"])
def test_a_slash_or_dash_name_ends_the_new_text(sign_off: str) -> None:
    parsed = _parse(f"Hej,\n\nRadera forumet för alice@example.com.\n{SV_ASSERTION}\n\n"
                    f"{sign_off}\nkarin@partner.se\n")
    assert parsed.subjects == ("alice@example.com",)


def test_a_closing_line_that_asks_something_is_no_signature() -> None:
    parsed = _parse(f"Hej,\n\nRadera foruminläggen för dessa kunder!\nAlice Andersson\n"
                    f"alice@example.com\n{SV_ASSERTION}\n")
    assert parsed.subjects == ("alice@example.com",)


@pytest.mark.parametrize("local", sorted(phrases.ROLE_LOCAL_PARTS))
def test_a_role_address_is_no_subject(local: str) -> None:
    parsed = _parse(f"Radera forumet för alice@example.com. Frågor till {local}@partner.se.\n"
                    f"{SV_ASSERTION}\n")
    assert parsed.subjects == ("alice@example.com",)
    assert parsed.doubts == ()


def test_a_colleague_at_the_senders_own_domain_is_no_subject() -> None:
    parsed = _parse(f"Radera forumet för alice@example.com. Min kollega anna@cykelbolaget.se "
                    f"vet mer.\n{SV_ASSERTION}\n")
    assert parsed.subjects == ("alice@example.com",)


@pytest.mark.parametrize(
    ("line", "address"),
    [("Radera kunden info@bageriet.se ur forumet.", "info@bageriet.se"),
     ("Please erase the customer noreply@example.net from the forum.", "noreply@example.net"),
     ("Radera användaren lisa@cykelbolaget.se ur forumet.", "lisa@cykelbolaget.se")],
)
def test_a_role_or_own_domain_address_named_as_the_person_is_a_subject_and_a_doubt(
    line: str, address: str
) -> None:
    parsed = _parse(f"{line}\n{SV_ASSERTION}\n")
    assert address in parsed.subjects
    (doubt,) = [d for d in parsed.doubts if d.code == "subject_is_staff"]
    assert (doubt.subject, doubt.words) == (address, line)


@pytest.mark.parametrize("header", ["Namn E-post", "Customer\tEmail", "Name Email address",
                                    "Kund Mejl"])
def test_a_column_header_over_addresses_names_no_channel(header: str) -> None:
    parsed = _parse(f"Radera foruminläggen för:\n\n{header}\nAnna Berg anna@example.com\n"
                    f"{SV_ASSERTION}\n")
    assert parsed.channels == ("forum",)
    assert parsed.subjects == ("anna@example.com",)


@pytest.mark.parametrize("phrase", ["(mail attached)", "the email below", "mejlet nedan"])
def test_the_forwarded_mail_is_not_the_mail_channel(phrase: str) -> None:
    parsed = _parse(f"Please delete this customer's forum posts, {phrase}: ann@example.com.\n"
                    f"{EN_ASSERTION}\n")
    assert parsed.channels == ("forum",)


@pytest.mark.parametrize("name_line", ["Karin Berg", "Karin", "KARIN BERG"])
def test_the_senders_own_name_opens_a_signature_without_any_closing_line(name_line: str) -> None:
    parsed = _parse(f"Hej,\n\nRadera forumet för alice@example.com.\n{SV_ASSERTION}\n\n"
                    f"{name_line}\nKundansvarig, Partner AB\nkarin.berg@partner.se\n",
                    sender="Karin Berg <karin@cykelbolaget.se>")
    assert parsed.subjects == ("alice@example.com",)


def test_another_name_at_the_end_is_still_a_subject_block() -> None:
    parsed = _parse(f"Hej,\n\nRadera forumet för kunden nedan. {SV_ASSERTION}\n\n"
                    f"Alice Andersson\nalice@example.com\n",
                    sender="Karin Berg <karin@cykelbolaget.se>")
    assert parsed.subjects == ("alice@example.com",)
