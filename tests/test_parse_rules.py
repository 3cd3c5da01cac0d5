"""One test per row of the parser's word tables (intake/phrases.py, intake/quotes.py)."""

from __future__ import annotations

from email.message import EmailMessage

import pytest

from kundo_gdpr.intake import phrases, quotes
from kundo_gdpr.intake.parse import parse
from kundo_gdpr.intake.result import ParsedMail

SV_ASSERTION = "Vi har bekräftat personens identitet."
ROWS_BY_KIND = [(kind, word) for kind, words in phrases.KIND_WORDS.items() for word in words]
ROWS_BY_CHANNEL = [(ch, word) for ch, words in phrases.CHANNEL_WORDS.items() for word in words]
# "forum posts" inside "forum postsbox" still says "forum"; only one-word rows can be glued.
ONE_WORD_CHANNEL_ROWS = [(ch, word) for ch, word in ROWS_BY_CHANNEL if " " not in word]


def _parse(body: str, subject: str = "Fråga", headers: dict[str, str] | None = None) -> ParsedMail:
    msg = EmailMessage()
    msg["From"] = "Eva Ek <eva@cykelbolaget.se>"
    msg["To"] = "support@kundo.se"
    msg["Subject"] = subject
    msg["Message-ID"] = "<rules@test.example>"
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content(body)
    return parse(msg.as_bytes(), ("support@kundo.se",))


def _spoken(word: str) -> str:
    return word.replace("\\", "")


@pytest.mark.parametrize("sentence", phrases.ASSERTIONS)
def test_it_finds_each_assertion_however_it_is_typed(sentence: str) -> None:
    typed = sentence.upper().replace("'", "’").replace(" ", "\n", 1) + " ."
    parsed = _parse(f"Radera mejl från alice@example.com.\n{typed}\n")
    assert parsed.assertion
    assert "missing_assertion" not in parsed.problems


@pytest.mark.parametrize("sentence", phrases.ASSERTIONS)
def test_it_ignores_the_assertion_inside_a_quoted_rejection(sentence: str) -> None:
    parsed = _parse(
        "Radera mejl från alice@example.com.\n\n"
        "Den mån 23 nov. 2026 kl 08:31 skrev Kundo Support <support@kundo.se>:\n"
        f'> Er begäran saknar meningen "{sentence}"\n'
    )
    assert not parsed.assertion
    assert "missing_assertion" in parsed.problems


@pytest.mark.parametrize("sentence", phrases.ASSERTIONS)
def test_it_ignores_a_gt_quoted_assertion(sentence: str) -> None:
    parsed = _parse(f"Radera mejl från alice@example.com.\n> {sentence}\n")
    assert not parsed.assertion


@pytest.mark.parametrize(("kind", "word"), ROWS_BY_KIND)
def test_each_kind_word_selects_its_kind(kind: str, word: str) -> None:
    parsed = _parse(f"Kunden alice@example.com: {_spoken(word)}, tack. Forum.\n{SV_ASSERTION}")
    assert parsed.kinds == (kind,)


@pytest.mark.parametrize(("kind", "word"), ROWS_BY_KIND)
def test_each_kind_word_is_read_in_the_subject_line(kind: str, word: str) -> None:
    parsed = _parse(f"Kunden alice@example.com, forum.\n{SV_ASSERTION}", subject=_spoken(word))
    assert parsed.kinds == (kind,)


@pytest.mark.parametrize(("kind", "word"), ROWS_BY_KIND)
def test_a_kind_word_inside_a_longer_word_is_not_a_kind(kind: str, word: str) -> None:
    parsed = _parse(f"Kunden alice@example.com: xq{_spoken(word)}zq. Forum.\n{SV_ASSERTION}")
    assert parsed.kinds == ()
    assert "no_kind" in parsed.problems


@pytest.mark.parametrize(("channel", "word"), ROWS_BY_CHANNEL)
def test_each_channel_word_selects_its_channel(channel: str, word: str) -> None:
    parsed = _parse(f"Radera {_spoken(word)} för alice@example.com.\n{SV_ASSERTION}")
    assert parsed.channels == (channel,)


@pytest.mark.parametrize(("channel", "word"), ONE_WORD_CHANNEL_ROWS)
def test_a_channel_word_inside_a_longer_word_is_not_a_channel(channel: str, word: str) -> None:
    parsed = _parse(f"Radera {_spoken(word)}box för alice@example.com.\n{SV_ASSERTION}")
    assert parsed.channels == ()
    assert "no_channel" in parsed.problems


@pytest.mark.parametrize("phrase", phrases.NOT_CHANNEL_WORDS)
def test_a_phrase_naming_an_address_does_not_select_a_channel(phrase: str) -> None:
    parsed = _parse(f"Radera kunden. Kundens {_spoken(phrase)}: alice@example.com.\n{SV_ASSERTION}")
    assert parsed.channels == ()


@pytest.mark.parametrize("phrase", phrases.ALL_CHANNELS_WORDS)
def test_an_all_data_phrase_selects_every_channel(phrase: str) -> None:
    parsed = _parse(f"Radera {_spoken(phrase)} om alice@example.com.\n{SV_ASSERTION}")
    assert parsed.channels == phrases.CHANNELS_ALL
    assert "channels_widened" not in parsed.problems


@pytest.mark.parametrize("phrase", phrases.ALL_CHANNELS_WORDS)
def test_an_all_data_phrase_next_to_a_named_channel_widens_to_all_and_says_so(
    phrase: str,
) -> None:
    parsed = _parse(f"Radera {_spoken(phrase)} i forumet om alice@example.com.\n{SV_ASSERTION}")
    assert parsed.channels == phrases.CHANNELS_ALL
    assert "channels_widened" in parsed.problems


def test_all_three_channels_named_beside_all_data_is_not_widened() -> None:
    parsed = _parse(f"Radera allt i forum, e-post och chatt om alice@example.com.\n{SV_ASSERTION}")
    assert parsed.channels == phrases.CHANNELS_ALL
    assert "channels_widened" not in parsed.problems


@pytest.mark.parametrize("sign_off", quotes.SIGN_OFFS)
@pytest.mark.parametrize("name", ["", ",", " Eva", ", Eva Ek"])
def test_addresses_after_a_sign_off_are_not_subjects(sign_off: str, name: str) -> None:
    parsed = _parse(
        f"Radera mejl från alice@example.com.\n{SV_ASSERTION}\n\n"
        f"{sign_off.capitalize()}{name}\nEva Ek\ndpo@cykelbolaget.se\n"
    )
    assert parsed.subjects == ("alice@example.com",)


@pytest.mark.parametrize("sign_off", quotes.DEVICE_SIGN_OFFS)
def test_addresses_after_a_sent_from_my_phone_line_are_not_subjects(sign_off: str) -> None:
    parsed = _parse(
        f"Radera mejl från alice@example.com.\n{SV_ASSERTION}\n\n"
        f"{sign_off.capitalize()} iPhone\nkontor@cykelbolaget.se\n"
    )
    assert parsed.subjects == ("alice@example.com",)


@pytest.mark.parametrize("sign_off", quotes.SIGN_OFFS)
def test_a_sign_off_word_opening_a_sentence_is_not_a_signature(sign_off: str) -> None:
    parsed = _parse(
        f"{sign_off.capitalize()} för att ni hjälper oss med detta!\n"
        f"Radera mejl från alice@example.com.\n{SV_ASSERTION}\n"
    )
    assert parsed.subjects == ("alice@example.com",)


def test_addresses_after_a_dash_dash_line_are_not_subjects() -> None:
    parsed = _parse(
        f"Radera mejl från alice@example.com.\n{SV_ASSERTION}\n-- \ndpo@cykelbolaget.se\n"
    )
    assert parsed.subjects == ("alice@example.com",)


@pytest.mark.parametrize(
    "header",
    [
        "On Mon, 23 Nov 2026 at 08:31, Kundo Support <support@kundo.se> wrote:",
        "On Mon, 23 Nov 2026 at 08:31, Kundo Support <\nsupport@kundo.se> wrote:",
        "Den mån 23 nov. 2026 kl 08:31 skrev Kundo Support <support@kundo.se>:",
        "-----Original Message-----",
        "-----Ursprungligt meddelande-----",
        "Från: Kundo Support <support@kundo.se>\nSkickat: den 23 november 2026 08:31",
        "From: Kundo Support <support@kundo.se>\nSent: Monday, November 23, 2026 8:31 AM",
    ],
)
def test_everything_after_a_reply_header_is_quoted(header: str) -> None:
    parsed = _parse(
        f"Radera mejl från alice@example.com.\n\n{header}\n"
        f"{SV_ASSERTION}\nRadera även bob@example.com och chattar.\n"
    )
    assert parsed.subjects == ("alice@example.com",)
    assert parsed.channels == ("mail",)
    assert not parsed.assertion


@pytest.mark.parametrize("prefix", ["Fwd:", "Fw:", "VB:", "Vb:", "WG:", "SV: VB:"])
def test_the_forwarded_from_address_is_a_subject_and_its_to_is_not(prefix: str) -> None:
    parsed = _parse(
        f"Radera allt om kunden nedan.\n{SV_ASSERTION}\n\n"
        "---------- Forwarded message ---------\n"
        "From: Liam Hart <liam@example.com>\nTo: info@cykelbolaget.se\n"
        "Cc: mia@example.com\n\nRadera mig.\n",
        subject=f"{prefix} Radera mig",
    )
    assert parsed.subjects == ("liam@example.com",)


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("Auto-Submitted", "auto-replied"),
        ("Auto-Submitted", "auto-generated"),
        ("Precedence", "bulk"),
        ("Precedence", "junk"),
        ("Precedence", "list"),
        ("Precedence", "auto_reply"),
        ("X-Autoreply", "yes"),
        ("X-Autorespond", "yes"),
        ("X-Auto-Response-Suppress", "All"),
        ("Return-Path", "<>"),
    ],
)
def test_a_machine_mail_header_marks_auto_reply(header: str, value: str) -> None:
    parsed = _parse(f"Radera mejl från alice@example.com.\n{SV_ASSERTION}", headers={header: value})
    assert "auto_reply" in parsed.problems


def test_auto_submitted_no_is_a_person_writing() -> None:
    parsed = _parse(
        f"Radera mejl från alice@example.com.\n{SV_ASSERTION}", headers={"Auto-Submitted": "no"}
    )
    assert parsed.problems == ()


@pytest.mark.parametrize(
    "subject",
    [
        "Autosvar: Radera",
        "Automatiskt svar: Radera",
        "Frånvaro",
        "Out of Office: Erase",
        "Automatic reply: Erase",
        "Undeliverable: Erase",
        "Delivery Status Notification (Failure)",
    ],
)
def test_an_auto_reply_subject_marks_auto_reply(subject: str) -> None:
    parsed = _parse(f"Radera mejl från alice@example.com.\n{SV_ASSERTION}", subject=subject)
    assert "auto_reply" in parsed.problems


@pytest.mark.parametrize("sender", ["mailer-daemon", "postmaster", "noreply", "no-reply"])
def test_a_machine_sender_marks_auto_reply(sender: str) -> None:
    msg = EmailMessage()
    msg["From"] = f"{sender}@cykelbolaget.se"
    msg["Subject"] = "Radera"
    msg.set_content(f"Radera mejl från alice@example.com.\n{SV_ASSERTION}")
    assert "auto_reply" in parse(msg.as_bytes()).problems
