"""Evaluate a first-stage run and its reranking by a model: numbers, significance, table, files.

This is what ``hf-rerank evaluate`` runs and what training callbacks call. The JSON written
to ``metrics.json`` (keys other tools read)::

    {"metrics": {"ndcg@10": ..., ...},          # reranked (or the first stage when no model)
     "first_stage": {"ndcg@10": ..., ...},
     "significance": {"ndcg@10": {"delta": ..., "p_t_test": ..., "p_randomisation": ...}, ...},
     "per_query": {"ndcg@10": {qid: ...}, ...},
     "model": ..., "run": ..., "data": ..., "depth": ..., "metric_set": ..., "convention": ...,
     "queries": ..., "pairs": ..., "pairs_per_second": ..., "wall_seconds": ...}
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from hf_rerank.data.collection import IRCollection
from hf_rerank.data.formats import Run, atomic_write, staged_directory, write_run
from hf_rerank.evaluation.metrics import evaluate_run, get_metric_set
from hf_rerank.evaluation.rerank import rerank
from hf_rerank.evaluation.significance import ALPHA, compare
from hf_rerank.inference.scoring import NonFiniteScoresError, PairScorer


@dataclass
class EvaluationReport:
    """The result of :func:`evaluate_reranking`; ``to_json`` gives the ``metrics.json`` object."""

    metrics: dict[str, float]
    first_stage: dict[str, float]
    significance: dict[str, dict[str, float]]
    per_query: dict[str, dict[str, float]]
    model: str | None
    run: str
    data: str
    depth: int
    metric_set: str
    convention: str
    queries: int
    pairs: int
    pairs_per_second: float | None
    wall_seconds: float
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return asdict(self)

    def table(self) -> str:
        """A plain-text table: metric, first stage, reranked, delta, p-values, marks."""
        title = f"{self.data} / {self.run}" + (
            f" reranked top-{self.depth} by {self.model}" if self.model else f" (first stage, {self.queries} queries)"
        )
        lines = [title, f"convention ({self.metric_set}): {self.convention}"]
        if not self.model:
            width = max(len(name) for name in self.metrics)
            lines += [f"  {name:<{width}}  {value:.4f}" for name, value in self.metrics.items()]
            return "\n".join(lines)
        width = max(len(name) for name in self.metrics) + 2
        lines.append(
            f"  {'metric':<{width}} {'first stage':>11} {'reranked':>10} {'delta':>8} {'p (t)':>8} {'p (rand)':>8}"
        )
        for name, value in self.metrics.items():
            test = self.significance[name]
            mark = ("▲" if test["delta"] > 0 else "▼") if test["p_t_test"] < ALPHA else " "
            lines.append(
                f"  {name:<{width}} {self.first_stage[name]:>11.4f} {value:>9.4f}{mark} {test['delta']:>+8.4f}"
                f" {test['p_t_test']:>8.4f} {test['p_randomisation']:>8.4f}"
            )
        lines.append(
            f"  ▲/▼: paired t-test p < {ALPHA} against the first stage over {self.queries} queries; "
            "p (rand): Fisher's randomisation test, 10,000 sign flips"
        )
        if self.pairs_per_second:
            lines.append(
                f"  {self.pairs} pairs scored at {self.pairs_per_second:.1f} pairs/s; "
                f"wall time {self.wall_seconds:.1f} s"
            )
        return "\n".join(lines)


def evaluate_reranking(
    collection: IRCollection,
    run_name: str,
    model: PairScorer | None = None,
    *,
    model_name: str | None = None,
    depth: int = 100,
    metric_set: str = "trec-dl",
    batch_size: int = 64,
    show_progress: bool = True,
) -> tuple[EvaluationReport, Run]:
    """Score ``collection.runs[run_name]`` and, with a model, its top-``depth`` reranked.

    The first stage is evaluated whole; the reranked run holds the same candidates (the top-``depth``
    in the model's order, then the rest in first-stage order), so every metric compares like with
    like. Returns the report and the evaluated run (the reranked one when a model is given, else
    the first stage).
    """
    started = time.perf_counter()
    metrics = get_metric_set(metric_set)
    first_run = collection.run(run_name)
    first = evaluate_run(collection.qrels, first_run, metrics)
    warnings = list(first.warnings)
    if model is None:
        final, final_run, pairs, speed, significance = first, first_run, 0, None, {}
    else:
        try:
            result = rerank(
                collection, run_name, model, depth=depth, batch_size=batch_size, show_progress=show_progress
            )
        except NonFiniteScoresError as error:
            raise NonFiniteScoresError(f"{model_name or 'the model'}: {error}; nothing was written") from None
        final = evaluate_run(collection.qrels, result.run, metrics)
        final_run, pairs, speed = result.run, result.pairs, result.pairs_per_second
        warnings += [w for w in final.warnings + result.warnings if w not in warnings]
        significance = {}
        for name in metrics.metrics:
            baseline, system = first.per_query[name], {"reranked": final.per_query[name]}
            t_test = compare(baseline, system, test="t-test")["reranked"]
            randomised = compare(baseline, system, test="randomisation")["reranked"]
            significance[name] = {
                "delta": t_test.delta,
                "p_t_test": t_test.p_value,
                "p_randomisation": randomised.p_value,
            }
    report = EvaluationReport(
        metrics=final.means,
        first_stage=first.means,
        significance=significance,
        per_query=final.per_query,
        model=model_name,
        run=run_name,
        data=collection.name,
        depth=depth,
        metric_set=metrics.name,
        convention=metrics.convention,
        queries=len(final.queries),
        pairs=pairs,
        pairs_per_second=speed,
        wall_seconds=time.perf_counter() - started,
        warnings=warnings,
    )
    return report, final_run


def write_report(report: EvaluationReport, run: Run, output_dir: str | Path) -> Path:
    """Write ``output_dir/metrics.json`` and ``output_dir/run.trec`` as one unit: both are written
    into a temporary directory beside ``output_dir``, which then replaces it
    (:func:`~hf_rerank.data.formats.replace_directory`), so a reader, or a run killed meanwhile,
    finds both new files or both old ones, never one of each. Anything else in ``output_dir`` is
    kept."""
    output_dir = Path(output_dir)
    with staged_directory(output_dir) as staging:
        write_run(staging / "run.trec", run, tag=(report.model or report.run).replace(" ", "_").replace("/", "_"))
        with atomic_write(staging / "metrics.json") as handle:
            json.dump(report.to_json(), handle, indent=2)
            handle.write("\n")
    return output_dir
