"""The one base class of every error hf-rerank raises about its user's input, files or environment.

``hf-rerank`` (:func:`hf_rerank.cli.main`) prints an :class:`HfRerankError` as one line,
``hf-rerank: error: <message>``, and exits with 2; anything else is a bug and keeps its traceback.
Subclasses also derive from the built-in type their callers have always caught (``ValueError``,
``RuntimeError``, ``FileNotFoundError``, ``KeyError``), so ``except ValueError`` around the library keeps working.
"""

from __future__ import annotations


class HfRerankError(Exception):
    """A problem the user can fix; the message names the file, line or setting and what to do."""


class UsageError(HfRerankError, ValueError):
    """An argument, setting or combination of them that hf-rerank cannot honour."""


class DataError(HfRerankError, ValueError):
    """Data the user gave (a collection, run, qrels, teacher or negatives) that cannot serve the request:
    empty, disjoint from what it must match, or inconsistent with itself."""


class MissingFileError(HfRerankError, FileNotFoundError):
    """A file or directory the user named (or one a directory they named must hold) does not exist."""


class UnknownNameError(HfRerankError, KeyError):
    """A name or id the user gave, or their data refers to (a run, a query, a passage), that the data does not hold.

    Unlike a plain ``KeyError``, ``str()`` is the message itself, not its quoted repr.
    """

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class OutputExistsError(HfRerankError, FileExistsError):
    """An output the user named already holds something a run would mix with or overwrite."""


class DiskSpaceError(HfRerankError, OSError):
    """The disk of an output the user named has too little free space for what the run will write."""
