"""``IRCollection``: queries, a corpus, graded qrels and first-stage runs, ids as strings.

On disk a collection is a directory in the layout of the TREC Deep Learning track's files::

    DIR/queries.tsv       qid<TAB>query           (or queries.jsonl, BEIR style)
    DIR/collection.tsv    pid<TAB>passage         (or corpus.jsonl, BEIR style)
    DIR/qrels.txt         qid 0 pid grade         (optional for training-only data)
    DIR/runs/NAME.run     qid Q0 pid rank score tag  (zero or more first-stage runs)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from hf_rerank.data.formats import (
    Qrels,
    Run,
    read_qrels,
    read_run,
    read_texts,
    write_qrels,
    write_run,
    write_tsv,
)
from hf_rerank.errors import DataError, MissingFileError, UnknownNameError, UsageError

logger = logging.getLogger("hf_rerank")

QUERY_FILES = ("queries.tsv", "queries.jsonl")
CORPUS_FILES = ("collection.tsv", "corpus.jsonl", "corpus.tsv")


@dataclass
class Candidates:
    """The top-k of one run, ready to score.

    ``pairs`` lists ``(qid, pid)`` in run order (per query, rank order); ``skipped`` counts
    candidates left out because their passage has no text; ``queries_without_text`` lists
    run queries missing from the queries file (left out).
    """

    pairs: list[tuple[str, str]]
    skipped: int = 0
    queries_without_text: list[str] = field(default_factory=list)


@dataclass
class IRCollection:
    """An IR test (or training) collection.

    Attributes:
        name: a label used in reports (the directory name by default).
        queries: ``{qid: text}``.
        corpus: ``{pid: text}``.
        qrels: ``{qid: {pid: grade}}``, integer grades (TREC DL: 0..3).
        runs: ``{run_name: {qid: {pid: score}}}``, each query's passages in rank order.
        sources: ``{what: "path"}`` for error messages (e.g. ``{"run:bm25": ".../bm25.run"}``).
    """

    name: str
    queries: dict[str, str]
    corpus: dict[str, str]
    qrels: Qrels = field(default_factory=dict)
    runs: dict[str, Run] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_dir(cls, directory: str | Path, name: str | None = None) -> IRCollection:
        """Read a collection directory (layout in the module docstring)."""
        directory = Path(directory)
        if not directory.is_dir():
            raise MissingFileError(
                f"{directory}: not a directory (expected queries.tsv, collection.tsv, qrels.txt, runs/)"
            )
        queries_path = _first_existing(directory, QUERY_FILES)
        corpus_path = _first_existing(directory, CORPUS_FILES)
        sources = {"queries": str(queries_path), "corpus": str(corpus_path)}
        queries = read_texts(queries_path, kind="query")
        corpus = read_texts(corpus_path, kind="passage")
        qrels: Qrels = {}
        if (directory / "qrels.txt").is_file():
            qrels = read_qrels(directory / "qrels.txt")
            sources["qrels"] = str(directory / "qrels.txt")
        runs: dict[str, Run] = {}
        for run_path in sorted((directory / "runs").glob("*.run")):
            runs[run_path.stem] = read_run(run_path)
            sources[f"run:{run_path.stem}"] = str(run_path)
        return cls(name or directory.name, queries, corpus, qrels, runs, sources)

    def to_dir(self, directory: str | Path) -> Path:
        """Write the collection in the directory layout (TSV texts); every file atomically."""
        directory = Path(directory)
        write_tsv(directory / "queries.tsv", self.queries)
        write_tsv(directory / "collection.tsv", self.corpus)
        if self.qrels:
            write_qrels(directory / "qrels.txt", self.qrels)
        for run_name, run in self.runs.items():
            write_run(directory / "runs" / f"{run_name}.run", run, tag=run_name)
        return directory

    def subset(self, qids: list[str], name: str) -> IRCollection:
        """The same corpus with only the queries ``qids`` (and their qrels and run entries)."""
        unknown = [qid for qid in qids if qid not in self.queries]
        if unknown:
            raise UnknownNameError(f"collection {self.name!r} has no queries {', '.join(unknown[:10])}")
        keep = set(qids)
        return IRCollection(
            name,
            {qid: text for qid, text in self.queries.items() if qid in keep},
            self.corpus,
            {qid: judged for qid, judged in self.qrels.items() if qid in keep},
            {
                run_name: {qid: scored for qid, scored in run.items() if qid in keep}
                for run_name, run in self.runs.items()
            },
            self.sources,
        )

    @classmethod
    def union(cls, *collections: IRCollection, name: str | None = None) -> IRCollection:
        """One collection holding all of ``collections`` (e.g. DL19 + DL20, to retrieve over both corpora).

        - corpus: every passage; a pid in several collections must have the same text there.
        - queries, qrels: every query; a qid in the queries (or qrels) of two collections is an error,
          since the union would have to pick one text (or one set of judgments).
        - runs: runs with the same name are combined query by query; a qid in the same-named run of
          two collections is an error.
        - sources: each key's distinct paths joined with ``" + "``; name: the names joined with ``+``.

        Raises:
            ValueError: no collections, or a conflict; the message names the id and both collections.
        """
        if not collections:
            raise ValueError("the union of no collections is undefined; pass at least one")
        queries: dict[str, str] = {}
        corpus: dict[str, str] = {}
        qrels: Qrels = {}
        runs: dict[str, Run] = {}
        sources: dict[str, list[str]] = {}
        owners: dict[tuple[str, str], IRCollection] = {}  # (what, id) -> the collection it came from

        def claim(what: str, key: str, collection: IRCollection, source: str) -> None:
            if (what, key) in owners:
                first = owners[what, key]
                raise DataError(
                    f"{what} {key!r} is in both {first.name!r} ({first.sources.get(source, 'in memory')}) and "
                    f"{collection.name!r} ({collection.sources.get(source, 'in memory')}); a union needs disjoint ids"
                )
            owners[what, key] = collection

        for collection in collections:
            for pid, text in collection.corpus.items():
                if pid in corpus and corpus[pid] != text:
                    first = owners["passage", pid]
                    raise DataError(
                        f"passage {pid!r} has different texts in {first.name!r} "
                        f"({first.sources.get('corpus', 'in memory')}) "
                        f"and {collection.name!r} ({collection.sources.get('corpus', 'in memory')}): "
                        f"{corpus[pid][:60]!r} vs {text[:60]!r}"
                    )
                owners.setdefault(("passage", pid), collection)
                corpus[pid] = text
            for qid, text in collection.queries.items():
                claim("query", qid, collection, "queries")
                queries[qid] = text
            for qid, judged in collection.qrels.items():
                claim("judged query", qid, collection, "qrels")
                qrels[qid] = judged
            for run_name, run in collection.runs.items():
                for qid, scored in run.items():
                    claim(f"query of run {run_name!r}", qid, collection, f"run:{run_name}")
                    runs.setdefault(run_name, {})[qid] = scored
            for key, path in collection.sources.items():
                if path not in sources.setdefault(key, []):
                    sources[key].append(path)
        name = name or "+".join(collection.name for collection in collections)
        return cls(name, queries, corpus, qrels, runs, {key: " + ".join(paths) for key, paths in sources.items()})

    def run(self, name: str) -> Run:
        """The run called ``name``, or a KeyError listing the runs there are."""
        if name not in self.runs:
            available = ", ".join(sorted(self.runs)) or "none"
            raise UnknownNameError(f"collection {self.name!r} has no run {name!r} (runs: {available})")
        return self.runs[name]

    def candidates(self, run_name: str, depth: int) -> Candidates:
        """The top-``depth`` ``(qid, pid)`` pairs of a run that can be scored.

        Pairs whose passage has no text in the corpus are left out and counted, with one
        warning; so are queries with no text (reranking keeps both in first-stage order).
        """
        if depth < 1:
            raise UsageError(f"depth must be >= 1, got {depth}")
        pairs: list[tuple[str, str]] = []
        skipped, no_text = 0, []
        missing_example = None
        for qid, scored in self.run(run_name).items():
            if qid not in self.queries:
                no_text.append(qid)
                continue
            for pid in list(scored)[:depth]:
                if pid in self.corpus:
                    pairs.append((qid, pid))
                else:
                    skipped += 1
                    missing_example = missing_example or (qid, pid)
        where = self.sources.get(f"run:{run_name}", run_name)
        if skipped:
            logger.warning(
                "%s: %d of the top-%d candidates name passages with no text in %s (first: query %s, passage %s); "
                "they cannot be scored",
                where,
                skipped,
                depth,
                self.sources.get("corpus", "the corpus"),
                *missing_example,
            )
        if no_text:
            logger.warning(
                "%s: %d queries have no text in %s and cannot be scored: %s",
                where,
                len(no_text),
                self.sources.get("queries", "the queries"),
                ", ".join(no_text[:10]),
            )
        return Candidates(pairs, skipped, no_text)


def _first_existing(directory: Path, names: tuple[str, ...]) -> Path:
    for name in names:
        if (directory / name).is_file():
            return directory / name
    raise MissingFileError(f"{directory}: none of {', '.join(names)} found")
