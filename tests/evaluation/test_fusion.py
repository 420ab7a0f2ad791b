"""Fusions of runs with ranx: sums by hand, ties read in trec_eval's order, options checked, normalisation."""

import pytest

from hf_rerank.evaluation.fusion import fuse_runs, normalise_run

# Two runs over two queries; "007" and "7" are different passages (ids stay strings).
RUN_A = {"q1": {"d1": 3.0, "d2": 2.0, "007": 1.0}, "q2": {"d1": 0.5, "d4": 0.2}}
RUN_B = {"q1": {"d2": 10.0, "7": 5.0, "007": 0.0}, "q2": {"d4": 1.0, "d1": 0.0, "d5": -1.0}}


def test_wsum_of_min_max_scores_by_hand():
    fused = fuse_runs({"a": RUN_A, "b": RUN_B}, method="wsum", norm="min-max", weights=[0.7, 0.3])
    # min-max per query: A q1 d1 1, d2 .5, 007 0; B q1 d2 1, 7 .5, 007 0; A q2 d1 1, d4 0; B q2 d4 1, d1 .5, d5 0
    expected = {
        "q1": {"d1": 0.7, "d2": 0.7 * 0.5 + 0.3 * 1, "7": 0.3 * 0.5, "007": 0.0},
        "q2": {"d1": 0.7 + 0.3 * 0.5, "d4": 0.3, "d5": 0.0},
    }
    assert list(fused) == ["q1", "q2"]
    for qid, scores in expected.items():
        assert list(fused[qid]) == list(scores)  # best first
        assert fused[qid] == pytest.approx(scores, abs=1e-12)
    equal = fuse_runs({"a": RUN_A, "b": RUN_B}, method="wsum", norm="min-max")  # default weights 1/2 each
    assert equal["q2"] == pytest.approx({"d1": 0.75, "d4": 0.5, "d5": 0.0}, abs=1e-12)


def test_rank_based_fusion_reads_tied_scores_in_trec_order():
    # trec_eval reads run a's tie as b (rank 1), then a (rank 2): passage id descending
    tied = {"q": {"a": 1.0, "b": 1.0, "c": 0.5}}
    other = {"q": {"c": 2.0}}
    fused = fuse_runs({"tied": tied, "other": other}, method="rrf", norm="none", rrf_k=10)
    assert fused["q"] == pytest.approx({"c": 1 / 13 + 1 / 11, "b": 1 / 11, "a": 1 / 12}, abs=1e-12)
    assert list(fused["q"]) == ["c", "b", "a"]
    summed = fuse_runs({"tied": tied, "other": other}, method="combsum", norm="max")  # CombSUM of max-normalised
    assert summed["q"] == pytest.approx({"c": 1.5, "b": 1.0, "a": 1.0}, abs=1e-12)


@pytest.mark.parametrize(
    "options, problem",
    [
        ({"method": "nope"}, "unknown fusion method 'nope'"),
        ({"norm": "nope"}, "unknown normalisation 'nope'"),
        ({"weights": [1.0]}, "--weights: 1 weights for 2 runs"),
        ({"weights": [1.0, float("nan")]}, "every weight must be a finite number"),
        ({"method": "rrf", "weights": [1.0, 1.0]}, "method 'rrf' takes no weights"),
        ({"rrf_k": 5}, "--rrf-k: only method 'rrf' takes k"),
        ({"method": "rrf", "rrf_k": 0}, "--rrf-k must be >= 1"),
    ],
)
def test_fusion_options_are_checked(options, problem):
    with pytest.raises(ValueError, match=problem):
        fuse_runs({"a": RUN_A, "b": RUN_B}, **options)


def test_fusion_needs_two_runs_over_the_same_queries():
    with pytest.raises(ValueError, match="at least two runs, got 1: a"):
        fuse_runs({"a": RUN_A})
    with pytest.raises(
        ValueError, match=r"runs a and c cover different queries \(1 only in a, 0 only in c, e.g. 'q2'\)"
    ):
        fuse_runs({"a": RUN_A, "b": RUN_B, "c": {"q1": RUN_B["q1"]}})


def test_normalise_run_min_max_by_hand_and_refusals():
    run = {"q1": {"p1": 0.2, "p2": 0.6, "p3": -0.4}, "q2": {"x": 1.0, "y": 3.0}}
    # q1: (s + 0.4) / 1.0; q2: (s - 1) / 2
    assert normalise_run(run) == {"q1": {"p2": 1.0, "p1": pytest.approx(0.6), "p3": 0.0}, "q2": {"y": 1.0, "x": 0.0}}
    with pytest.raises(ValueError, match="normalisation 'borda' cannot apply to one run"):
        normalise_run(run, "borda")
    with pytest.raises(ValueError, match="query 'q3' has no passages"):
        normalise_run({"q3": {}})
