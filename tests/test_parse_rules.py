"""One test per row of the parser's word tables (intake/phrases.py, intake/quotes.py)."""

from __future__ import annotations

import unicodedata
from email.message import EmailMessage

import pytest

from kundo_gdpr.intake import channels, html_text, mime, phrases, quotes
from kundo_gdpr.intake.parse import parse
from kundo_gdpr.intake.result import ParsedMail
from kundo_gdpr.vocabulary import CHANNELS

SV_ASSERTION = "Vi har bekräftat personens identitet."
ROWS_BY_KIND = [(kind, word) for kind, words in phrases.KIND_WORDS.items() for word in words]
ROWS_BY_CHANNEL = [(ch, word) for ch, words in phrases.CHANNEL_WORDS.items() for word in words]
# "forum posts" inside "forum postsbox" still says "forum"; only one-word rows can be glued.
ONE_WORD_CHANNEL_ROWS = [(ch, word) for ch, word in ROWS_BY_CHANNEL if " " not in word]
# "Inlägg" and "ärende" name their channel inside any compound (intake/channels.py).
GLUABLE_CHANNEL_ROWS = [
    (ch, word) for ch, word in ONE_WORD_CHANNEL_ROWS
    if channels.POSTS_PART not in word and channels.CASES_PART not in word
]


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


@pytest.mark.parametrize(("channel", "word"), GLUABLE_CHANNEL_ROWS)
def test_a_channel_word_inside_a_longer_word_is_not_a_channel(channel: str, word: str) -> None:
    parsed = _parse(f"Radera xq{_spoken(word)} för alice@example.com.\n{SV_ASSERTION}")
    assert parsed.channels == ()
    assert "no_channel" in parsed.problems


@pytest.mark.parametrize("phrase", phrases.NOT_CHANNEL_WORDS)
def test_a_phrase_naming_an_address_does_not_select_a_channel(phrase: str) -> None:
    parsed = _parse(f"Radera kunden. Kundens {_spoken(phrase)}: alice@example.com.\n{SV_ASSERTION}")
    assert parsed.channels == ()


@pytest.mark.parametrize("phrase", phrases.ALL_CHANNELS_WORDS)
def test_an_all_data_phrase_selects_every_channel(phrase: str) -> None:
    parsed = _parse(f"Radera {_spoken(phrase)} om alice@example.com.\n{SV_ASSERTION}")
    assert parsed.channels == CHANNELS
    assert "channels_widened" not in parsed.problems


@pytest.mark.parametrize("phrase", phrases.ALL_CHANNELS_WORDS)
def test_an_all_data_phrase_next_to_a_named_channel_widens_to_all_and_says_so(
    phrase: str,
) -> None:
    parsed = _parse(f"Radera {_spoken(phrase)} och foruminläggen om alice@example.com.\n"
                    f"{SV_ASSERTION}")
    assert parsed.channels == CHANNELS
    assert "channels_widened" in parsed.problems


@pytest.mark.parametrize("phrase", phrases.ALL_CHANNELS_WORDS)
@pytest.mark.parametrize(
    ("scope", "channels"),
    [("i forumet", ("forum",)), ("i vår chatt", ("chat",)), ("in our forum", ("forum",)),
     ("från mejlen och chatten", ("mail", "chat")), ("on the chat", ("chat",))],
)
def test_a_scope_phrase_narrows_all_data_to_its_channel(
    phrase: str, scope: str, channels: tuple[str, ...]
) -> None:
    parsed = _parse(f"Radera {_spoken(phrase)} alice@example.com skrivit {scope}.\n"
                    f"{SV_ASSERTION}")
    assert parsed.channels == channels
    assert "channels_widened" not in parsed.problems


def test_all_three_channels_named_beside_all_data_is_not_widened() -> None:
    parsed = _parse(f"Radera allt i forum, e-post och chatt om alice@example.com.\n{SV_ASSERTION}")
    assert parsed.channels == CHANNELS
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


# -- rows added for issue 3's remaining rules: every table row has a test -----------


def _raw(headers: str, body: bytes) -> bytes:
    return (
        "From: Eva Ek <eva@cykelbolaget.se>\nTo: support@kundo.se\nSubject: Radera\n"
        + headers
    ).encode() + b"\n\n" + body


@pytest.mark.parametrize("header", phrases.AUTOREPLY_HEADERS)
def test_each_autoreply_header_marks_auto_reply(header: str) -> None:
    parsed = _parse(f"Radera mejl från alice@example.com.\n{SV_ASSERTION}", headers={header: "1"})
    assert "auto_reply" in parsed.problems


@pytest.mark.parametrize("value", phrases.PRECEDENCE_MACHINE)
def test_each_machine_precedence_marks_auto_reply(value: str) -> None:
    parsed = _parse(f"Radera mejl från alice@example.com.\n{SV_ASSERTION}",
                    headers={"Precedence": value.upper()})
    assert "auto_reply" in parsed.problems


def test_precedence_first_class_is_a_person_writing() -> None:
    parsed = _parse(f"Radera mejl från alice@example.com.\n{SV_ASSERTION}",
                    headers={"Precedence": "first-class"})
    assert "auto_reply" not in parsed.problems


@pytest.mark.parametrize("name", phrases.MACHINE_SENDER_NAMES)
def test_each_machine_sender_name_marks_auto_reply(name: str) -> None:
    msg = EmailMessage()
    msg["From"] = f"{name.upper()}@cykelbolaget.se"
    msg["Subject"] = "Radera"
    msg.set_content(f"Radera mejl från alice@example.com.\n{SV_ASSERTION}")
    assert "auto_reply" in parse(msg.as_bytes()).problems


@pytest.mark.parametrize("subject", phrases.AUTO_REPLY_SUBJECTS)
def test_each_auto_reply_subject_row_marks_auto_reply(subject: str) -> None:
    parsed = _parse(f"Radera mejl från alice@example.com.\n{SV_ASSERTION}",
                    subject=f"{subject.title()}: Radera")
    assert "auto_reply" in parsed.problems


def test_an_auto_reply_word_later_in_the_subject_is_not_machine_mail() -> None:
    parsed = _parse(f"Radera mejl från alice@example.com.\n{SV_ASSERTION}",
                    subject="Radera kunden innan min frånvaro")
    assert "auto_reply" not in parsed.problems


@pytest.mark.parametrize("content_type", sorted(phrases.REPORT_TYPES))
def test_each_report_part_marks_auto_reply(content_type: str) -> None:
    boundary = "b0undary"
    body = (
        f"--{boundary}\nContent-Type: text/plain\n\nRadera mejl från alice@example.com.\n"
        f"{SV_ASSERTION}\n--{boundary}\nContent-Type: {content_type}\n\nReporting-MTA: x\n"
        f"--{boundary}--\n"
    )
    raw = _raw(f'MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="{boundary}"',
               body.encode())
    assert "auto_reply" in parse(raw).problems


@pytest.mark.parametrize(
    ("first", "second"),
    [(a, b) for a, b in zip(quotes.OUTLOOK_FIELDS, quotes.OUTLOOK_FIELDS[1:], strict=False)]
    + [(quotes.OUTLOOK_FIELDS[-1], quotes.OUTLOOK_FIELDS[0])],
)
def test_each_outlook_header_field_starts_a_quoted_block_with_another(
    first: str, second: str
) -> None:
    parsed = _parse(
        f"Radera mejl från alice@example.com.\n\n{first}: Kundo Support\n{second}: x\n"
        f"{SV_ASSERTION}\nRadera även bob@example.com.\n"
    )
    assert parsed.subjects == ("alice@example.com",)
    assert not parsed.assertion


@pytest.mark.parametrize("field", quotes.OUTLOOK_FIELDS)
def test_one_outlook_field_alone_is_not_a_quote(field: str) -> None:
    parsed = _parse(f"Radera mejl.\n{field}: alice@example.com\n{SV_ASSERTION}\n")
    assert parsed.assertion
    assert parsed.subjects == ("alice@example.com",)


def _html(markup: str, subject: str = "Radera") -> ParsedMail:
    msg = EmailMessage()
    msg["From"] = "Eva Ek <eva@cykelbolaget.se>"
    msg["To"] = "support@kundo.se"
    msg["Subject"] = subject
    msg.set_content(markup, subtype="html")
    return parse(msg.as_bytes(), ("support@kundo.se",))


@pytest.mark.parametrize(
    "container",
    [f'<div class="{m}">' for m in html_text.QUOTE_CONTAINER_MARKERS]
    + ['<div id="divRplyFwdMsg">', '<blockquote type="cite">'],
)
def test_each_html_quote_container_is_not_content(container: str) -> None:
    parsed = _html(
        f"<p>Radera mejl från alice@example.com.</p>{container}"
        f"<p>{SV_ASSERTION} Radera bob@example.com.</p></div>"
    )
    assert parsed.subjects == ("alice@example.com",)
    assert not parsed.assertion


@pytest.mark.parametrize("tag", ["<br>", "<br/>", "<p>", "<div>", "<li>", "<h2>"])
def test_each_html_block_tag_breaks_the_line(tag: str) -> None:
    # An element's start and its end both break the line, as a browser shows it.
    close = "</" + tag.strip("<>/") + ">"
    parsed = _html(f"Radera forum för alice@example.com{tag}Med vänliga hälsningar{close}"
                   f"dpo@cykelbolaget.se{tag}")
    assert parsed.subjects == ("alice@example.com",)


@pytest.mark.parametrize("cell", ["td", "th"])
def test_neighbouring_table_cells_never_merge_into_one_address(cell: str) -> None:
    rows = "".join(
        f"<tr><{cell}>{name}</{cell}><{cell}>{address}</{cell}></tr>"
        for name, address in (("AnnaBerg", "anna@example.com"), ("BoEk", "bo@example.com"))
    )
    parsed = _html(f"<p>Radera forum för:</p><table>{rows}</table><p>{SV_ASSERTION}</p>")
    assert parsed.subjects == ("anna@example.com", "bo@example.com")


@pytest.mark.parametrize(
    "comment",
    [
        "<!-- alice@example.com -->",
        "<!--[if mso]><p>Radera chatt för bo@example.com</p><![endif]-->",
        "<!--[if gte mso 9]><xml><o:OfficeDocumentSettings>bo@example.com"
        "</o:OfficeDocumentSettings></xml><![endif]-->",
    ],
)
def test_comments_and_conditional_comments_never_contribute_text(comment: str) -> None:
    parsed = _html(f"<p>Radera forum för carl@example.com.</p>{comment}<p>{SV_ASSERTION}</p>")
    assert parsed.subjects == ("carl@example.com",)
    assert parsed.channels == ("forum",)


def test_html_entities_and_nbsp_are_text_and_mailto_links_are_addresses() -> None:
    parsed = _html(
        '<p>Radera&nbsp;forum f&ouml;r <a href="mailto:Alice@Example.com">Alice</a>.</p>'
        "<p>Vi&nbsp;har bekr&auml;ftat personens identitet.</p>"
    )
    assert parsed.subjects == ("alice@example.com",)
    assert parsed.assertion
    assert parsed.channels == ("forum",)


@pytest.mark.parametrize(
    "charset", [*mime.FALLBACK_CHARSETS[1:], "iso-8859-1", "us-ascii", "x-unknown-charset"]
)
def test_a_wrong_or_unknown_charset_falls_back(charset: str) -> None:
    body = f"Radera mejl för alice@example.com.\n{SV_ASSERTION}\n".encode("windows-1252")
    raw = _raw(f"MIME-Version: 1.0\nContent-Type: text/plain; charset={charset}\n"
               "Content-Transfer-Encoding: 8bit", body)
    parsed = parse(raw)
    assert parsed.assertion and parsed.subjects == ("alice@example.com",)


def test_latin1_declared_as_utf8_is_read() -> None:
    body = f"Radera mejl för alice@example.com.\n{SV_ASSERTION}\n".encode("iso-8859-1")
    raw = _raw("MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n"
               "Content-Transfer-Encoding: 8bit", body)
    assert parse(raw).assertion


def test_subjects_leave_out_the_sender_and_support_and_are_lower_cased() -> None:
    parsed = _parse(
        "Radera mejl för Alice@Example.COM, eva@cykelbolaget.se och support@kundo.se.\n"
        f"{SV_ASSERTION}\n"
    )
    assert parsed.subjects == ("alice@example.com",)


def test_an_invalid_address_is_flagged_and_with_no_valid_one_so_is_no_subject() -> None:
    parsed = _parse(f"Radera mejl för alice@example..com.\n{SV_ASSERTION}\n")
    assert parsed.subjects == ()
    assert {"invalid_subject", "no_subject"} <= set(parsed.problems)


@pytest.mark.parametrize(
    ("text", "language"),
    [
        (f"Hej! Radera mejl för alice@example.com.\n{SV_ASSERTION}", "sv"),
        ("Hello, please erase the mail of alice@example.com.\n"
         "We have confirmed the person's identity.", "en"),
    ],
)
def test_the_language_follows_the_new_text(text: str, language: str) -> None:
    assert _parse(text).language == language


@pytest.mark.parametrize("from_lines", ["", "From: a@x.example\nFrom: b@x.example\n"])
def test_no_from_or_several_from_headers_is_bad_sender(from_lines: str) -> None:
    raw = (from_lines + "To: support@kundo.se\nSubject: Radera\n\n"
           f"Radera mejl för alice@example.com.\n{SV_ASSERTION}\n").encode()
    parsed = parse(raw)
    assert parsed.sender is None and "bad_sender" in parsed.problems


INVISIBLE = ["\u200b", "\u200c", "\u200d", "\u00ad", "\ufeff", "\u2060", "\u200e"]
SPACES = ["\u00a0", "\u2002", "\u2003", "\u2009", "\u200a", "\u202f", "\u205f", "\u3000"]


@pytest.mark.parametrize("char", INVISIBLE, ids=lambda c: f"U+{ord(c):04X}")
def test_an_invisible_character_inside_the_sentence_or_an_address_is_removed(char: str) -> None:
    sentence = SV_ASSERTION.replace("bekräftat", f"bekräf{char}tat").replace(" ", f" {char}", 1)
    parsed = _parse(f"Radera forum för al{char}ice@exam{char}ple.com.\n{sentence}\n")
    assert parsed.assertion
    assert parsed.subjects == ("alice@example.com",)


@pytest.mark.parametrize("char", SPACES, ids=lambda c: f"U+{ord(c):04X}")
def test_every_unicode_space_is_a_space(char: str) -> None:
    parsed = _parse(f"Radera{char}forum för{char}alice@example.com.\n"
                    + SV_ASSERTION.replace(" ", char) + "\n")
    assert parsed.assertion
    assert parsed.subjects == ("alice@example.com",)
    assert parsed.kinds == ("erase",) and parsed.channels == ("forum",)


def test_decomposed_letters_from_a_mac_read_as_composed() -> None:
    parsed = _parse(unicodedata.normalize("NFD", f"Radera forum för alice@example.com.\n"
                                                 f"{SV_ASSERTION}\n"))
    assert parsed.assertion and parsed.subjects == ("alice@example.com",)


@pytest.mark.parametrize("charset", ["iso-8859-1", "ISO-8859-1", "latin1", "us-ascii"])
def test_windows_1252_bytes_declared_as_latin1_or_ascii_read_as_windows_1252(
    charset: str,
) -> None:
    # 0x96 is an en dash and 0x93/0x94 are curly quotes in windows-1252, but
    # control codes in ISO 8859-1; Outlook sends them under either label.
    body = ("Radera forum för alice@example.com – tack.\n“Vi har bekräftat personens"
            " identitet.”\n").encode("windows-1252")
    raw = _raw(f"MIME-Version: 1.0\nContent-Type: text/plain; charset={charset}\n"
               "Content-Transfer-Encoding: 8bit", body)
    parsed = parse(raw)
    assert parsed.assertion and parsed.subjects == ("alice@example.com",)
    assert "–" in parsed.text and "\x96" not in parsed.text


@pytest.mark.parametrize(
    "written",
    ["ALICE@EXAMPLE.COM", "alice&#64;example.com", "alice&#x40;example&#46;com",
     "Alice＠Example.com", "alice&commat;example.com"],
)
def test_addresses_written_as_entities_or_in_capitals_normalise_to_one_form(
    written: str,
) -> None:
    parsed = _parse(f"Radera forum för {written}.\n{SV_ASSERTION}\n")
    assert parsed.subjects == ("alice@example.com",)


@pytest.mark.parametrize(
    "written",
    [
        "ALICE@EXAMPLE.COM",
        "alice&#64;example.com",
        "<a href='mailto:Alice%40Example.com'>Alice</a>",
    ],
)
def test_html_addresses_as_entities_capitals_or_escaped_mailto_normalise(written: str) -> None:
    parsed = _html(f"<p>Radera forum för {written}.</p><p>{SV_ASSERTION}</p>")
    assert parsed.subjects == ("alice@example.com",)


def test_a_mail_forwarded_as_an_attachment_gives_its_sender_not_its_text() -> None:
    inner = EmailMessage()
    inner["From"] = "Alice Andersson <alice@example.com>"
    inner["To"] = "kundtjanst@cykelbolaget.se"
    inner["Subject"] = "Ta bort mitt konto"
    inner.set_content("Hej! Radera även bo@example.com och allt i chatten. "
                      f"{SV_ASSERTION}\n")
    outer = EmailMessage()
    outer["From"] = "Eva Ek <eva@cykelbolaget.se>"
    outer["To"] = "support@kundo.se"
    outer["Subject"] = "VB: Ta bort mitt konto"
    outer.set_content(
        f"Hej!\n\nSe bifogat mejl. Radera kunden i forumet.\n{SV_ASSERTION}\n\n/Eva\n"
    )
    outer.add_attachment(inner)
    parsed = parse(outer.as_bytes(), ("support@kundo.se",))
    assert parsed.subjects == ("alice@example.com",)
    assert parsed.channels == ("forum",)
    assert "bo@example.com" not in parsed.text
    assert [a.content_type for a in parsed.attachments] == ["message/rfc822"]
