"""Paired significance tests and Holm correction, on small hand-checkable examples."""

from __future__ import annotations

import dataclasses
from math import sqrt

import numpy as np
import pytest
from scipy import stats

from hf_rerank.evaluation.significance import (
    Comparison,
    compare,
    compare_to_base,
    holm,
    paired_t_test,
    randomisation_test,
)

A = [0.5, 0.7, 0.2, 0.9]
B = [0.4, 0.5, 0.3, 0.6]


def test_paired_t_test_by_hand():
    # d = A - B = [0.1, 0.2, -0.1, 0.3]; mean 0.125
    # squared deviations: 0.025^2 + 0.075^2 + 0.225^2 + 0.175^2 = 0.0875
    # s = sqrt(0.0875 / 3) = 0.170783; t = 0.125 / (s / sqrt(4)) = 1.463850, df = 3
    s = sqrt(0.0875 / 3)
    t = 0.125 / (s / sqrt(4))
    assert t == pytest.approx(1.463850, abs=1e-6)
    p_hand = 2 * stats.t.sf(t, df=3)
    assert paired_t_test(A, B) == pytest.approx(p_hand, rel=1e-9)
    assert paired_t_test(A, B) == pytest.approx(0.239443, abs=1e-6)
    assert paired_t_test(A, B) == pytest.approx(stats.ttest_rel(A, B).pvalue, rel=1e-12)
    assert paired_t_test(B, A) == pytest.approx(paired_t_test(A, B))  # two-sided
    assert type(paired_t_test(A, B)) is float


def test_paired_t_test_degenerate_differences():
    assert paired_t_test(A, A) == 1.0  # scipy gives nan here
    assert paired_t_test([1.0, 2.0, 3.0], [0.0, 1.0, 2.0]) == 0.0  # constant shift: t -> inf


@pytest.mark.parametrize(
    ("a", "b", "message"),
    [
        ([0.1, 0.2], [0.1], "differ in length"),
        ([0.1], [0.2], "at least 2"),
        ([0.1, float("nan")], [0.1, 0.2], "finite"),
        ([[0.1, 0.2]], [[0.1, 0.2]], "1-D"),
    ],
)
def test_paired_input_validation(a, b, message):
    with pytest.raises(ValueError, match=message):
        paired_t_test(a, b)
    with pytest.raises(ValueError, match=message):
        randomisation_test(a, b, n_permutations=10)


def test_randomisation_identical_systems():
    assert randomisation_test(A, A) == 1.0


def test_randomisation_exact_small_case():
    # d = [1, 1, 1]: of the 8 equally likely sign patterns only +++ and --- reach
    # |mean| >= 1, so the exact p is 2/8 = 0.25; 10,000 random patterns land near it.
    p = randomisation_test([1.0, 1.0, 1.0], [0.0, 0.0, 0.0], n_permutations=10_000, seed=0)
    assert p == pytest.approx(0.25, abs=0.02)


def test_randomisation_clearly_better_system():
    rng = np.random.default_rng(42)
    base = rng.uniform(0.2, 0.6, size=40)
    better = base + 0.15 + rng.normal(0.0, 0.02, size=40)
    p = randomisation_test(better, base, n_permutations=2_000)
    assert p == pytest.approx(1 / 2_001)  # no permutation reaches the observed mean
    assert randomisation_test(base, better, n_permutations=2_000) == p  # two-sided


def test_randomisation_is_seeded_and_reproducible():
    p1 = randomisation_test(A, B, n_permutations=5_000, seed=7)
    p2 = randomisation_test(A, B, n_permutations=5_000, seed=7)
    assert p1 == p2
    # d = [0.1, 0.2, -0.1, 0.3], |sum| = 0.5. A sign pattern negating magnitudes S of the
    # total 0.7 gives |0.7 - 2S| >= 0.5 iff S <= 0.1 or S >= 0.6: S in {0, 0.1, 0.1} and
    # their complements, 6 of the 16 patterns -> exact p = 0.375.
    assert p1 == pytest.approx(6 / 16, abs=0.02)
    assert randomisation_test(A, B, n_permutations=5_000, seed=8) != p1  # the seed matters
    with pytest.raises(ValueError, match="n_permutations"):
        randomisation_test(A, B, n_permutations=0)


def test_holm_worked_example():
    # sorted: 0.01 * 3 = 0.03; 0.03 * 2 = 0.06; 0.04 * 1 = 0.04 -> max(0.06, 0.04) = 0.06
    adjusted = holm({"a": 0.01, "b": 0.04, "c": 0.03})
    assert adjusted == pytest.approx({"a": 0.03, "b": 0.06, "c": 0.06})
    assert list(adjusted) == ["a", "b", "c"]


def test_holm_caps_at_one_and_edge_cases():
    assert holm({"a": 0.5, "b": 0.6}) == pytest.approx({"a": 1.0, "b": 1.0})
    assert holm({"only": 0.02}) == {"only": 0.02}
    assert holm({}) == {}
    with pytest.raises(ValueError, match="not in"):
        holm({"a": float("nan")})


def test_compare_t_test():
    baseline = {"19335": 0.4, "47923": 0.5, "1037798": 0.3, "1121402": 0.6}
    systems = {
        # same queries, different insertion order: pairing is by qid
        "good": {"1121402": 0.95, "1037798": 0.71, "47923": 0.88, "19335": 0.83},
        "same": dict(baseline),
    }
    result = compare(baseline, systems)
    assert list(result) == ["good", "same"]

    qids = sorted(baseline)
    p_good = paired_t_test([systems["good"][q] for q in qids], [baseline[q] for q in qids])
    good = result["good"]
    assert isinstance(good, Comparison)
    assert good.mean_baseline == pytest.approx(0.45)
    assert good.mean_system == pytest.approx((0.95 + 0.71 + 0.88 + 0.83) / 4)
    assert good.delta == pytest.approx(good.mean_system - 0.45)
    assert good.p_value == pytest.approx(p_good)
    assert good.p_holm == pytest.approx(2 * p_good)  # smallest of 2 -> times 2
    assert good.significant is (2 * p_good < 0.05)
    # d = [.41, .35, .43, .38] (sorted qids): mean .3925, s = .035, t = 22.4, p ~ 2e-4
    assert good.p_value == pytest.approx(2 * stats.t.sf(0.3925 / (0.035 / 2), df=3), rel=1e-6)
    assert good.significant

    same = result["same"]
    assert same.delta == 0.0 and same.p_value == 1.0 and same.p_holm == 1.0
    assert not same.significant
    dataclasses.asdict(good)  # plain dataclass


def test_compare_randomisation_and_errors():
    baseline = {"1": 0.1, "2": 0.2, "3": 0.3, "4": 0.4, "5": 0.5}
    better = {q: v + 0.3 for q, v in baseline.items()}
    result = compare(baseline, {"better": better}, test="randomisation", n_permutations=999, seed=1)
    # d = 0.3 on all 5 queries: exact p = 2 / 32; sampled close to it
    assert result["better"].p_value == pytest.approx(2 / 32, abs=0.03)
    assert result["better"].p_holm == result["better"].p_value  # one system: no correction

    with pytest.raises(ValueError, match="only in baseline"):
        compare(baseline, {"short": {"1": 0.1, "2": 0.2}})
    with pytest.raises(ValueError, match="unknown test"):
        compare(baseline, {"better": better}, test="wilcoxon")  # type: ignore[arg-type]
    assert compare(baseline, {}) == {}


def test_compare_to_base_tests_each_shared_metric_both_ways():
    base = {"ndcg@10": {"1": 0.1, "2": 0.2, "3": 0.3, "4": 0.5}, "mrr@10": {"1": 0.5, "2": 0.5, "3": 0.5, "4": 0.5}}
    model = {"ndcg@10": {"1": 0.3, "2": 0.3, "3": 0.6, "4": 0.6}, "recall@100": {"1": 1.0, "2": 1.0, "3": 1.0}}
    tests = compare_to_base(base, model)
    assert list(tests) == ["ndcg@10"]  # metrics both have, in the model's order
    x, y = [0.3, 0.3, 0.6, 0.6], [0.1, 0.2, 0.3, 0.5]
    assert tests["ndcg@10"]["delta"] == pytest.approx(np.mean(x) - np.mean(y))
    assert tests["ndcg@10"]["p_t_test"] == pytest.approx(stats.ttest_rel(x, y).pvalue)
    randomised = compare(base["ndcg@10"], {"m": model["ndcg@10"]}, test="randomisation")["m"]
    assert tests["ndcg@10"]["p_randomisation"] == randomised.p_value
    with pytest.raises(ValueError, match="only in baseline"):
        compare_to_base(base, {"ndcg@10": {"1": 0.3}})
