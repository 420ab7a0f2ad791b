"""training/base_comparison.py and ``hf-rerank evaluate --base-of``: the comparison with the base model is computed
when the base model is evaluated, stored in the run's metrics.json, and shown by the card without recomputation."""

from __future__ import annotations

import json
import shutil

import pytest

from hf_rerank.cli import main
from hf_rerank.errors import UsageError
from hf_rerank.evaluation.significance import compare_to_base
from hf_rerank.training.base_comparison import evaluation_matching, store_base_comparison
from hf_rerank.training.record import RunRecord
from tests.hub.conftest import eval_report, means, per_query, training_summary, write_json


def make_run(tmp_path, **extra):
    """A run directory: metrics.json with evaluation dl19 and its per-query scores in eval_dl19/."""
    run = tmp_path / "run"
    model, first = per_query(0.3), per_query(0.2)
    write_json(run / "metrics.json", training_summary(model, first, **extra))
    write_json(run / "eval_dl19" / "metrics.json", eval_report(model, first, str(run)))
    return run, model


def test_store_computes_from_both_per_query_scores_and_keeps_the_rest_of_the_record(tmp_path):
    run, model = make_run(tmp_path)
    before = RunRecord.load(run / "metrics.json")
    assert before.base_comparison is None
    base = per_query(0.25, jitter=0.03)
    record = store_base_comparison(run, "dl19", eval_report(base, per_query(0.2), "base/model"))
    expected = {"model": "base/model", "metrics": means(base), "significance": compare_to_base(base, model)}
    assert record.base_comparison == {"dl19": expected}
    assert RunRecord.load(run / "metrics.json") == record  # written, and what was written loads back the same
    assert record.eval == before.eval and record.optimizer == before.optimizer
    delta = expected["significance"]["ndcg@10"]["delta"]
    assert delta == pytest.approx(means(model)["ndcg@10"] - means(base)["ndcg@10"])


def test_store_refuses_an_unknown_evaluation_and_other_queries(tmp_path):
    run, _ = make_run(tmp_path)
    with pytest.raises(UsageError, match=r"no evaluation 'dl20' \(it has dl19\)"):
        store_base_comparison(run, "dl20", eval_report(per_query(0.25), per_query(0.2), "base"))
    other = {metric: {f"x{qid}": s for qid, s in scores.items()} for metric, scores in per_query(0.25).items()}
    with pytest.raises(UsageError, match=r"eval_dl19/metrics.json against the base model's evaluation"):
        store_base_comparison(run, "dl19", {"model": "base", "metrics": means(other), "per_query": other})
    assert RunRecord.load(run / "metrics.json").base_comparison is None  # nothing half-written


def test_the_evaluation_is_found_by_data_run_and_depth(tmp_path):
    run, _ = make_run(tmp_path)
    record = RunRecord.load(run / "metrics.json")
    data = record.eval_protocol["dl19"].data
    assert evaluation_matching(record, run, data=data, run="bm25", depth=100) == "dl19"
    with pytest.raises(UsageError, match=r"no evaluation of --data .* --depth 50; the run evaluated dl19: "):
        evaluation_matching(record, run, data=data, run="bm25", depth=50)
    with pytest.raises(UsageError, match="no evaluation"):
        evaluation_matching(record, run, data=data, run="tasb", depth=100)


def test_the_evaluation_is_found_by_resolved_path(tmp_path, monkeypatch):
    collection = tmp_path / "data" / "dl19"
    collection.mkdir(parents=True)
    run, _ = make_run(tmp_path)
    metrics = json.loads((run / "metrics.json").read_text())
    metrics["eval_protocol"]["dl19"]["data"] = str(collection)
    (run / "metrics.json").write_text(json.dumps(metrics))
    monkeypatch.chdir(tmp_path)
    record = RunRecord.load(run / "metrics.json")
    assert evaluation_matching(record, run, data="data/../data/dl19", run="bm25", depth=100) == "dl19"


@pytest.mark.slow
def test_evaluate_base_of_stores_what_the_card_shows(tmp_path, tiny_cross_encoder_dir, tiny_encoder_dir, capsys):
    """The "trained" model (a tiny cross-encoder) evaluated as a run's evaluation on the sample; then the base
    (a tiny bi-encoder) with --base-of: the record holds the comparison, the card shows it."""
    from hf_rerank.hub.render import write_model_card

    run = tmp_path / "run"
    shutil.copytree(tiny_cross_encoder_dir, run)
    evaluate = ["evaluate", "--data", "sample", "--run", "bm25", "--depth", "10", "--quiet"]
    assert main([*evaluate, "--model", str(tiny_cross_encoder_dir), "--output", str(run / "eval_sample")]) == 0
    model = json.loads((run / "eval_sample" / "metrics.json").read_text())
    summary = training_summary(model["per_query"], model["per_query"])
    summary.update(
        eval={"sample": model["metrics"]},
        first_stage={"sample": model["first_stage"]},
        significance={"sample": model["significance"]},
        before_training={},
        eval_protocol={"sample": {"data": "sample", "run": "bm25", "depth": 10, "metric_set": "trec-dl"}},
    )
    write_json(run / "metrics.json", summary)
    capsys.readouterr()

    assert main([*evaluate, "--base-of", str(run)]) == 2  # no --model
    assert "--base-of needs --model" in capsys.readouterr().err
    assert main([*evaluate[:-2], "20", "--quiet", "--model", str(tiny_encoder_dir), "--base-of", str(run)]) == 2
    assert "no evaluation of --data sample --run bm25 --depth 20; the run evaluated sample:" in capsys.readouterr().err

    assert main([*evaluate, "--model", str(tiny_encoder_dir), "--base-of", str(run)]) == 0
    assert f"stored the comparison with the base model in {run}/metrics.json (evaluation 'sample')" in (
        capsys.readouterr().out
    )
    comparison = RunRecord.load(run / "metrics.json").base_comparison["sample"]
    assert comparison["model"] == str(tiny_encoder_dir)
    for metric, test in comparison["significance"].items():
        assert test["delta"] == pytest.approx(model["metrics"][metric] - comparison["metrics"][metric], abs=1e-9)
        assert 0 <= test["p_t_test"] <= 1 and 0 <= test["p_randomisation"] <= 1
    card = write_model_card(run, kind="cross-encoder").read_text()
    assert "| Δ vs base |" in card
