"""The stages of a request, one module per arrow of the state machine.

fetch -> parse -> check -> confirm -> decide -> run -> deliver, and sweep for
what expires. Each stage claims one unit in a transaction, does its work and
commits the next state with its audit event and any reply; `driver` calls
them in turn and is the one place that catches broadly. See
docs/architecture.md.
"""
