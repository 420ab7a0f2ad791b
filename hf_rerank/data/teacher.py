"""Teacher scores for distillation: which run teaches, read from a collection or a run file.

A teacher is any scored run, ``{qid: {pid: score}}`` with higher = more relevant: a model's scores
over a collection's candidates (``hf-rerank score``), a fusion of first-stage runs
(``hf-rerank fuse``), or scores shipped with a dataset (a run of the collection, e.g. ``teacher``
from a FlagEmbedding file with ``pos_scores``/``neg_scores``). Scores are used as they are: per-query
normalisation, temperature and scale are the loss's options (:mod:`hf_rerank.losses`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from hf_rerank.data.collection import IRCollection
from hf_rerank.data.formats import Run, read_run
from hf_rerank.errors import DataError, MissingFileError, UsageError


@dataclass(frozen=True)
class Teacher:
    """The merged teacher run and where each part came from.

    Attributes:
        run: ``{qid: {pid: score}}``.
        sources: one ``{"source", "queries", "passages"}`` per reference given, for metrics.json
            and the model card (``source`` is the run name or file path as given).
    """

    run: Run
    sources: list[dict]

    def record(self, *, depth: int | None, group_size: int, groups_per_query: int) -> dict:
        """What metrics.json and the model card say about the teacher: ``{"sources", "candidates",
        "group_size", "groups_per_query"}``, given how :func:`~hf_rerank.data.examples.make_teacher_groups`
        drew the lists."""
        candidates = "each query's teacher-scored passages" + ("" if depth is None else f", the teacher's top {depth}")
        return {
            "sources": self.sources,
            "candidates": candidates,
            "group_size": group_size,
            "groups_per_query": groups_per_query,
        }


def load_teacher(references: Sequence[str], collection: IRCollection) -> Teacher:
    """Read and merge the teacher runs named by ``references``.

    Args:
        references: each the path of a TREC run file or a run name of ``collection``
            (``runs/NAME.run`` of a directory, a dataset's ``teacher`` run), as
            :func:`load_runs` reads them.
        collection: the training collection (for run names).
    Returns:
        the :class:`Teacher`. Raises ``ValueError`` when a reference is neither a run of the
        collection nor a file, or when two references score the same query (each query needs one
        teacher); a malformed file raises the reader's ``DataFormatError`` naming its line.
    """
    if isinstance(references, str):
        raise TypeError(f"teacher must be a list of run names or files, got the string {references!r}")
    merged: Run = {}
    owner: dict[str, str] = {}
    sources = []
    for reference, run in load_runs(references, collection, option="--teacher").items():
        clash = [qid for qid in run if qid in owner]
        if clash:
            raise DataError(
                f"teacher {reference!r} scores query {clash[0]!r}, which {owner[clash[0]]!r} scores too; "
                "give each query one teacher"
            )
        for qid, scored in run.items():
            owner[qid] = reference
            merged[qid] = dict(scored)
        sources.append({"source": reference, "queries": len(run), "passages": sum(map(len, run.values()))})
    if not merged:
        raise DataError("no teacher scores: the teacher runs given are empty")
    return Teacher(merged, sources)


def load_runs(
    specs: Sequence[str], collection: IRCollection | None = None, *, option: str = "--runs"
) -> dict[str, Run]:
    """``{spec: run}`` for run names of ``collection`` or paths to TREC run files.

    A spec naming an existing file is read as a run file (:func:`~hf_rerank.data.formats.read_run`);
    any other spec is the name of one of ``collection``'s runs. ``option`` words the errors:
    a spec given twice, a name with no collection to look it up in, a run the collection lacks.
    """
    runs: dict[str, Run] = {}
    for spec in specs:
        if spec in runs:
            raise UsageError(f"{option}: {spec!r} is given twice")
        if Path(spec).is_file():
            runs[spec] = read_run(spec)
        elif collection is None:
            raise MissingFileError(f"{option} {spec}: no such run file (a run name needs --data to look it up in)")
        else:
            runs[spec] = collection.run(spec)
    return runs
