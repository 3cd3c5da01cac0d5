"""All models, imported here so that Base.metadata knows every table."""

from kundo_gdpr.models.agents import Agent
from kundo_gdpr.models.base import Base, UtcDateTime, utcnow
from kundo_gdpr.models.confirmations import Confirmation
from kundo_gdpr.models.desk import (
    Attachment,
    Channel,
    ChatMessage,
    ChatSession,
    Editor,
    ForumPost,
    MailConversation,
    MailMessage,
    Organization,
    channel_editors,
)
from kundo_gdpr.models.operations import StageFailure, StageStat
from kundo_gdpr.models.queue import (
    Event,
    Export,
    InboundMail,
    OutboundMail,
    Request,
    RequestChannel,
    RequestSubject,
)
from kundo_gdpr.models.schedules import RetentionRule, RetentionRun
from kundo_gdpr.models.vault import LegalHold, UndoWindow, VaultBatch
from kundo_gdpr.models.web import FirstApproval, SigninFailure, WebSession

__all__ = [
    "Agent",
    "Attachment",
    "Base",
    "Channel",
    "ChatMessage",
    "ChatSession",
    "Confirmation",
    "Editor",
    "Event",
    "Export",
    "FirstApproval",
    "ForumPost",
    "InboundMail",
    "LegalHold",
    "MailConversation",
    "MailMessage",
    "Organization",
    "OutboundMail",
    "Request",
    "RequestChannel",
    "RequestSubject",
    "RetentionRule",
    "RetentionRun",
    "SigninFailure",
    "StageFailure",
    "StageStat",
    "UndoWindow",
    "UtcDateTime",
    "VaultBatch",
    "WebSession",
    "channel_editors",
    "utcnow",
]
