"""Geometry of a cloud of embeddings: how collapsed, how low-dimensional, how well aligned.

Every function takes embeddings as a 2-D float array ``(n, d)`` -- one row per text -- given as
a numpy array or a torch tensor (any device or float dtype), computes in float64 numpy and
returns a Python ``float``. Bad input (not 2-D, fewer than 2 rows, no columns, NaN or inf)
raises ``ValueError``; functions that L2-normalise rows also reject all-zero rows.

What "flatter" / "collapsed" means for each number, with ``n`` rows in ``d`` dimensions:

============================  =========================  ========================================
number                        range                      collapsed / flatter when it is
============================  =========================  ========================================
:func:`anisotropy`            [-1/(n-1), 1]              higher (1: every row the same direction)
:func:`isotropy`              (0, 1]                     lower (1: perfectly isotropic)
:func:`effective_rank`        [1, min(n - 1, d)]         lower (variance in fewer directions)
:func:`participation_ratio`   [1, min(n - 1, d)]         lower (variance in fewer directions)
:func:`alignment`             [0, 2**alpha]              lower means positives are closer (good)
:func:`uniformity`            [-4t, 0]                   higher (0: every row the same point)
============================  =========================  ========================================

Only :func:`isotropy` depends on the scale of the rows; the others are scale invariant
(anisotropy, alignment and uniformity normalise rows; the ranks are ratios of eigenvalues).
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.spatial.distance import pdist
from scipy.special import logsumexp

Embeddings = np.ndarray | torch.Tensor

#: Rows :func:`uniformity` keeps at most (a seeded random subset) to bound its O(n^2) pairs.
UNIFORMITY_MAX_ROWS = 4_000


def as_matrix(x: Embeddings, name: str = "embeddings") -> np.ndarray:
    """Check ``x`` and return it as a float64 numpy array ``(n, d)`` with ``n >= 2``, ``d >= 1``."""
    if isinstance(x, torch.Tensor):
        x = x.detach().to(device="cpu", dtype=torch.float64).numpy()
    matrix = np.asarray(x, dtype=np.float64)
    if matrix.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (n, d), got shape {matrix.shape}")
    if matrix.shape[0] < 2 or matrix.shape[1] < 1:
        raise ValueError(f"{name} need at least 2 rows and 1 column, got shape {matrix.shape}")
    if not np.isfinite(matrix).all():
        raise ValueError(f"{name} must be finite (no nan or inf)")
    return matrix


def _unit_rows(x: np.ndarray, name: str) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    if (norms == 0).any():
        raise ValueError(f"{name} contain an all-zero row, which has no direction")
    return x / norms


def anisotropy(x: Embeddings) -> float:
    """Mean cosine similarity over the ``n (n - 1)`` ordered pairs of distinct rows of ``x`` ``(n, d)``.

    Exact in O(n d): with unit rows u_i, sum_{i != j} u_i . u_j = ||sum_i u_i||^2 - n.
    About 0 for an isotropic cloud around the origin, 1 when all rows point the same way.
    """
    units = _unit_rows(as_matrix(x), "embeddings")
    n = units.shape[0]
    total = units.sum(axis=0)
    return float((total @ total - n) / (n * (n - 1)))


def isotropy(x: Embeddings) -> float:
    """Partition-function isotropy I = min_c Z(c) / max_c Z(c) of Mu & Viswanath (2018).

    Z(c) = sum_i exp(c . x_i) over the rows x_i of ``x`` ``(n, d)`` taken as given (not centred,
    not normalised), and c ranges over the d unit eigenvectors of the uncentred ``X^T X`` *and
    their negatives* (an eigenvector's sign is arbitrary; taking both makes I well defined).
    log Z is computed with logsumexp, so large norms do not overflow. 1 = isotropic, towards
    0 = anisotropic. The score depends on the scale of the rows: for unit-norm rows
    Z(c) lies in [n / e, n e], so I >= e^-2 ~ 0.135; compare it only between clouds of the
    same scale (e.g. two models that both L2-normalise).
    """
    matrix = as_matrix(x)
    _, vectors = np.linalg.eigh(matrix.T @ matrix)
    directions = np.hstack([vectors, -vectors])
    log_z = logsumexp(matrix @ directions, axis=0)
    return float(np.exp(log_z.min() - log_z.max()))


def _covariance_eigenvalues(x: Embeddings) -> np.ndarray:
    """Eigenvalues of the covariance of the centred rows (via singular values, so >= 0)."""
    matrix = as_matrix(x)
    centred = matrix - matrix.mean(axis=0)
    eigenvalues = np.linalg.svd(centred, compute_uv=False) ** 2 / (matrix.shape[0] - 1)
    if eigenvalues.sum() == 0:
        raise ValueError("embeddings have zero variance (all rows equal); their rank is undefined")
    return eigenvalues


def effective_rank(x: Embeddings) -> float:
    """Roy & Vetterli (2007) effective rank exp(H(p)), p = covariance eigenvalues / their sum.

    ``x`` ``(n, d)`` is centred first; H is the Shannon entropy in nats (0 log 0 = 0). Equals
    k when the variance is spread evenly over k directions; d for an isotropic Gaussian cloud.
    """
    eigenvalues = _covariance_eigenvalues(x)
    p = eigenvalues[eigenvalues > 0] / eigenvalues.sum()
    return float(np.exp(-(p * np.log(p)).sum()))


def participation_ratio(x: Embeddings) -> float:
    """(sum lambda)^2 / sum lambda^2 over the eigenvalues lambda of the covariance of ``x`` ``(n, d)``.

    Like :func:`effective_rank`, k for variance spread evenly over k directions, but weighted
    more towards the largest eigenvalues.
    """
    eigenvalues = _covariance_eigenvalues(x)
    return float(eigenvalues.sum() ** 2 / (eigenvalues**2).sum())


def alignment(a: Embeddings, b: Embeddings, alpha: float = 2) -> float:
    """Wang & Isola (2020) alignment: mean ||a_i - b_i||^alpha over positive pairs.

    ``a`` and ``b`` are ``(n, d)`` with row i of both forming a positive pair; rows are
    L2-normalised first, so with ``alpha=2`` the value is 2 - 2 mean cos(a_i, b_i), in [0, 4].
    """
    if alpha <= 0:
        raise ValueError(f"alpha must be positive, got {alpha}")
    left, right = as_matrix(a, "a"), as_matrix(b, "b")
    if left.shape != right.shape:
        raise ValueError(f"positive pairs need equal shapes, got {left.shape} and {right.shape}")
    distances = np.linalg.norm(_unit_rows(left, "a") - _unit_rows(right, "b"), axis=1)
    return float((distances**alpha).mean())


def uniformity(x: Embeddings, t: float = 2, *, max_rows: int = UNIFORMITY_MAX_ROWS, seed: int = 0) -> float:
    """Wang & Isola (2020) uniformity: log mean over distinct pairs of exp(-t ||x_i - x_j||^2).

    Rows of ``x`` ``(n, d)`` are L2-normalised first. When n > ``max_rows`` the pairs are those
    of ``max_rows`` rows drawn without replacement by ``numpy.random.default_rng(seed)``, so the
    cost stays O(max_rows^2 d) and the result is reproducible. 0 when all rows coincide; for
    points uniform on the sphere in d dimensions it tends to -2t as d grows.
    """
    if t <= 0:
        raise ValueError(f"t must be positive, got {t}")
    if max_rows < 2:
        raise ValueError(f"max_rows must be at least 2, got {max_rows}")
    units = _unit_rows(as_matrix(x), "embeddings")
    if units.shape[0] > max_rows:
        rows = np.sort(np.random.default_rng(seed).choice(units.shape[0], size=max_rows, replace=False))
        units = units[rows]
    squared = pdist(units, "sqeuclidean")
    return float(logsumexp(-t * squared) - np.log(squared.size))


def embedding_space_stats(queries: Embeddings, passages: Embeddings, *, seed: int = 0) -> dict[str, float]:
    """All diagnostics for ``n`` aligned query / positive-passage pairs of one model.

    ``queries`` and ``passages`` are ``(n, d)``; row i of each is a query and its positive
    passage. Returns (see the module docstring for which direction is "collapsed"):

    - ``anisotropy``, ``isotropy``, ``effective_rank``, ``participation_ratio``,
      ``uniformity``: on all 2n embeddings stacked (``seed`` picks the uniformity subsample);
    - ``alignment``: each query vs its passage (alpha = 2);
    - ``anisotropy_queries``, ``anisotropy_passages``: on each side alone.
    """
    query_matrix, passage_matrix = as_matrix(queries, "queries"), as_matrix(passages, "passages")
    if query_matrix.shape != passage_matrix.shape:
        raise ValueError(
            "queries and passages must be aligned pairs of equal shape, "
            f"got {query_matrix.shape} and {passage_matrix.shape}"
        )
    both = np.vstack([query_matrix, passage_matrix])
    return {
        "anisotropy": anisotropy(both),
        "isotropy": isotropy(both),
        "effective_rank": effective_rank(both),
        "participation_ratio": participation_ratio(both),
        "alignment": alignment(query_matrix, passage_matrix),
        "uniformity": uniformity(both, seed=seed),
        "anisotropy_queries": anisotropy(query_matrix),
        "anisotropy_passages": anisotropy(passage_matrix),
    }
