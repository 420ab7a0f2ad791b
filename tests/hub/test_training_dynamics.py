"""The training-dynamics figure: series extraction, PNG written atomically, pyplot untouched."""

import matplotlib
import pytest

from hf_rerank.analysis.training_dynamics import default_metric, plot_training_dynamics, training_dynamics

# The shape of a real run's log_history.json (recipes/configs/demo_sample.yaml, shortened).
LOG = [
    {
        "eval_loss": 1.384,
        "eval_sample_ndcg@10": 0.05,
        "eval_sample_map@100-l2": 0.07,
        "eval_runtime": 11.8,
        "epoch": 0,
        "step": 0,
    },
    {"loss": 1.38, "grad_norm": 0.6, "learning_rate": 3.2e-05, "epoch": 0.7, "step": 5},
    {
        "eval_loss": 1.379,
        "eval_sample_ndcg@10": 0.08,
        "eval_sample_map@100-l2": 0.10,
        "eval_runtime": 4.7,
        "epoch": 1.0,
        "step": 7,
    },
    {"loss": 1.37, "grad_norm": 0.7, "learning_rate": 2.5e-05, "epoch": 1.4, "step": 10},
    {
        "eval_loss": 1.372,
        "eval_sample_ndcg@10": 0.17,
        "eval_sample_map@100-l2": 0.15,
        "eval_runtime": 3.9,
        "epoch": 2.0,
        "step": 14,
    },
    {"train_runtime": 69.9, "train_samples_per_second": 3.2, "train_loss": 1.35, "epoch": 2.0, "step": 14},
]


def test_series_are_read_by_step():
    dynamics = training_dynamics(LOG)
    assert dynamics.loss == ([5, 10], [1.38, 1.37])
    assert dynamics.learning_rate == ([5, 10], [3.2e-05, 2.5e-05])
    assert dynamics.eval_loss == ([0, 7, 14], [1.384, 1.379, 1.372])
    assert dynamics.metric_name == "eval_sample_ndcg@10"
    assert dynamics.metric == ([0, 7, 14], [0.05, 0.08, 0.17])
    assert training_dynamics(LOG, "eval_sample_map@100-l2").metric == ([0, 7, 14], [0.07, 0.10, 0.15])


def test_default_metric_prefers_ndcg_and_ignores_bookkeeping():
    assert (
        default_metric([{"eval_runtime": 1.0, "eval_x_recall@100": 0.4, "eval_x_ndcg@10": 0.5, "step": 1}])
        == "eval_x_ndcg@10"
    )
    assert default_metric([{"eval_runtime": 1.0, "eval_loss": 2.0, "step": 1}]) is None


def test_png_is_written_atomically_without_touching_pyplot(tmp_path):
    backend = matplotlib.get_backend()
    import matplotlib.pyplot as plt

    figures_before = plt.get_fignums()
    path = tmp_path / "figs" / "training_dynamics.png"
    figure = plot_training_dynamics(LOG, path, title="demo")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in path.parent.iterdir()] == ["training_dynamics.png"]  # no temporary file left
    assert plt.get_fignums() == figures_before and matplotlib.get_backend() == backend
    loss_axes, lr_axes, metric_axes = figure.axes
    assert list(loss_axes.lines[0].get_xdata()) == [5, 10]
    assert list(metric_axes.lines[0].get_ydata()) == [0.05, 0.08, 0.17]
    assert metric_axes.get_ylabel() == "sample_ndcg@10"


def test_missing_series_leave_a_note(tmp_path):
    figure = plot_training_dynamics(
        [{"loss": 1.0, "learning_rate": 1e-5, "step": 1}, {"loss": 0.9, "learning_rate": 5e-6, "step": 2}],
        tmp_path / "f.png",
    )
    assert [t.get_text() for t in figure.axes[2].texts] == ["not logged"]


@pytest.mark.parametrize(
    "bad, message",
    [
        ("log.json", "must be a list"),
        ([{"loss": 1.0}], "integer 'step'"),
        ([{"train_runtime": 3.0, "step": 4}], "no training loss"),
    ],
)
def test_bad_log_history_is_refused(tmp_path, bad, message):
    with pytest.raises(ValueError, match=message):
        plot_training_dynamics(bad, tmp_path / "f.png")


def test_unknown_metric_and_non_png_path_are_refused(tmp_path):
    with pytest.raises(ValueError, match="never logged.*eval_sample_ndcg@10"):
        training_dynamics(LOG, "eval_dl19_ndcg@10")
    with pytest.raises(ValueError, match="must end in .png"):
        plot_training_dynamics(LOG, tmp_path / "f.svg")
    assert not list(tmp_path.iterdir())
