"""The one base class of every error hf-rerank raises about its user's input, files or environment.

``hf-rerank`` (:func:`hf_rerank.cli.main`) prints an :class:`HfRerankError` as one line,
``hf-rerank: error: <message>``, and exits with 2; anything else is a bug and keeps its traceback.
Subclasses also derive from the built-in type their callers have always caught (``ValueError``,
``RuntimeError``), so ``except ValueError`` around the library keeps working.
"""

from __future__ import annotations


class HfRerankError(Exception):
    """A problem the user can fix; the message names the file, line or setting and what to do."""


class UsageError(HfRerankError, ValueError):
    """An argument, setting or combination of them that hf-rerank cannot honour."""
