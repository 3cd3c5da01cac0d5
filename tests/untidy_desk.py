"""A desk whose data looks like real desks' data, around one subject, Anna.

Her address is written untidily in owner columns; she shares a conversation
with a cc'd customer (Bo), wrote into Bo's conversation (a merged thread),
shares chats with other visitors, and is named in others' texts in every
encoded form. `Desk` names every row so tests can say what must happen to it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from kundo_gdpr.models import (
    Attachment,
    ChatMessage,
    ChatSession,
    ForumPost,
    MailConversation,
    MailMessage,
)
from tests.test_erase import channel_of

ANNA = "anna@x.se"
NAME = "Anna Svensson"
BO = "bo@y.se"
BOS_ID_NUMBER = "19700101-1234"


@dataclass
class Desk:
    ids: dict[str, int] = field(default_factory=dict)

    def of(self, *names: str) -> set[int]:
        return {self.ids[n] for n in names}


def build(session: Session) -> Desk:
    mail, forum, chat = (channel_of(session, k) for k in ("mail", "forum", "chat"))
    desk = Desk()
    rows: dict[str, object] = {}

    def add(name: str, row: object) -> None:
        session.add(row)
        session.flush()
        rows[name] = row
        desk.ids[name] = row.id  # type: ignore[attr-defined]

    # Her conversation, with Bo cc'd.
    add("c1", MailConversation(channel_id=mail, customer_name=NAME,
                               customer_email="Anna Svensson <Anna@X.se>", subject="Kvitto"))
    add("m1", MailMessage(conversation_id=desk.ids["c1"], direction="in", from_addr=" anna@x.se\t",
                          to_addr="support@shop.example", body="Hej, här är mitt kvitto."))
    add("m2", MailMessage(conversation_id=desk.ids["c1"], direction="out",
                          from_addr="support@shop.example", to_addr="anna@x.se",
                          body="Tack, vi tittar på det."))
    add("m3", MailMessage(conversation_id=desk.ids["c1"], direction="in", from_addr=BO,
                          to_addr="support@shop.example",
                          body=f"Jag är Bo, {BOS_ID_NUMBER}. Skriv till anna%40x.se också."))
    add("m4", MailMessage(conversation_id=desk.ids["c1"], direction="out",
                          from_addr="support@shop.example", to_addr=BO, body="Hej Bo!"))
    # Bo's conversation, with her messages merged into the thread.
    add("c2", MailConversation(channel_id=mail, customer_name="Bo", customer_email=BO,
                               subject="Bos fråga"))
    add("m5", MailMessage(conversation_id=desk.ids["c2"], direction="in", from_addr=BO,
                          body="En fråga från Bo."))
    add("m6", MailMessage(conversation_id=desk.ids["c2"], direction="in",
                          from_addr="ANNA@x.se", body="Anna här, samma fråga."))
    add("m7", MailMessage(conversation_id=desk.ids["c2"], direction="out",
                          from_addr="support@shop.example", to_addr="Anna <anna@x.se>",
                          body="Svar till dig."))
    add("m8", MailMessage(conversation_id=desk.ids["c2"], direction="out",
                          from_addr="support@shop.example", to_addr=BO,
                          body="Svar till Bo, kopia till anna&#64;x.se."))
    # Hers alone.
    add("c3", MailConversation(channel_id=mail, customer_name=NAME, customer_email="<anna@x.se>",
                               subject="Leverans"))
    add("m9", MailMessage(conversation_id=desk.ids["c3"], direction="in", from_addr=ANNA,
                          body="Var är mitt paket?"))
    add("m10", MailMessage(conversation_id=desk.ids["c3"], direction="out", to_addr=ANNA,
                           body="Det kommer i morgon."))
    add("a1", Attachment(mail_message_id=desk.ids["m1"], filename="kvitto.txt",
                         content_type="text/plain", data=b"Kvitto till anna@x.se", size=21))
    add("a2", Attachment(mail_message_id=desk.ids["m3"], filename="lista.csv",
                         content_type="text/csv", data=b"namn;adress\nAnna;ANNA@x.se\n", size=27))
    # Forum: her opener others replied to, others naming her, a +tag variant.
    add("p1", ForumPost(channel_id=forum, author_name=NAME, author_email="<anna@x.se>",
                        author_ip="198.18.7.5", title="Annas cykel", body="Min cykel är trasig."))
    add("p2", ForumPost(channel_id=forum, topic_id=desk.ids["p1"], parent_id=desk.ids["p1"],
                        author_name="Bo", author_email=BO, body="Prova ny slang."))
    add("a3", Attachment(forum_post_id=desk.ids["p1"], filename="cykel.jpg",
                         content_type="image/jpeg", data=b"\xff\xd8jpeg", size=6))
    add("p3", ForumPost(channel_id=forum, author_name="Bo", author_email=BO, title="Fråga",
                        body="Kontakta ANNA@X.SE eller anna=40x.se i mejlen."))
    add("p4", ForumPost(channel_id=forum, author_name="Cia", author_email="cia@z.se",
                        title="Om Anna Svensson", body="Hennes adress: anna&#x40;x.se"))
    add("p5", ForumPost(channel_id=forum, author_name="Anna", author_email="anna+shop@x.se",
                        title="Butiken", body="Från min andra adress."))
    # Chat: hers alone; Bo's with her in it; hers with Cia in it.
    add("s1", ChatSession(channel_id=chat, visitor_name=NAME, visitor_email=" anna@x.se",
                          visitor_ip="198.18.7.6"))
    add("x1", ChatMessage(session_id=desk.ids["s1"], sender="visitor", body="Hej!"))
    add("x2", ChatMessage(session_id=desk.ids["s1"], sender="agent", body="Hej Anna!"))
    add("s2", ChatSession(channel_id=chat, visitor_name="Bo", visitor_email=BO,
                          visitor_ip="198.18.7.7"))
    add("x3", ChatMessage(session_id=desk.ids["s2"], sender="visitor", body="Bo här."))
    add("x4", ChatMessage(session_id=desk.ids["s2"], sender="visitor",
                          sender_email="Anna <anna@x.se>", body="Och Anna här."))
    add("x5", ChatMessage(session_id=desk.ids["s2"], sender="agent", body="Hej båda!"))
    add("s3", ChatSession(channel_id=chat, visitor_name=NAME, visitor_email="ANNA@x.se",
                          visitor_ip="198.18.7.8"))
    add("x6", ChatMessage(session_id=desk.ids["s3"], sender="visitor", body="Anna igen."))
    add("x7", ChatMessage(session_id=desk.ids["s3"], sender="visitor", sender_email="cia@z.se",
                          body="Cia här."))
    add("x8", ChatMessage(session_id=desk.ids["s3"], sender="agent", body="Välkomna."))
    add("a4", Attachment(chat_message_id=desk.ids["x6"], filename="skärm.txt",
                         content_type="text/plain", data=b"anna", size=4))
    return desk


# What an erase (default strategies) takes away whole, and what it keeps.
ERASED = ("m1", "m2", "m6", "m7", "m9", "m10", "c3", "a1", "a3", "s1", "x1", "x2", "x4", "x6",
          "a4")
ANONYMISED = ("c1", "s3", "p1")
# Others' items whose texts name her address in some form: replaced.
MENTIONS = ("m3", "m8", "p3", "p4")
