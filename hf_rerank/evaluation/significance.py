"""Paired significance tests over per-query scores, with Holm-Bonferroni correction.

Every test takes two equally long sequences of per-query scores of ONE metric, position i
of both belonging to the same query (e.g. the values of ``RunEvaluation.per_query[metric]``
in the order of ``RunEvaluation.queries``), and returns a two-sided p-value.
:func:`compare` does the pairing by query id for you and corrects across systems.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import stats

Scores = Sequence[float] | np.ndarray

#: The significance level hf-rerank reports at (▲/▼ in tables and cards, ``significant`` in :func:`compare`).
ALPHA = 0.05

#: Upper bound on sign-matrix entries generated at once by the randomisation test.
_CHUNK_ELEMENTS = 1 << 22


def _paired(a: Scores, b: Scores) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    if x.ndim != 1 or y.ndim != 1:
        raise ValueError("per-query scores must be 1-D sequences")
    if x.shape != y.shape:
        raise ValueError(f"paired scores differ in length: {x.size} vs {y.size}")
    if x.size < 2:
        raise ValueError(f"a paired test needs at least 2 queries, got {x.size}")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("per-query scores must be finite (no nan or inf)")
    return x, y


def paired_t_test(a: Scores, b: Scores) -> float:
    """Two-sided paired Student t-test (``scipy.stats.ttest_rel``) on per-query scores.

    Args:
        a, b: per-query scores of two systems, position i of both for the same query.

    Returns:
        The two-sided p-value as a Python float. When every per-query difference is the same,
        the t statistic is undefined: identical scores give 1.0, a constant non-zero
        difference gives 0.0 (the limit of t -> infinity).
    """
    x, y = _paired(a, b)
    diff = x - y
    if np.all(diff == diff[0]):
        return 1.0 if diff[0] == 0 else 0.0
    return float(stats.ttest_rel(x, y).pvalue)


def randomisation_test(a: Scores, b: Scores, n_permutations: int = 10_000, seed: int = 0) -> float:
    """Fisher's paired randomisation (sign-flip permutation) test on the mean difference.

    Each permutation flips the sign of every per-query difference ``a - b`` at random
    (swapping the two systems' scores on that query); the two-sided p-value is
    ``(#{|permuted mean| >= |observed mean|} + 1) / (n_permutations + 1)``, so it is never 0
    (smallest value ``1 / (n_permutations + 1)``) and identical systems give 1.0.

    Args:
        a, b: per-query scores of two systems, position i of both for the same query.
        n_permutations: number of random sign assignments (>= 1).
        seed: seed of ``np.random.default_rng``; the same inputs and seed give the same p.

    Returns:
        The p-value as a Python float.
    """
    if n_permutations < 1:
        raise ValueError(f"n_permutations must be >= 1, got {n_permutations}")
    x, y = _paired(a, b)
    diff = x - y
    n = diff.size
    observed = abs(diff.sum())  # compare sums: the same test as means, n is constant
    # Sums that are equal in exact arithmetic may differ in the last bits after reordering.
    tolerance = 1e-9 * float(np.abs(diff).sum())

    rng = np.random.default_rng(seed)
    chunk = max(1, _CHUNK_ELEMENTS // n)
    count = 0
    done = 0
    while done < n_permutations:
        m = min(chunk, n_permutations - done)
        signs = 1.0 - 2.0 * rng.integers(0, 2, size=(m, n), dtype=np.int8)
        permuted = np.abs(signs @ diff)
        count += int(np.count_nonzero(permuted >= observed - tolerance))
        done += m
    return (count + 1) / (n_permutations + 1)


def holm(p_values: Mapping[str, float]) -> dict[str, float]:
    """Holm-Bonferroni step-down adjusted p-values.

    With the m p-values sorted ascending, p_(1) <= ... <= p_(m), the adjusted value is
    ``min(1, max_{j <= i} (m - j + 1) * p_(j))``: monotone in the raw p-values and capped at 1.
    Reject hypothesis i at level alpha when its adjusted p-value is < alpha.

    Args:
        p_values: name -> raw p-value in [0, 1].

    Returns:
        name -> adjusted p-value, same keys (in the same order) as ``p_values``.
    """
    for name, p in p_values.items():
        if not 0.0 <= p <= 1.0:  # also rejects nan
            raise ValueError(f"p-value of {name!r} is not in [0, 1]: {p}")
    m = len(p_values)
    adjusted: dict[str, float] = {}
    running = 0.0
    for rank, name in enumerate(sorted(p_values, key=lambda k: p_values[k])):
        running = max(running, min(1.0, (m - rank) * float(p_values[name])))
        adjusted[name] = running
    return {name: adjusted[name] for name in p_values}


@dataclass(frozen=True)
class Comparison:
    """One system against the baseline on one metric.

    Attributes:
        mean_baseline, mean_system: mean per-query score over the paired queries.
        delta: ``mean_system - mean_baseline``.
        p_value: two-sided p-value of the paired test.
        p_holm: Holm-Bonferroni adjusted p-value across all compared systems.
        significant: ``p_holm < alpha``.
    """

    mean_baseline: float
    mean_system: float
    delta: float
    p_value: float
    p_holm: float
    significant: bool


def compare(
    baseline: Mapping[str, float],
    systems: Mapping[str, Mapping[str, float]],
    test: Literal["t-test", "randomisation"] = "t-test",
    alpha: float = ALPHA,
    *,
    n_permutations: int = 10_000,
    seed: int = 0,
) -> dict[str, Comparison]:
    """Compare each system with the baseline on one metric, Holm-corrected across systems.

    Args:
        baseline: qid -> score of the baseline for one metric (e.g.
            ``RunEvaluation.per_query["ndcg@10"]``).
        systems: system name -> (qid -> score) for the same metric.
        test: ``"t-test"`` (:func:`paired_t_test`) or ``"randomisation"``
            (:func:`randomisation_test`, with ``n_permutations`` and ``seed``).
        alpha: significance level applied to the Holm-adjusted p-values.

    Returns:
        system name -> :class:`Comparison`, in the order of ``systems``.

    Raises:
        ValueError: unknown ``test``, ``alpha`` outside (0, 1), or a system whose query ids
            differ from the baseline's (scores are paired by qid; both must be evaluated
            on the same queries).
    """
    if test not in ("t-test", "randomisation"):
        raise ValueError(f"unknown test {test!r}; use 't-test' or 'randomisation'")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")

    qids = sorted(baseline)
    base = np.array([baseline[q] for q in qids], dtype=np.float64)
    raw: dict[str, tuple[float, float]] = {}  # name -> (mean_system, p_value)
    for name, scores in systems.items():
        if scores.keys() != baseline.keys():
            only_base = sorted(baseline.keys() - scores.keys())
            only_sys = sorted(scores.keys() - baseline.keys())
            raise ValueError(
                f"system {name!r} is not scored on the baseline's queries: "
                f"{len(only_base)} only in baseline {only_base[:5]}, "
                f"{len(only_sys)} only in system {only_sys[:5]}"
            )
        other = np.array([scores[q] for q in qids], dtype=np.float64)
        if test == "t-test":
            p = paired_t_test(other, base)
        else:
            p = randomisation_test(other, base, n_permutations=n_permutations, seed=seed)
        raw[name] = (float(other.mean()), p)

    adjusted = holm({name: p for name, (_, p) in raw.items()})
    mean_base = float(base.mean()) if base.size else float("nan")
    return {
        name: Comparison(
            mean_baseline=mean_base,
            mean_system=mean_sys,
            delta=mean_sys - mean_base,
            p_value=p,
            p_holm=adjusted[name],
            significant=adjusted[name] < alpha,
        )
        for name, (mean_sys, p) in raw.items()
    }


def compare_to_base(
    base: Mapping[str, Mapping[str, float]], model: Mapping[str, Mapping[str, float]]
) -> dict[str, dict[str, float]]:
    """A fine-tuned model against its untrained base model, from both per-query scores
    ``{metric: {qid: score}}`` (as ``hf-rerank evaluate`` writes them): for each of the model's metrics
    the base has, ``{"delta", "p_t_test", "p_randomisation"}`` (model minus base; two-sided paired t-test
    and Fisher's randomisation test, 10,000 sign flips, as :func:`compare` computes them). Each p-value is
    for its own metric, not corrected across metrics. Raises ``ValueError`` when the query ids differ."""
    tests = {}
    for metric, scores in model.items():
        if metric in base:
            t_test = compare(base[metric], {"model": scores}, test="t-test")["model"]
            randomised = compare(base[metric], {"model": scores}, test="randomisation")["model"]
            tests[metric] = {"delta": t_test.delta, "p_t_test": t_test.p_value, "p_randomisation": randomised.p_value}
    return tests
