"""Mail out: rendering replies, the outbox, and the transports that deliver it."""
