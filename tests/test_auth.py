"""Sender authentication end to end: signed mail in, what happens, where replies go.

Mails are signed here with generated keys whose public halves are pinned
through `auth.pinned_keys`, so no test asks DNS.
"""

from __future__ import annotations

import base64
from pathlib import Path

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from dkim.canonicalization import CanonicalizationPolicy
from dkim.crypto import parse_pem_private_key
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from kundo_gdpr.config import Config
from kundo_gdpr.intake.parse import parse
from kundo_gdpr.models import (
    Channel,
    ChatSession,
    Editor,
    InboundMail,
    Organization,
    Request,
    RequestChannel,
)
from kundo_gdpr.replies.transports import FolderTransport
from kundo_gdpr.stages.driver import Worker, make_source
from tests.conftest import make_config
from tests.helpers import (
    EN_ASSERTION,
    SV_ASSERTION,
    delivered,
    drop,
    outbox_messages,
    request_mail,
)

ERASE_ALICE = (
    "Hej!\n\nVår kund alice@example.com vill bli bortglömd. Radera allt i forum, "
    f"e-post och chatt.\n\n{SV_ASSERTION}\n\nMed vänliga hälsningar\nEva\n"
)
EXPORT_BERTIL = (
    "Hello,\n\nPlease export everything bertil@example.org wrote in mail, forum "
    f"posts and chats.\n\n{EN_ASSERTION}\n\nBest regards\nOlle\n"
)
HEADERS = [b"from", b"to", b"subject", b"date", b"message-id"]

# cryptography refuses to make keys under 1024 bits, so this one was made once
# with `openssl genrsa 512`. It is only ever used to show it is not enough.
WEAK_KEY = b"""-----BEGIN RSA PRIVATE KEY-----
MIIBOwIBAAJBAMG6fQqT1TQoeHxPT4fVKAmER5mUK/gWWJjJHM3Ga7DT740rPBvp
tQxQx7gesCtQjyWyW0LsZijR+ukhJLc+hS0CAwEAAQJAWF7AQT30SGmZpGLtTXHf
ZI/xtU3QzMcsvO0odXlokG0hSNR43cIaaFRYEiKCn1M2WqPn+zmRidSJycXGH4ll
4QIhAO1ObfYi1Z2yB7EOx2MoD8O0/UTmoj3x5wz2BFrBzbzFAiEA0P1CAdUwn2t9
xm2DRoXsB374u2z3Xnw+3JkFjIpB/UkCIGHDGMv459YSfNa1hvDTlUMD8f8LoLUy
TgRp6btV8iMdAiEAwVuAJaf0i5rtTJhoG+iuPyU3xlkD6bR0iK8/Vg9ZDJkCIQC8
qCf1yQ5AVs2d1+YDZzgs/wRgINWvUr92Vzggh678Lg==
-----END RSA PRIVATE KEY-----
"""


def _public_record(private_pem: bytes) -> str:
    key = serialization.load_pem_private_key(private_pem, password=None)
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return "v=DKIM1; k=rsa; p=" + base64.b64encode(der).decode()


@pytest.fixture(scope="module")
def strong_key() -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


@pytest.fixture
def keys(tmp_path: Path, strong_key: bytes) -> dict[str, bytes]:
    """Every domain in these tests signs with selector `s1`; pinned, not in DNS."""
    by_domain = {
        "cykelbolaget.se": strong_key,
        "mail.bokhandeln.se": strong_key,
        "evil.example": strong_key,
        "cykelbo1aget.se": strong_key,
        "weak.cykelbolaget.se": WEAK_KEY,
    }
    lines = [f"s1._domainkey.{d} {_public_record(k)}" for d, k in by_domain.items()]
    (tmp_path / "dkim-keys.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return by_domain


@pytest.fixture
def auth_config(tmp_path: Path, db_url: str) -> Config:
    return make_config(
        tmp_path,
        db_url,
        policy={"auto_approve": True},
        auth={"pinned_keys": "dkim-keys.txt", "trusted_authserv_ids": ["mx.kundo.se"]},
    )


def sign(raw: bytes, domain: str, keys: dict[str, bytes], length: bool = False) -> bytes:
    raw = raw.replace(b"\n", b"\r\n") if b"\r\n" not in raw else raw
    sig = dkim.sign(raw, b"s1", domain.encode(), keys[domain], include_headers=HEADERS,
                    length=length)
    return bytes(sig) + raw


def sign_without_from(raw: bytes, domain: str, key: bytes) -> bytes:
    """A valid signature whose h= leaves From out (dkim.sign refuses to make one)."""
    raw = raw.replace(b"\n", b"\r\n")
    signer = dkim.DKIM(raw)
    signer.signature_algorithm = b"rsa-sha256"
    signer.hasher = dkim.HASH_ALGORITHMS[b"rsa-sha256"]
    policy = CanonicalizationPolicy.from_c_value(b"relaxed/relaxed")
    digest = signer.hasher(policy.canonicalize_body(signer.body)).digest()
    include = [b"to", b"subject", b"date", b"message-id"]
    fields = [
        (b"v", b"1"), (b"a", b"rsa-sha256"), (b"c", b"relaxed/relaxed"),
        (b"d", domain.encode()), (b"s", b"s1"), (b"h", b" : ".join(include)),
        (b"bh", base64.b64encode(digest)), (b"b", b""),
    ]
    value = signer.gen_header(fields, include, policy, b"DKIM-Signature",
                              parse_pem_private_key(key))
    return b"DKIM-Signature: " + bytes(value) + raw


def run(config: Config, engine: Engine, *mails: bytes, prefix: str = "m") -> None:
    inbox = config.path("var/inbox")
    for index, raw in enumerate(mails):
        drop(inbox, raw, f"{prefix}{index}")
    worker = Worker(config, engine, make_source(config),
                    FolderTransport(config.path(config.outbox.folder.path)))
    while worker.run_once():
        pass


def the_request(factory: sessionmaker[Session]) -> Request:
    with factory() as session:
        request = session.scalars(select(Request)).one()
        session.expunge(request)
        return request


def alice_chats(factory: sessionmaker[Session]) -> int:
    with factory() as session:
        return session.scalar(select(func.count()).select_from(ChatSession).where(
            ChatSession.visitor_email == "alice@example.com")) or 0


def recipients(config: Config) -> list[str]:
    return [str(m["To"]) for m in outbox_messages(config.path("var/outbox"))]


def purposes(config: Config) -> list[str]:
    return [str(m["Subject"]).split("] ", 1)[1] for m in outbox_messages(
        config.path("var/outbox"))]


def assert_held_for_review(config: Config, factory: sessionmaker[Session]) -> Request:
    request = the_request(factory)
    assert request.state == "needs_review"
    assert request.authenticated is False
    assert "sender_unauthenticated" in request.problems
    assert alice_chats(factory) == 2  # nothing erased
    # Only the receipt, and only to the editor's stored address.
    assert recipients(config) == ["eva@cykelbolaget.se"]
    assert purposes(config) == ["Vi har tagit emot er begäran"]
    return request


def reasons(request: Request) -> list[str]:
    (finding,) = [f for f in request.findings if f["code"] == "sender_unauthenticated"]
    return list(finding["args"]["reasons"])


def test_a_mail_signed_by_the_from_domain_is_authenticated_and_carried_out(
    world: None, keys: dict[str, bytes], auth_config: Config, engine: Engine,
    factory: sessionmaker[Session],
) -> None:
    raw = sign(request_mail("Eva Ek <eva@cykelbolaget.se>", ERASE_ALICE), "cykelbolaget.se", keys)
    run(auth_config, engine, raw)
    request = the_request(factory)
    assert request.state == "done"
    assert request.authenticated is True
    assert alice_chats(factory) == 1  # the other controller's chat stays
    assert recipients(auth_config) == ["eva@cykelbolaget.se"] * 2


def test_a_signature_from_a_subdomain_of_the_from_domain_aligns(
    world: None, keys: dict[str, bytes], auth_config: Config, engine: Engine,
    factory: sessionmaker[Session],
) -> None:
    raw = sign(request_mail("olle@bokhandeln.se", EXPORT_BERTIL), "mail.bokhandeln.se", keys)
    run(auth_config, engine, raw)
    request = the_request(factory)
    assert (request.state, request.authenticated) == ("done", True)
    assert recipients(auth_config) == ["olle@bokhandeln.se"] * 2


def test_a_mail_signed_by_another_domain_waits_for_review(
    world: None, keys: dict[str, bytes], auth_config: Config, engine: Engine,
    factory: sessionmaker[Session],
) -> None:
    raw = sign(request_mail("eva@cykelbolaget.se", ERASE_ALICE), "evil.example", keys)
    run(auth_config, engine, raw)
    request = assert_held_for_review(auth_config, factory)
    assert any(r.startswith("dkim_unaligned") for r in reasons(request))


def test_a_body_changed_after_signing_fails(
    world: None, keys: dict[str, bytes], auth_config: Config, engine: Engine,
    factory: sessionmaker[Session],
) -> None:
    raw = sign(request_mail("eva@cykelbolaget.se", ERASE_ALICE), "cykelbolaget.se", keys)
    run(auth_config, engine, raw.replace(b"alice@example.com", b"bertil@example.org"))
    request = the_request(factory)
    assert request.state == "needs_review" and request.authenticated is False
    assert any("body hash mismatch" in r for r in reasons(request))
    assert recipients(auth_config) == ["eva@cykelbolaget.se"]


def test_a_signature_with_a_body_length_does_not_count(
    world: None, keys: dict[str, bytes], auth_config: Config, engine: Engine,
    factory: sessionmaker[Session],
) -> None:
    harmless = request_mail("eva@cykelbolaget.se", "Hej, en fråga om fakturan.\n")
    signed = sign(harmless, "cykelbolaget.se", keys, length=True)
    # What l= allows: anyone may append text and the signature still verifies.
    appended = signed + ERASE_ALICE.replace("\n", "\r\n").encode()
    assert dkim.verify(appended, dnsfunc=lambda name, timeout=5: _pinned(keys, name))
    run(auth_config, engine, appended)
    request = assert_held_for_review(auth_config, factory)
    assert "dkim_body_length" in reasons(request)


def _pinned(keys: dict[str, bytes], name: bytes) -> bytes:
    domain = name.decode().rstrip(".").split("._domainkey.", 1)[1]
    return _public_record(keys[domain]).encode()


def test_a_signature_that_leaves_from_out_does_not_count(
    world: None, keys: dict[str, bytes], auth_config: Config, engine: Engine,
    factory: sessionmaker[Session],
) -> None:
    raw = sign_without_from(request_mail("eva@cykelbolaget.se", ERASE_ALICE),
                            "cykelbolaget.se", keys["cykelbolaget.se"])
    assert dkim.verify(raw, dnsfunc=lambda name, timeout=5: _pinned(keys, name))
    run(auth_config, engine, raw)
    request = assert_held_for_review(auth_config, factory)
    assert "dkim_from_unsigned" in reasons(request)


def test_a_key_under_1024_bits_does_not_count(
    world: None, keys: dict[str, bytes], auth_config: Config, engine: Engine,
    factory: sessionmaker[Session],
) -> None:
    raw = sign(request_mail("eva@cykelbolaget.se", ERASE_ALICE), "weak.cykelbolaget.se", keys)
    run(auth_config, engine, raw)
    request = assert_held_for_review(auth_config, factory)
    assert any("too small" in r for r in reasons(request))


def test_an_unsigned_mail_waits_for_review_even_under_auto_approve(
    world: None, keys: dict[str, bytes], auth_config: Config, engine: Engine,
    factory: sessionmaker[Session],
) -> None:
    run(auth_config, engine, request_mail("eva@cykelbolaget.se", ERASE_ALICE))
    assert_held_for_review(auth_config, factory)


def test_a_trusted_receivers_dmarc_pass_authenticates(
    world: None, keys: dict[str, bytes], auth_config: Config, engine: Engine,
    factory: sessionmaker[Session],
) -> None:
    raw = request_mail("eva@cykelbolaget.se", ERASE_ALICE, extra_headers={
        "Authentication-Results":
            "mx.kundo.se; spf=pass smtp.mailfrom=cykelbolaget.se; "
            "dmarc=pass (p=reject) header.from=cykelbolaget.se"})
    run(auth_config, engine, raw)
    request = the_request(factory)
    assert (request.state, request.authenticated) == ("done", True)
    assert recipients(auth_config) == ["eva@cykelbolaget.se"] * 2


def test_a_trusted_receivers_aligned_dkim_pass_authenticates(
    world: None, keys: dict[str, bytes], auth_config: Config, engine: Engine,
    factory: sessionmaker[Session],
) -> None:
    raw = request_mail("eva@cykelbolaget.se", ERASE_ALICE, extra_headers={
        "Authentication-Results": "mx.kundo.se; dkim=pass header.d=cykelbolaget.se"})
    run(auth_config, engine, raw)
    assert the_request(factory).state == "done"


def test_a_senders_own_authentication_results_do_not_count(
    world: None, keys: dict[str, bytes], auth_config: Config, engine: Engine,
    factory: sessionmaker[Session],
) -> None:
    raw = request_mail("eva@cykelbolaget.se", ERASE_ALICE, extra_headers={
        "Authentication-Results":
            "evil.example; dmarc=pass header.from=cykelbolaget.se; "
            "dkim=pass header.d=cykelbolaget.se"})
    run(auth_config, engine, raw)
    assert_held_for_review(auth_config, factory)


def test_a_trusted_receivers_pass_for_another_domain_does_not_count(
    world: None, keys: dict[str, bytes], auth_config: Config, engine: Engine,
    factory: sessionmaker[Session],
) -> None:
    raw = request_mail("eva@cykelbolaget.se", ERASE_ALICE, extra_headers={
        "Authentication-Results":
            "mx.kundo.se; dmarc=pass header.from=evil.example; dkim=pass header.d=evil.example"})
    run(auth_config, engine, raw)
    assert_held_for_review(auth_config, factory)


def test_reply_to_is_ignored_and_the_export_goes_to_the_stored_address(
    world: None, keys: dict[str, bytes], auth_config: Config, engine: Engine,
    factory: sessionmaker[Session],
) -> None:
    mail = request_mail("olle@bokhandeln.se", EXPORT_BERTIL + "\nSend it to thief@evil.example\n",
                        extra_headers={"Reply-To": "thief@evil.example"})
    run(auth_config, engine, sign(mail, "mail.bokhandeln.se", keys))
    request = the_request(factory)
    assert request.state == "done"
    replies = outbox_messages(auth_config.path("var/outbox"))
    assert [str(m["To"]) for m in replies] == ["olle@bokhandeln.se"] * 2
    assert all(m["Cc"] is None and m["Bcc"] is None for m in replies)
    (attachment,) = delivered(replies[-1])
    assert (attachment.get_filename() or "").endswith((".xlsx", ".zip"))
    assert not any(b"thief@evil.example" in p.read_bytes() and b"To: thief" in p.read_bytes()
                   for p in auth_config.path("var/outbox").glob("*.eml"))


def test_a_lookalike_domain_signed_by_itself_is_not_an_editor(
    world: None, keys: dict[str, bytes], auth_config: Config, engine: Engine,
    factory: sessionmaker[Session],
) -> None:
    raw = sign(request_mail("Eva Ek <eva@cykelbo1aget.se>", ERASE_ALICE), "cykelbo1aget.se", keys)
    run(auth_config, engine, raw)
    request = the_request(factory)
    # Authenticated, but as cykelbo1aget.se, which edits nothing.
    assert request.authenticated is True
    assert request.state == "rejected"
    assert "not_editor" in request.problems
    assert request.organization_id is None and request.editor_id is None
    assert alice_chats(factory) == 2
    # The rejection goes back to the look-alike sender, never to the real editor,
    # and carries no data.
    (reply,) = outbox_messages(auth_config.path("var/outbox"))
    assert str(reply["To"]) == "eva@cykelbo1aget.se"
    assert not list(reply.iter_attachments())


def test_a_forgery_reusing_a_genuine_message_id_does_not_get_the_genuine_mail_skipped(
    world: None, keys: dict[str, bytes], auth_config: Config, engine: Engine,
    factory: sessionmaker[Session],
) -> None:
    message_id = "<erase-42@cykelbolaget.se>"
    forged = request_mail("eva@cykelbolaget.se", "Hej, strunta i det.\n", message_id=message_id)
    genuine = sign(request_mail("eva@cykelbolaget.se", ERASE_ALICE, message_id=message_id),
                   "cykelbolaget.se", keys)
    run(auth_config, engine, forged, genuine)
    with factory() as session:
        states = {r.authenticated: r.state for r in session.scalars(select(Request))}
    assert states[True] == "done"
    assert states[False] in ("rejected", "needs_review")
    assert alice_chats(factory) == 1
    # The genuine mail resent is still recognised as the same request.
    resent = genuine.replace(b"Subject:", b"X-Resent: 1\r\nSubject:", 1)
    run(auth_config, engine, resent, prefix="resent")
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(Request)) == 2
        assert session.scalar(select(func.count()).select_from(InboundMail)) == 3


SPOOFED_FROM = {
    "two_from_headers": "From: eva@cykelbolaget.se\r\nFrom: mallory@evil.example\r\n",
    "two_addresses": "From: eva@cykelbolaget.se, mallory@evil.example\r\n",
    "display_name_spoof": 'From: "eva@cykelbolaget.se" <mallory@evil.example>\r\n',
    "quoted_address_only": 'From: "eva@cykelbolaget.se@evil.example"\r\n',
    "escaped_quote_in_name": 'From: "mallory@evil.example\\"" <eva@cykelbolaget.se>\r\n',
    "two_angle_addresses": "From: <eva@cykelbolaget.se>, <mallory@evil.example>\r\n",
    "double_at": "From: eva@cykelbolaget.se@evil.example\r\n",
    "group_syntax": "From: undisclosed: eva@cykelbolaget.se;\r\n",
    "group_of_two": "From: team: eva@cykelbolaget.se, mallory@evil.example;\r\n",
    "encoded_word_names_another_address":
        "From: =?utf-8?q?mallory=40evil=2Eexample?= <eva@cykelbolaget.se>\r\n",
    "encoded_word_hides_an_address":
        "From: =?utf-8?q?eva=40cykelbolaget=2Ese_=3Cmallory=40evil=2Eexample=3E?=\r\n",
    "bare_address_then_angle": "From: eva@cykelbolaget.se <mallory@evil.example>\r\n",
    "text_after_the_address": "From: Eva <eva@cykelbolaget.se> mallory@evil.example\r\n",
    "quoted_local_part": 'From: "eva@cykelbolaget.se"@evil.example\r\n',
    # CVE-2023-27043: getaddresses and the header registry read these differently.
    "paren_then_angle": "From: alice@example.org)<eva@cykelbolaget.se>\r\n",
    "open_comment": "From: eva@cykelbolaget.se(<mallory@evil.example>\r\n",
}


def _with_from(from_header: str) -> bytes:
    rest = request_mail("x@y.example", ERASE_ALICE).split(b"\n", 1)[1]
    return from_header.encode() + rest.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


@pytest.mark.parametrize("case", sorted(SPOOFED_FROM))
def test_an_ambiguous_from_is_quarantined_and_never_answered(
    case: str, world: None, keys: dict[str, bytes], auth_config: Config, engine: Engine,
    factory: sessionmaker[Session],
) -> None:
    run(auth_config, engine, _with_from(SPOOFED_FROM[case]))
    request = the_request(factory)
    assert request.state == "quarantined"
    assert "bad_sender" in request.problems
    assert request.editor_id is None and not request.authenticated
    assert alice_chats(factory) == 2
    assert recipients(auth_config) == []


def test_a_display_name_repeating_the_address_and_a_comment_are_still_one_sender() -> None:
    for value in (
        '"eva@cykelbolaget.se" <eva@cykelbolaget.se>',
        "eva@cykelbolaget.se (Eva Ek)",
        '"Ek, Eva" <eva@cykelbolaget.se>',
        "=?utf-8?q?Eva_=C3=85ker?= <eva@cykelbolaget.se>",
    ):
        parsed = parse(_with_from(f"From: {value}\r\n"))
        assert parsed.sender == "eva@cykelbolaget.se", value
        assert "bad_sender" not in parsed.problems


def test_all_data_next_to_a_named_channel_covers_all_three_but_waits_for_an_agent(
    world: None, keys: dict[str, bytes], auth_config: Config, engine: Engine,
    factory: sessionmaker[Session],
) -> None:
    body = (
        "Hej!\n\nRadera alla uppgifter om alice@example.com och foruminläggen.\n\n"
        f"{SV_ASSERTION}\n\nMed vänliga hälsningar\nEva\n"
    )
    raw = sign(request_mail("eva@cykelbolaget.se", body), "cykelbolaget.se", keys)
    run(auth_config, engine, raw)
    request = the_request(factory)
    # Authenticated and auto-approve is on, yet the widened erase is not run.
    assert (request.state, request.authenticated) == ("needs_review", True)
    assert request.channel_kinds == ["mail", "forum", "chat"]
    assert "channels_widened" in request.problems
    assert alice_chats(factory) == 2
    assert purposes(auth_config) == ["Vi har tagit emot er begäran"]


# -- authorization: which organization, which channels ---------------------------------


def _chats_left_by_organization(factory: sessionmaker[Session]) -> list[str]:
    with factory() as session:
        return list(session.scalars(
            select(Organization.slug)
            .join(Channel, Channel.organization_id == Organization.id)
            .join(ChatSession, ChatSession.channel_id == Channel.id)
            .where(ChatSession.visitor_email == "alice@example.com")
            .order_by(Organization.slug)
        ))


def _covered(factory: sessionmaker[Session]) -> list[int]:
    with factory() as session:
        return list(session.scalars(select(RequestChannel.channel_id)))


@pytest.fixture
def kim(world: None, factory: sessionmaker[Session]) -> None:
    """kim@cykelbolaget.se edits the forum and chat of both organizations, no mail."""
    with factory.begin() as session:
        editor = Editor(name="Kim Karlsson", email="kim@cykelbolaget.se")
        session.add(editor)
        for channel in session.scalars(select(Channel).where(Channel.kind != "mail")):
            channel.editors.append(editor)


def test_an_editor_of_another_organization_is_told_what_is_not_covered_but_no_names(
    world: None, keys: dict[str, bytes], auth_config: Config, engine: Engine,
    factory: sessionmaker[Session],
) -> None:
    body = (
        "Hej!\n\nRadera alice@example.com i Cykelbolagets forum och chatt.\n\n"
        f"{SV_ASSERTION}\n\nMed vänliga hälsningar\nOlle\nBokhandeln i Norr\n"
    )
    run(auth_config, engine, sign(request_mail("olle@bokhandeln.se", body),
                                  "mail.bokhandeln.se", keys))
    request = the_request(factory)
    assert (request.state, request.authenticated) == ("rejected", True)
    assert "not_editor" in request.problems
    assert _covered(factory) == [] and request.organization_id is None
    not_covered = [f["args"] for f in request.findings if f["code"] == "channel_not_covered"]
    # Another organization's editors are named only to its own authenticated editors.
    assert not_covered == [
        {"channel": "Cykelbolaget AB – forum", "kind": "forum", "editors": []},
        {"channel": "Cykelbolaget AB – chatt", "kind": "chat", "editors": []},
    ]
    assert _chats_left_by_organization(factory) == ["bokhandeln", "cykelbolaget"]
    (reply,) = outbox_messages(auth_config.path("var/outbox"))
    assert str(reply["To"]) == "olle@bokhandeln.se"
    text = reply.get_content()
    assert "- Cykelbolaget AB – forum\n" in text
    assert "Eva Ek" not in text and "eva@cykelbolaget.se" not in reply.as_string()


def test_an_editor_of_several_organizations_who_names_one_gets_that_one(
    kim: None, keys: dict[str, bytes], auth_config: Config, engine: Engine,
    factory: sessionmaker[Session],
) -> None:
    body = (
        "Hej!\n\nRadera alice@example.com i e-post, forum och chatt hos Bokhandeln i Norr.\n\n"
        f"{SV_ASSERTION}\n\nMed vänliga hälsningar\nKim\nCykelbolaget AB\n"
    )
    run(auth_config, engine, sign(request_mail("kim@cykelbolaget.se", body),
                                  "cykelbolaget.se", keys))
    request = the_request(factory)
    assert request.state == "done"
    with factory() as session:
        books = session.scalars(select(Organization).where(
            Organization.slug == "bokhandeln")).one()
        assert request.organization_id == books.id
    # Only Bokhandeln's chat went; its mail channel, which Kim does not edit,
    # is listed with who can ask instead.
    assert _chats_left_by_organization(factory) == ["cykelbolaget"]
    not_covered = [f["args"] for f in request.findings if f["code"] == "channel_not_covered"]
    assert not_covered == [{"channel": "Bokhandeln i Norr – kundtjänst", "kind": "mail",
                            "editors": ["Olle Ohlsson"]}]
    assert recipients(auth_config) == ["kim@cykelbolaget.se"] * 2


def test_an_editor_of_several_organizations_who_names_none_goes_to_review(
    kim: None, keys: dict[str, bytes], auth_config: Config, engine: Engine,
    factory: sessionmaker[Session],
) -> None:
    body = (
        "Hej!\n\nRadera alice@example.com i forum och chatt.\n\n"
        f"{SV_ASSERTION}\n\nMed vänliga hälsningar\nKim\nCykelbolaget AB\n"
    )
    run(auth_config, engine, sign(request_mail("kim@cykelbolaget.se", body),
                                  "cykelbolaget.se", keys))
    request = the_request(factory)
    assert (request.state, request.authenticated) == ("needs_review", True)
    (finding,) = [f for f in request.findings if f["code"] == "ambiguous_organization"]
    assert finding["args"]["organizations"] == ["Bokhandeln i Norr", "Cykelbolaget AB"]
    assert request.organization_id is None and _covered(factory) == []
    assert _chats_left_by_organization(factory) == ["bokhandeln", "cykelbolaget"]


def test_our_authserv_id_below_a_received_line_is_a_forgery_and_does_not_count(
    world: None, keys: dict[str, bytes], auth_config: Config, engine: Engine,
    factory: sessionmaker[Session],
) -> None:
    forged = request_mail("eva@cykelbolaget.se", ERASE_ALICE, extra_headers={
        "Authentication-Results":
            "mx.kundo.se; dmarc=pass header.from=cykelbolaget.se; "
            "dkim=pass header.d=cykelbolaget.se"})
    relayed = b"Received: from relay.evil.example (relay.evil.example [192.0.2.7])\n" \
        b"\tby mx.kundo.se; Mon, 23 Nov 2026 09:00:01 +0100\n" + forged
    run(auth_config, engine, relayed)
    request = assert_held_for_review(auth_config, factory)
    assert "authres_not_topmost: mx.kundo.se" in reasons(request)


def test_our_authserv_id_below_another_servers_header_does_not_count(
    world: None, keys: dict[str, bytes], auth_config: Config, engine: Engine,
    factory: sessionmaker[Session],
) -> None:
    raw = request_mail("eva@cykelbolaget.se", ERASE_ALICE)
    raw = (b"Authentication-Results: mx.other.example; dmarc=fail header.from=cykelbolaget.se\n"
           b"Authentication-Results: mx.kundo.se; dmarc=pass header.from=cykelbolaget.se\n" + raw)
    run(auth_config, engine, raw)
    request = assert_held_for_review(auth_config, factory)
    assert reasons(request)[:2] == ["authres_untrusted: mx.other.example",
                                    "authres_not_topmost: mx.kundo.se"]


def test_our_topmost_header_above_the_received_lines_counts(
    world: None, keys: dict[str, bytes], auth_config: Config, engine: Engine,
    factory: sessionmaker[Session],
) -> None:
    raw = request_mail("eva@cykelbolaget.se", ERASE_ALICE)
    raw = (b"Authentication-Results: mx.kundo.se;\n\tdkim=pass (2048-bit key)"
           b" header.d=cykelbolaget.se header.i=@cykelbolaget.se\n"
           b"Received: from mail.cykelbolaget.se by mx.kundo.se; Mon, 23 Nov 2026 09:00:01 +0100\n"
           + raw)
    run(auth_config, engine, raw)
    assert the_request(factory).state == "done"


def test_an_unauthenticated_stranger_gets_no_reply_and_waits_for_the_agents(
    world: None, keys: dict[str, bytes], auth_config: Config, engine: Engine,
    factory: sessionmaker[Session],
) -> None:
    # A forged From would otherwise turn our rejection into mail aimed at anyone.
    run(auth_config, engine, request_mail("victim@example.net", ERASE_ALICE))
    request = the_request(factory)
    assert (request.state, request.authenticated) == ("quarantined", False)
    assert "unauthenticated_stranger" in request.problems
    assert recipients(auth_config) == []


def test_a_signed_stranger_is_still_told_why_not(
    world: None, keys: dict[str, bytes], auth_config: Config, engine: Engine,
    factory: sessionmaker[Session],
) -> None:
    run(auth_config, engine, sign(request_mail("mallory@evil.example", ERASE_ALICE),
                                  "evil.example", keys))
    request = the_request(factory)
    assert (request.state, request.authenticated) == ("rejected", True)
    assert recipients(auth_config) == ["mallory@evil.example"]


def test_list_mail_is_stored_and_never_answered(
    world: None, keys: dict[str, bytes], auth_config: Config, engine: Engine,
    factory: sessionmaker[Session],
) -> None:
    raw = sign(request_mail("eva@cykelbolaget.se", ERASE_ALICE, extra_headers={
        "List-Unsubscribe": "<https://news.cykelbolaget.se/u?id=1>"}), "cykelbolaget.se", keys)
    run(auth_config, engine, raw)
    assert the_request(factory).state == "ignored"
    assert alice_chats(factory) == 2 and recipients(auth_config) == []


def test_a_raw_utf8_display_name_is_a_valid_sender() -> None:
    raw = request_mail("eva@cykelbolaget.se", ERASE_ALICE).replace(
        b"From: eva@cykelbolaget.se", "From: Åsa Öberg <eva@cykelbolaget.se>".encode())
    parsed = parse(raw, ("support@kundo.se",))
    assert (parsed.sender, parsed.sender_name) == ("eva@cykelbolaget.se", "Åsa Öberg")
    assert "bad_sender" not in parsed.problems
