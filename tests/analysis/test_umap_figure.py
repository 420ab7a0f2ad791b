"""UMAP figure: projection shape and determinism, PNG output, shared axis limits, bad input.

UMAP's first fit JIT-compiles (tens of seconds), so the module fits exactly twice: once in the
module fixture and once more through :func:`umap_figure` to check determinism.
"""

from __future__ import annotations

import matplotlib.image
import numpy as np
import pytest
import torch

from hf_rerank.analysis.embedding_space import embedding_space_stats
from hf_rerank.analysis.umap_figure import (
    MARGIN,
    PANEL_STATS,
    plot_umap_panels,
    shared_limits,
    umap_figure,
    umap_projection,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
PAIRS, DIM = 60, 16


@pytest.fixture(scope="module")
def pairs() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    queries = rng.standard_normal((PAIRS, DIM))
    return queries, queries + 0.5 * rng.standard_normal((PAIRS, DIM))


@pytest.fixture(scope="module")
def projection(pairs):
    return umap_projection(*pairs)  # paper defaults: n_neighbors 15, min_dist 0.1, seed 42


def squares() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Two panels with known extents: x in [0, 1] and [10, 12]; y in [0, 1] and [-4, 0]."""
    unit = np.array([[0.0, 0.0], [1.0, 1.0]])
    return {
        "a": (unit, unit[::-1]),
        "b": (np.array([[10.0, -4.0], [12.0, 0.0]]), np.array([[11.0, -1.0], [11.0, -2.0]])),
    }


def read_png(path) -> np.ndarray:
    assert path.read_bytes()[:8] == PNG_MAGIC
    return matplotlib.image.imread(path)


def test_projection_shapes(projection):
    query_xy, passage_xy = projection
    assert query_xy.shape == passage_xy.shape == (PAIRS, 2)
    assert query_xy.dtype == passage_xy.dtype == np.float64
    assert np.isfinite(query_xy).all() and np.isfinite(passage_xy).all()
    assert not np.array_equal(query_xy, passage_xy)


def test_umap_figure_is_deterministic_and_writes_png(pairs, projection, tmp_path):
    queries, passages = pairs
    path = tmp_path / "figures" / "umap.png"
    projections = umap_figure({"model": (torch.tensor(queries), torch.tensor(passages))}, path, title="t")
    np.testing.assert_array_equal(projections["model"][0], projection[0])  # same seed, same result
    np.testing.assert_array_equal(projections["model"][1], projection[1])
    image = read_png(path)
    assert image.ndim == 3 and image.shape[2] in (3, 4)
    assert [p.name for p in path.parent.iterdir()] == ["umap.png"]  # no temporary file left


def test_shared_limits_known_answer():
    (x_low, x_high), (y_low, y_high) = shared_limits(squares())
    # union x in [0, 12] (span 12), y in [-4, 1] (span 5), widened by MARGIN * span each side
    assert (x_low, x_high) == pytest.approx((-12 * MARGIN, 12 + 12 * MARGIN))
    assert (y_low, y_high) == pytest.approx((-4 - 5 * MARGIN, 1 + 5 * MARGIN))


def test_panels_share_limits_and_layout(projection, tmp_path):
    panels = {**squares(), "umap": projection}
    figure = plot_umap_panels(panels, tmp_path / "three.png")
    axes = figure.axes
    assert len(axes) == 3 and all(a.get_visible() for a in axes)  # 3 panels: one row
    assert len({a.get_subplotspec().rowspan.start for a in axes}) == 1
    expected_x, expected_y = shared_limits(panels)
    for a in axes:
        assert a.get_xlim() == pytest.approx(expected_x)
        assert a.get_ylim() == pytest.approx(expected_y)
    assert [a.get_title() for a in axes] == ["a (2 pairs)", "b (2 pairs)", f"umap ({PAIRS} pairs)"]
    read_png(tmp_path / "three.png")


def test_five_panels_wrap_to_two_rows(tmp_path):
    figure = plot_umap_panels({f"m{i}": squares()["a"] for i in range(5)}, tmp_path / "five.png")
    axes = figure.axes
    assert len(axes) == 6  # 2 rows x 3 columns, the last one hidden
    assert sorted(a.get_subplotspec().rowspan.start for a in axes) == [0, 0, 0, 1, 1, 1]
    assert [a.get_visible() for a in axes] == [True] * 5 + [False]
    assert len({a.get_xlim() for a in axes}) == 1 and len({a.get_ylim() for a in axes}) == 1


def test_stats_printed_in_panels(pairs, projection, tmp_path):
    stats = {"m": embedding_space_stats(*pairs)}
    figure = plot_umap_panels({"m": projection}, tmp_path / "stats.png", stats=stats)
    texts = [t.get_text() for t in figure.axes[0].texts]
    assert len(texts) == 1
    assert f"anisotropy {stats['m']['anisotropy']:.3f}" in texts[0]
    assert f"effective rank {stats['m']['effective_rank']:.3f}" in texts[0]
    assert texts[0].count("\n") == len(PANEL_STATS) - 1
    assert "isotropy" not in texts[0].replace("anisotropy", "")  # only the panel metrics


def test_invalid_input(pairs, tmp_path):
    queries, passages = pairs
    with pytest.raises(ValueError, match="equal shape"):
        umap_projection(queries, passages[:-1])
    with pytest.raises(ValueError, match="n_neighbors"):
        umap_projection(queries[:5], passages[:5])  # 10 embeddings < 15 neighbours
    with pytest.raises(ValueError, match=r"\.png"):
        umap_figure({"m": pairs}, tmp_path / "umap.pdf")
    unit = squares()["a"]
    xy = unit[0]
    with pytest.raises(ValueError, match="1 queries but 2 passages"):
        plot_umap_panels({"m": (xy[:1], xy)}, tmp_path / "x.png")
    with pytest.raises(ValueError, match=r"\(n, 2\)"):
        plot_umap_panels({"m": (np.ones((2, 3)), np.ones((2, 3)))}, tmp_path / "x.png")
    with pytest.raises(ValueError, match="at least one panel"):
        plot_umap_panels({}, tmp_path / "x.png")
    with pytest.raises(ValueError, match="exactly the panels"):
        plot_umap_panels({"m": unit}, tmp_path / "x.png", stats={"other": dict.fromkeys(PANEL_STATS, 0.0)})
    with pytest.raises(ValueError, match="lack"):
        plot_umap_panels({"m": unit}, tmp_path / "x.png", stats={"m": {"anisotropy": 0.0}})
    assert not (tmp_path / "x.png").exists()
