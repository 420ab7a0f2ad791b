"""A run record -> the evaluation sections of its model card: one table per evaluation name (against
the first stage, and the base model when tested), the paragraph saying how it was run, the headline.

Returns plain data for the templates; values are exactly the record's, formatted by
:mod:`hf_rerank.hub.formatting`.
"""

from __future__ import annotations

from hf_rerank.evaluation.significance import ALPHA
from hf_rerank.hub.formatting import (
    display_reference,
    known,
    mark,
    number,
    p_value,
    signed,
    verdict,
)
from hf_rerank.training.record import EvalProtocol, RunRecord


def protocol_text(protocol: EvalProtocol, has_first_stage: bool, base_tested: bool) -> str:
    """One paragraph saying how an evaluation was run (first stage, depth, qrels, convention, tests)."""
    queries = f"{protocol.queries} judged queries" if protocol.queries else "its judged queries"
    data = display_reference(protocol.data)
    if protocol.run is not None:
        text = (
            f"Reranks the top-{known(protocol.depth)} candidates of the `{protocol.run}` first-stage run on "
            f"{data}, {queries}; candidates below rank {known(protocol.depth)} keep their first-stage order, "
            "so the reranked run holds the same passages as the first stage."
        )
    else:
        corpus = protocol.corpus_passages
        text = (
            f"Dense retrieval ({protocol.search or 'exact'} search) of the top-{known(protocol.k)} passages "
            f"for {queries} of {data}" + (f" over a corpus of {corpus:,} passages." if corpus else ".")
        )
    if protocol.metric_set:
        text += f" Metric set `{protocol.metric_set}`: {(protocol.convention or '').strip()}"
    tests = []
    if has_first_stage:
        tests.append("the first stage")
    if base_tested:
        tests.append("the base model")
    if tests:
        text += (
            " Significance: two-sided paired t-test and Fisher's randomisation test (10,000 sign flips) on "
            f"per-query scores, against {' and '.join(tests)}; each p-value is for its own comparison, not "
            f"corrected for the other metrics or models; ▲/▼ mark t-test p < {ALPHA}."
        )
    return text


def evaluation_sections(record: RunRecord) -> list[dict]:
    """One section per evaluation name: name, title, protocol paragraph, table header and rows, and
    where the base-model column comes from (``base_source``, ``base_label``)."""
    sections = []
    for name, values in record.eval.items():
        protocol = record.protocol(name)
        first = record.first_stage.get(name) or {}
        significance = record.significance.get(name) or {}
        before = record.before_training.get(name) or {}
        comparison = (record.base_comparison or {}).get(name)
        base_means, base_tests, base_name = (
            (
                comparison["metrics"],
                {
                    m: (t.get("delta"), t.get("p_t_test"), t.get("p_randomisation"))
                    for m, t in comparison["significance"].items()
                },
                comparison["model"],
            )
            if comparison
            else (before, {}, None)
        )
        base_source = (
            "the untrained base model"
            + (f" ({display_reference(base_name)})" if base_name else "")
            + " on the same candidates, used as it is without fine-tuning (per-query scores)"
            if comparison
            else "the model at step 0, evaluated before any update (means only: no per-query scores, so no test)"
            if before
            else None
        )
        base_label = "base model" if comparison else "before fine-tuning"
        header = ["metric"]
        if first:
            header.append(f"{protocol.run or 'first stage'} (first stage)")
        if base_source:
            header.append(base_label)
        header.append("this model")
        if first:
            header += ["Δ vs first stage", "p t-test / rand."]
        if base_tests:
            header += ["Δ vs base", "p t-test / rand."]
        rows = []
        for metric, value in values.items():
            test = significance.get(metric) or {}
            row = [metric]
            if first:
                row.append(number(first.get(metric)))
            if base_source:
                row.append(number(base_means.get(metric)))
            row.append(f"**{number(value)}**")
            if first:
                row += [
                    signed(test.get("delta")) + mark(test.get("delta"), test.get("p_t_test")),
                    f"{p_value(test.get('p_t_test'))} / {p_value(test.get('p_randomisation'))}",
                ]
            if base_tests:
                delta, p_t, p_rand = base_tests.get(metric, (None, None, None))
                row += [signed(delta) + mark(delta, p_t), f"{p_value(p_t)} / {p_value(p_rand)}"]
            rows.append(row)
        sections.append(
            {
                "name": name,
                "title": f"{name}: "
                + (
                    f"reranking {protocol.run} top-{known(protocol.depth)}"
                    if protocol.run is not None
                    else f"dense retrieval, top-{known(protocol.k)}"
                    if protocol.k is not None
                    else "evaluation"
                ),
                "protocol": protocol_text(protocol, bool(first), bool(base_tests)),
                "header": header,
                "rows": rows,
                "base_source": base_source,
                "base_label": base_label,
                "base_test": {
                    metric: (base_means.get(metric), delta, p_t) for metric, (delta, p_t, _) in base_tests.items()
                },
            }
        )
    return sections


def headline(record: RunRecord, sections: list[dict]) -> str:
    """The first evaluation's first metric against the first stage and, when tested, the base model."""
    section = sections[0]
    name = section["name"]
    metric, value = next(iter(record.eval[name].items()))
    first = (record.first_stage.get(name) or {}).get(metric)
    test = (record.significance.get(name) or {}).get(metric)
    text = f"On {name} it scores {metric} {value:.4f}"
    if first is not None and test:
        text += (
            f", {verdict(test['delta'], test['p_t_test'])} the first stage ({first:.4f}; Δ {test['delta']:+.4f}, "
            f"paired t-test p {p_value(test['p_t_test'])})"
        )
    if section["base_test"].get(metric):
        base, delta, p_t = section["base_test"][metric]
        text += f"; {verdict(delta, p_t)} the base model ({base:.4f}; Δ {delta:+.4f}, p {p_value(p_t)})"
    return text + "."
