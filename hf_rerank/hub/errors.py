"""The errors of :mod:`hf_rerank.hub`: a card that cannot be made, a publication that stopped, a refused token.

Each is an :class:`~hf_rerank.errors.HfRerankError` (``hf-rerank`` prints it as one line) and also the
built-in type callers have always caught (``ValueError`` for cards, ``RuntimeError`` for publishing).
"""

from __future__ import annotations

from hf_rerank.errors import HfRerankError


class CardError(HfRerankError, ValueError):
    """A run directory a card cannot be made from (the message says what is missing)."""


class PublishError(HfRerankError, RuntimeError):
    """Publishing stopped; the message says why and what to do."""


class HubAuthError(PublishError):
    """No token, or the Hub refused it."""
