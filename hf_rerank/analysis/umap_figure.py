"""UMAP projections of query and passage embeddings, drawn side by side for several models.

Paper setup (arXiv 2506.18535), the defaults here: per model, 1,000 query / positive-passage
pairs are embedded, and ONE UMAP (umap-learn, cosine metric, ``n_neighbors=15``,
``min_dist=0.1``, ``random_state=42``) is fitted on the 2n stacked embeddings. Each model gets
its own UMAP, so positions are not comparable across panels -- only the shape of each cloud is;
the panels nevertheless share their axis limits so that spreads can be compared by eye.

umap-learn (numba, JIT-compiled on first use) and matplotlib are imported inside the functions,
so importing this module is cheap. Figures are drawn with the Agg canvas on a
:class:`matplotlib.figure.Figure`; pyplot's global state is never touched.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

from hf_rerank.analysis.embedding_space import Embeddings, as_matrix
from hf_rerank.data.formats import atomic_write

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: ``(query_xy, passage_xy)``: two float arrays ``(n, 2)``, row i of both one query / passage pair.
Projection = tuple[np.ndarray, np.ndarray]

#: Metrics printed in a panel's corner when ``stats`` are given, with their labels.
PANEL_STATS = {
    "anisotropy": "anisotropy",
    "effective_rank": "effective rank",
    "alignment": "alignment",
    "uniformity": "uniformity",
}

QUERY_COLOUR, PASSAGE_COLOUR = "tab:blue", "tab:orange"
#: Fraction of the coordinate range added on each side of the shared axis limits.
MARGIN = 0.05
DPI = 150


def _pairs(queries: Embeddings, passages: Embeddings, what: str) -> tuple[np.ndarray, np.ndarray]:
    query_matrix, passage_matrix = as_matrix(queries, f"{what} queries"), as_matrix(passages, f"{what} passages")
    if query_matrix.shape != passage_matrix.shape:
        raise ValueError(
            f"{what} queries and passages must be aligned pairs of equal shape, "
            f"got {query_matrix.shape} and {passage_matrix.shape}"
        )
    return query_matrix, passage_matrix


def umap_projection(
    queries: Embeddings, passages: Embeddings, *, n_neighbors: int = 15, min_dist: float = 0.1, seed: int = 42
) -> Projection:
    """Fit one 2-D UMAP on the stacked query and passage embeddings of one model.

    Args:
        queries: ``(n, d)`` query embeddings (numpy or torch).
        passages: ``(n, d)`` embeddings of the positive passages, row i belonging to query i.
        n_neighbors, min_dist: UMAP parameters (paper: 15 and 0.1); metric is cosine.
        seed: UMAP ``random_state`` (paper: 42); it also makes umap-learn run single-threaded,
            which is what makes the result reproducible.

    Returns:
        ``(query_xy, passage_xy)``, float64 arrays ``(n, 2)``.
    """
    query_matrix, passage_matrix = _pairs(queries, passages, "UMAP")
    n = query_matrix.shape[0]
    if not 2 <= n_neighbors < 2 * n:
        raise ValueError(f"n_neighbors must be in [2, {2 * n}) for {2 * n} embeddings, got {n_neighbors}")
    import umap

    reducer = umap.UMAP(
        n_components=2, n_neighbors=n_neighbors, min_dist=min_dist, metric="cosine", random_state=seed, n_jobs=1
    )
    xy = reducer.fit_transform(np.vstack([query_matrix, passage_matrix])).astype(np.float64)
    return xy[:n], xy[n:]


def _checked_panel(name: str, projection: Projection) -> Projection:
    query_xy, passage_xy = (np.asarray(xy, dtype=np.float64) for xy in projection)
    for xy in (query_xy, passage_xy):
        if xy.ndim != 2 or xy.shape[1] != 2 or xy.shape[0] == 0:
            raise ValueError(f"panel {name!r}: coordinates must be non-empty arrays (n, 2), got shape {xy.shape}")
        if not np.isfinite(xy).all():
            raise ValueError(f"panel {name!r}: coordinates must be finite")
    if query_xy.shape != passage_xy.shape:
        raise ValueError(f"panel {name!r}: {query_xy.shape[0]} queries but {passage_xy.shape[0]} passages")
    return query_xy, passage_xy


def _check_png_path(path: str | os.PathLike) -> None:
    if not os.fspath(path).lower().endswith(".png"):
        raise ValueError(f"the figure is written as PNG; path must end in .png, got {os.fspath(path)!r}")


def shared_limits(panels: Mapping[str, Projection]) -> tuple[tuple[float, float], tuple[float, float]]:
    """``((x_min, x_max), (y_min, y_max))`` covering every point of every panel plus :data:`MARGIN`.

    The margin is ``MARGIN`` times the span of the union on each side (a span of 0 counts as 1).
    """
    points = np.vstack([xy for projection in panels.values() for xy in projection])
    low, high = points.min(axis=0), points.max(axis=0)
    span = np.where(high > low, high - low, 1.0)
    low, high = low - MARGIN * span, high + MARGIN * span
    return (float(low[0]), float(high[0])), (float(low[1]), float(high[1]))


def plot_umap_panels(
    panels: Mapping[str, Projection],
    path: str | os.PathLike,
    *,
    title: str | None = None,
    stats: Mapping[str, Mapping[str, float]] | None = None,
) -> Figure:
    """Draw one scatter panel per model and write the figure as a PNG (atomically, :data:`DPI` dpi).

    Args:
        panels: ordered ``{model_name: (query_xy, passage_xy)}``, coordinates ``(n, 2)`` with
            row i of both a query and its positive passage. Panels sit side by side, in two
            rows when there are more than 3. Queries and passages get two colours (legend
            under the panels) and each pair is linked by a thin, faint grey line. Every panel
            has the same x and y limits, :func:`shared_limits`.
        path: the ``.png`` file to write; parent directories are created.
        title: optional figure title.
        stats: optional ``{model_name: {metric: value}}`` with exactly the panels' names, each
            holding at least the :data:`PANEL_STATS` keys (as
            :func:`~hf_rerank.analysis.embedding_space.embedding_space_stats` returns); those
            are printed, 3 decimals, in the panel's upper-left corner.

    Returns:
        The :class:`matplotlib.figure.Figure`, e.g. to check its axes.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.collections import LineCollection
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    if not panels:
        raise ValueError("plot_umap_panels needs at least one panel")
    _check_png_path(path)
    checked = {name: _checked_panel(name, projection) for name, projection in panels.items()}
    if stats is not None:
        if set(stats) != set(checked):
            raise ValueError(f"stats must name exactly the panels {sorted(checked)}, got {sorted(stats)}")
        for name, values in stats.items():
            missing = [key for key in PANEL_STATS if key not in values]
            if missing:
                raise ValueError(f"stats for {name!r} lack {missing}")

    rows = 1 if len(checked) <= 3 else 2
    columns = math.ceil(len(checked) / rows)
    figure = Figure(figsize=(4.2 * columns, 4.2 * rows + 0.6), layout="constrained")
    FigureCanvasAgg(figure)
    grid = figure.subplots(rows, columns, squeeze=False, sharex=True, sharey=True)
    x_limits, y_limits = shared_limits(checked)
    for axes, (name, (query_xy, passage_xy)) in zip(grid.flat, checked.items()):
        links = np.stack([query_xy, passage_xy], axis=1)  # (n, 2 ends, 2 coordinates)
        axes.add_collection(LineCollection(links, colors="grey", linewidths=0.3, alpha=0.12, zorder=1))
        points = np.vstack([query_xy, passage_xy])
        colours = np.array([QUERY_COLOUR] * len(query_xy) + [PASSAGE_COLOUR] * len(passage_xy))
        order = np.random.default_rng(0).permutation(len(points))  # neither side hides the other
        axes.scatter(*points[order].T, s=4, c=colours[order], alpha=0.6, linewidths=0, zorder=2)
        axes.set_title(f"{name} ({query_xy.shape[0]} pairs)", fontsize=10)
        if stats is not None:
            text = "\n".join(f"{label} {stats[name][key]:.3f}" for key, label in PANEL_STATS.items())
            axes.text(
                0.02,
                0.98,
                text,
                transform=axes.transAxes,
                va="top",
                ha="left",
                fontsize=7,
                family="monospace",
                bbox={"boxstyle": "round", "facecolor": "white", "alpha": 0.7, "edgecolor": "lightgrey"},
            )
    for axes in grid.flat[len(checked) :]:
        axes.set_visible(False)
    for axes in grid.flat:
        axes.set_xlim(x_limits)
        axes.set_ylim(y_limits)
    handles = [Line2D([], [], linestyle="", marker="o", color=colour) for colour in (QUERY_COLOUR, PASSAGE_COLOUR)]
    figure.legend(handles, ["queries", "passages"], loc="outside lower center", ncols=2, frameon=False)
    if title is not None:
        figure.suptitle(title)
    with atomic_write(path, "wb") as handle:
        figure.savefig(handle, format="png", dpi=DPI)
    return figure


def umap_figure(
    embeddings: Mapping[str, tuple[Embeddings, Embeddings]],
    path: str | os.PathLike,
    *,
    title: str | None = None,
    stats: Mapping[str, Mapping[str, float]] | None = None,
    **umap_kwargs,
) -> dict[str, Projection]:
    """Project each model's ``(query_emb, passage_emb)`` with :func:`umap_projection` and plot them.

    ``embeddings`` is an ordered ``{model_name: (queries (n, d), passages (n, d))}``;
    ``umap_kwargs`` (``n_neighbors``, ``min_dist``, ``seed``) go to every projection, ``title``
    and ``stats`` to :func:`plot_umap_panels`. Returns ``{model_name: (query_xy, passage_xy)}``.
    """
    _check_png_path(path)
    projections = {name: umap_projection(*pair, **umap_kwargs) for name, pair in embeddings.items()}
    plot_umap_panels(projections, path, title=title, stats=stats)
    return projections
