"""The reference support desk: what kundo-gdpr erases and exports.

A host desk with its own schema implements `kundo_gdpr.desk.DeskStore`
instead; these tables are what the bundled SQL store and the demo use.
Every person's address column has a maintained, indexed `*_key` column: the
address in its one normalised form (`kundo_gdpr.desk.identity.key`), set
here whenever an address is assigned and filled in by `identity.catch_up`
for rows written past the ORM. The data subject is matched on it alone, so
every spelling of their address is found, fast, among millions of items.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from kundo_gdpr.identity import KEY_LENGTH
from kundo_gdpr.identity import key as address_key
from kundo_gdpr.models.base import Base, UtcDateTime, utcnow
from kundo_gdpr.models.desk_indexes import address_search_index, key_indexes, text_search_index
from kundo_gdpr.vocabulary import CHANNELS

# The database holds the same words as kundo_gdpr.vocabulary ("kind IN ('mail', …)").
_KIND_IN = f"kind IN ({', '.join(repr(str(k)) for k in CHANNELS)})"


channel_editors = Table(
    "channel_editors",
    Base.metadata,
    Column("channel_id", ForeignKey("channels.id", ondelete="CASCADE"), primary_key=True),
    Column("editor_id", ForeignKey("editors.id", ondelete="CASCADE"), primary_key=True),
)


class Organization(Base):
    __tablename__ = "organizations"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    slug: Mapped[str] = mapped_column(String(100), unique=True)
    language: Mapped[str] = mapped_column(String(2), default="sv")

    channels: Mapped[list[Channel]] = relationship(back_populates="organization")


class Channel(Base):
    __tablename__ = "channels"
    __table_args__ = (CheckConstraint(_KIND_IN, name="kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(10))
    name: Mapped[str] = mapped_column(String(200))

    organization: Mapped[Organization] = relationship(back_populates="channels")
    editors: Mapped[list[Editor]] = relationship(
        secondary=channel_editors, back_populates="channels"
    )


class Editor(Base):
    __tablename__ = "editors"
    __table_args__ = (Index("ix_editors_email_lower", func.lower(Column("email")), unique=True),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(320))

    channels: Mapped[list[Channel]] = relationship(
        secondary=channel_editors, back_populates="editors"
    )


class ForumPost(Base):
    """A forum post. An opening post has topic_id NULL; replies point at it."""

    __tablename__ = "forum_posts"
    __table_args__ = (
        *key_indexes("forum_posts", ("author_email", "author_key"), item=True),
        text_search_index("forum_posts", "title"),
        text_search_index("forum_posts", "body"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    channel_id: Mapped[int] = mapped_column(
        ForeignKey("channels.id", ondelete="CASCADE"), index=True
    )
    topic_id: Mapped[int | None] = mapped_column(
        ForeignKey("forum_posts.id", ondelete="CASCADE"), index=True
    )
    # Indexed: deleting a post sets its children's parent_id to NULL, which
    # without an index scans every post of the desk once per deleted post.
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("forum_posts.id", ondelete="SET NULL"), index=True
    )
    author_name: Mapped[str | None] = mapped_column(String(200))
    author_email: Mapped[str | None] = mapped_column(String(320))
    author_key: Mapped[str | None] = mapped_column(String(KEY_LENGTH))
    author_ip: Mapped[str | None] = mapped_column(String(45))
    title: Mapped[str | None] = mapped_column(String(500))
    body: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)

    @validates("author_email")
    def _author_key(self, _name: str, value: str | None) -> str | None:
        self.author_key = address_key(value)
        return value


class MailConversation(Base):
    __tablename__ = "mail_conversations"
    __table_args__ = (
        *key_indexes("mail_conversations", ("customer_email", "customer_key"), item=True),
        text_search_index("mail_conversations", "subject"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    channel_id: Mapped[int] = mapped_column(
        ForeignKey("channels.id", ondelete="CASCADE"), index=True
    )
    customer_name: Mapped[str | None] = mapped_column(String(200))
    customer_email: Mapped[str | None] = mapped_column(String(320))
    customer_key: Mapped[str | None] = mapped_column(String(KEY_LENGTH))
    subject: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)

    @validates("customer_email")
    def _customer_key(self, _name: str, value: str | None) -> str | None:
        self.customer_key = address_key(value)
        return value


class MailMessage(Base):
    __tablename__ = "mail_messages"
    __table_args__ = (
        CheckConstraint("direction IN ('in', 'out')", name="direction"),
        *key_indexes("mail_messages", ("from_addr", "from_key"), ("to_addr", "to_key")),
        address_search_index("mail_messages", "from_addr", "from_key"),
        address_search_index("mail_messages", "to_addr", "to_key"),
        text_search_index("mail_messages", "body"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("mail_conversations.id", ondelete="CASCADE"), index=True
    )
    direction: Mapped[str] = mapped_column(String(3))
    from_addr: Mapped[str | None] = mapped_column(String(320))
    to_addr: Mapped[str | None] = mapped_column(String(320))
    from_key: Mapped[str | None] = mapped_column(String(KEY_LENGTH))
    to_key: Mapped[str | None] = mapped_column(String(KEY_LENGTH))
    body: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)

    @validates("from_addr", "to_addr")
    def _keys(self, name: str, value: str | None) -> str | None:
        setattr(self, "from_key" if name == "from_addr" else "to_key", address_key(value))
        return value


class ChatSession(Base):
    __tablename__ = "chat_sessions"
    __table_args__ = (
        *key_indexes("chat_sessions", ("visitor_email", "visitor_key"), item=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    channel_id: Mapped[int] = mapped_column(
        ForeignKey("channels.id", ondelete="CASCADE"), index=True
    )
    visitor_name: Mapped[str | None] = mapped_column(String(200))
    visitor_email: Mapped[str | None] = mapped_column(String(320))
    visitor_key: Mapped[str | None] = mapped_column(String(KEY_LENGTH))
    visitor_ip: Mapped[str | None] = mapped_column(String(45))
    started_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)

    @validates("visitor_email")
    def _visitor_key(self, _name: str, value: str | None) -> str | None:
        self.visitor_key = address_key(value)
        return value


class ChatMessage(Base):
    """A chat message. In a chat with several visitors, `sender_email` says
    which visitor wrote it; NULL is the session's visitor."""

    __tablename__ = "chat_messages"
    __table_args__ = (
        CheckConstraint("sender IN ('visitor', 'agent')", name="sender"),
        text_search_index("chat_messages", "body"),
        *key_indexes("chat_messages", ("sender_email", "sender_key")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(
        ForeignKey("chat_sessions.id", ondelete="CASCADE"), index=True
    )
    sender: Mapped[str] = mapped_column(String(10))
    sender_email: Mapped[str | None] = mapped_column(String(320))
    sender_key: Mapped[str | None] = mapped_column(String(KEY_LENGTH))
    body: Mapped[str] = mapped_column(Text, default="")
    sent_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)

    @validates("sender_email")
    def _sender_key(self, _name: str, value: str | None) -> str | None:
        self.sender_key = address_key(value)
        return value


class Attachment(Base):
    """A file on exactly one item; it goes when its item goes (ON DELETE CASCADE)."""

    __tablename__ = "attachments"
    __table_args__ = (
        CheckConstraint(
            "(CASE WHEN forum_post_id IS NULL THEN 0 ELSE 1 END"
            " + CASE WHEN mail_message_id IS NULL THEN 0 ELSE 1 END"
            " + CASE WHEN chat_message_id IS NULL THEN 0 ELSE 1 END) = 1",
            name="one_item",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    forum_post_id: Mapped[int | None] = mapped_column(
        ForeignKey("forum_posts.id", ondelete="CASCADE"), index=True
    )
    mail_message_id: Mapped[int | None] = mapped_column(
        ForeignKey("mail_messages.id", ondelete="CASCADE"), index=True
    )
    chat_message_id: Mapped[int | None] = mapped_column(
        ForeignKey("chat_messages.id", ondelete="CASCADE"), index=True
    )
    filename: Mapped[str] = mapped_column(String(500))
    content_type: Mapped[str] = mapped_column(String(200), default="application/octet-stream")
    data: Mapped[bytes] = mapped_column(LargeBinary)
    size: Mapped[int] = mapped_column(Integer, default=0)
