"""Embedding-space diagnostics on clouds whose answers are known: isotropic vs collapsed."""

from __future__ import annotations

from math import sqrt

import numpy as np
import pytest
import torch
from scipy.special import gammaln, ive

from hf_rerank.analysis.embedding_space import (
    alignment,
    anisotropy,
    effective_rank,
    embedding_space_stats,
    isotropy,
    participation_ratio,
    uniformity,
)

N, D = 2000, 32


@pytest.fixture(scope="module")
def gaussian() -> np.ndarray:
    """Isotropic Gaussian cloud (N, D) around the origin."""
    return np.random.default_rng(0).standard_normal((N, D))


@pytest.fixture(scope="module")
def collapsed() -> np.ndarray:
    """Rank-1 cloud: every row a_i * u, a_i in [2, 6], u one unit direction, plus 1e-4 noise."""
    rng = np.random.default_rng(1)
    direction = rng.standard_normal(D)
    direction /= np.linalg.norm(direction)
    scales = rng.uniform(2.0, 6.0, size=(N, 1))
    return scales * direction + 1e-4 * rng.standard_normal((N, D))


def test_anisotropy_by_hand():
    # cos((1,0),(0,2)) = 0, cos((1,0),(1,1)) = cos((0,2),(1,1)) = 1/sqrt(2): mean sqrt(2)/3
    x = np.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    assert anisotropy(x) == pytest.approx(sqrt(2) / 3, rel=1e-12)
    assert anisotropy(torch.tensor(x, dtype=torch.float32)) == pytest.approx(sqrt(2) / 3, rel=1e-6)
    assert anisotropy(np.array([[1.0, 0.0], [-3.0, 0.0]])) == pytest.approx(-1.0)  # the minimum -1/(n-1)


def test_anisotropy_matches_pairwise_mean(gaussian):
    x = gaussian[:50]
    units = x / np.linalg.norm(x, axis=1, keepdims=True)
    cosines = units @ units.T
    assert anisotropy(x) == pytest.approx(cosines[~np.eye(50, dtype=bool)].mean(), rel=1e-10)


def test_anisotropy_isotropic_vs_collapsed(gaussian, collapsed):
    assert abs(anisotropy(gaussian)) < 0.01
    assert anisotropy(collapsed) > 0.999


def test_isotropy_isotropic_vs_collapsed(gaussian, collapsed):
    assert 0.5 < isotropy(gaussian) <= 1.0
    assert isotropy(collapsed) < 1e-3
    # 1-D: Z(+1) = e^1 + e^2, Z(-1) = e^-1 + e^-2
    assert isotropy(np.array([[1.0], [2.0]])) == pytest.approx((np.exp(-1) + np.exp(-2)) / (np.exp(1) + np.exp(2)))


def test_isotropy_no_overflow():
    # c . x_i around 1e4: exp overflows float64, logsumexp does not; the ratio underflows to 0
    x = np.array([[1e4, 0.0], [1e4, 1.0], [1e4, -1.0]])
    assert isotropy(x) == 0.0
    assert isotropy(x / 1e4) > 0.0


def test_unit_norm_isotropy_lower_bound():
    # all rows equal to one unit vector: Z(u) = n e, Z(-u) = n / e
    x = np.tile([0.6, 0.8], (5, 1))
    assert isotropy(x) == pytest.approx(np.exp(-2), rel=1e-12)


def test_ranks_isotropic_vs_collapsed(gaussian, collapsed):
    assert effective_rank(gaussian) > 0.9 * D
    assert participation_ratio(gaussian) > 0.9 * D
    assert effective_rank(collapsed) < 1.01
    assert participation_ratio(collapsed) < 1.01


def test_ranks_known_spectra():
    # centred rows spanning 2 orthogonal directions with equal variance: both ranks exactly 2
    x = np.array([[1.0, 0.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, -1.0, 0.0]]) + 5.0
    assert effective_rank(x) == pytest.approx(2.0, rel=1e-12)
    assert participation_ratio(x) == pytest.approx(2.0, rel=1e-12)
    # variances 4 : 1 -> p = (0.8, 0.2): erank = exp(H), PR = 25 / 17
    y = np.array([[2.0, 0.0], [-2.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    entropy = -(0.8 * np.log(0.8) + 0.2 * np.log(0.2))
    assert effective_rank(y) == pytest.approx(np.exp(entropy), rel=1e-12)
    assert participation_ratio(y) == pytest.approx(25 / 17, rel=1e-12)


def test_ranks_reject_zero_variance():
    with pytest.raises(ValueError, match="zero variance"):
        effective_rank(np.ones((4, 3)))


def test_alignment_known_values(gaussian):
    assert alignment(gaussian, gaussian) == pytest.approx(0.0, abs=1e-12)
    assert alignment(gaussian, 3.0 * gaussian) == pytest.approx(0.0, abs=1e-12)  # rows normalised
    assert alignment(gaussian, -gaussian) == pytest.approx(4.0, rel=1e-12)
    assert alignment(gaussian, -gaussian, alpha=1) == pytest.approx(2.0, rel=1e-12)
    # orthogonal pairs: ||a - b||^2 = 2
    assert alignment(np.eye(2), np.eye(2)[::-1]) == pytest.approx(2.0, rel=1e-12)
    with pytest.raises(ValueError, match="alpha"):
        alignment(gaussian, gaussian, alpha=0)


def test_uniformity_collapsed_vs_sphere(gaussian, collapsed):
    # rank-1 rows with positive scales normalise to (almost) one point: the maximum 0
    assert uniformity(collapsed) == pytest.approx(0.0, abs=1e-6)
    # uniform on S^{d-1}: ||x - y||^2 = 2 - 2s, E exp(4s) = Gamma(d/2) (2/4)^nu I_nu(4), nu = d/2 - 1
    nu = D / 2 - 1
    analytic = -4.0 + gammaln(D / 2) + nu * np.log(0.5) + np.log(ive(nu, 4.0)) + 4.0
    assert analytic == pytest.approx(-3.7518, abs=1e-4)
    assert uniformity(gaussian) == pytest.approx(analytic, abs=0.01)
    with pytest.raises(ValueError, match="t must be positive"):
        uniformity(gaussian, t=0)


def test_uniformity_subsample_is_seeded(gaussian):
    full = uniformity(gaussian[:300])
    assert uniformity(gaussian[:300], max_rows=300) == full  # n <= max_rows: no subsampling
    sub = uniformity(gaussian[:300], max_rows=100, seed=3)
    assert sub == uniformity(gaussian[:300], max_rows=100, seed=3)
    assert sub != uniformity(gaussian[:300], max_rows=100, seed=4)
    assert sub == pytest.approx(full, abs=0.05)


def test_embedding_space_stats(gaussian, collapsed):
    queries, passages = gaussian[:1000], gaussian[1000:]
    stats = embedding_space_stats(queries, passages)
    assert list(stats) == [
        "anisotropy",
        "isotropy",
        "effective_rank",
        "participation_ratio",
        "alignment",
        "uniformity",
        "anisotropy_queries",
        "anisotropy_passages",
    ]
    assert all(type(value) is float for value in stats.values())
    assert stats["anisotropy"] == anisotropy(gaussian)
    assert stats["effective_rank"] == effective_rank(gaussian)
    assert stats["uniformity"] == uniformity(gaussian)
    assert stats["anisotropy_queries"] == anisotropy(queries)
    assert stats["alignment"] == pytest.approx(2.0, abs=0.05)  # independent pairs: E cos = 0
    flat = embedding_space_stats(collapsed[:1000], collapsed[1000:])
    assert flat["alignment"] == pytest.approx(0.0, abs=1e-6)
    assert flat["anisotropy"] > stats["anisotropy"]
    assert flat["effective_rank"] < stats["effective_rank"]
    assert flat["uniformity"] > stats["uniformity"]


@pytest.mark.parametrize(
    ("x", "message"),
    [
        (np.ones(4), "2-D"),
        (np.ones((1, 4)), "at least 2 rows"),
        (np.ones((3, 0)), "at least 2 rows and 1 column"),
        (np.array([[1.0, np.nan], [1.0, 2.0]]), "finite"),
        (np.array([[1.0, np.inf], [1.0, 2.0]]), "finite"),
    ],
)
def test_invalid_input(x, message):
    for function in (anisotropy, isotropy, effective_rank, participation_ratio, uniformity):
        with pytest.raises(ValueError, match=message):
            function(x)
    with pytest.raises(ValueError, match=message):
        alignment(x, x)
    with pytest.raises(ValueError, match=message):
        embedding_space_stats(x, x)


def test_zero_row_and_mismatched_shapes():
    with pytest.raises(ValueError, match="all-zero row"):
        anisotropy(np.array([[0.0, 0.0], [1.0, 2.0]]))
    with pytest.raises(ValueError, match="equal shapes"):
        alignment(np.ones((3, 2)), np.ones((4, 2)))
    with pytest.raises(ValueError, match="aligned pairs"):
        embedding_space_stats(np.eye(3), np.eye(4))
