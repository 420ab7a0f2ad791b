"""What every loss refuses, and that every registered loss gives finite gradients."""

import math

import pytest
import torch

from hf_rerank.losses import LOSSES, build_loss, listwise_softmax_ce, pairwise_margin, pairwise_ranknet, pointwise_bce


def t(x):
    return torch.tensor(x, dtype=torch.float32)


def approx(x):
    return pytest.approx(x, rel=1e-5, abs=1e-6)


def sp(x):
    """softplus by hand: log(1 + e^x)."""
    return math.log1p(math.exp(x))


# --------------------------------------------------------------------------- gradients
@pytest.mark.parametrize("name", sorted(LOSSES))
def test_gradients_flow_and_are_finite(name):
    scores = t([[0.3, -0.2, 1.0, 50.0], [80.0, -80.0, 0.0, 0.1]]).requires_grad_()
    labels = t([[1, 0, 2, 0], [0, 1, 0, 0]])
    targets = labels if LOSSES[name].target == "labels" else t([[0.5, -1.0, 2.0, 0.0], [1.0, 0.3, -0.2, 0.0]])
    loss = build_loss(name)(scores, targets)
    assert loss.dim() == 0 and math.isfinite(loss.item())
    loss.backward()
    assert scores.grad is not None
    assert torch.isfinite(scores.grad).all()
    assert scores.grad.abs().sum() > 0


def test_labels_get_no_gradient():
    labels = t([[1, 0]]).requires_grad_()
    scores = t([[0.0, 1.0]]).requires_grad_()
    listwise_softmax_ce(scores, labels).backward()
    assert labels.grad is None


# --------------------------------------------------------------------------- validation
ALL = [build_loss(name) for name in LOSSES]  # every registered loss object
GROUPED = [loss for loss in ALL if loss.grouped]


@pytest.mark.parametrize("fn", ALL, ids=lambda loss: loss.name)
def test_shape_mismatch(fn):
    with pytest.raises(ValueError, match=r"same shape, got \(2, 3\) and \(2, 2\)"):
        fn(torch.zeros(2, 3), torch.zeros(2, 2))


@pytest.mark.parametrize("fn", ALL, ids=lambda loss: loss.name)
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_scores(fn, bad):
    with pytest.raises(ValueError, match="scores contain NaN or Inf"):
        fn(t([[0.0, bad]]), t([[1, 0]]))


@pytest.mark.parametrize("fn", ALL, ids=lambda loss: loss.name)
def test_non_finite_labels(fn):
    with pytest.raises(ValueError, match="targets contain NaN or Inf"):
        fn(t([[0.0, 1.0]]), t([[1.0, float("nan")]]))


@pytest.mark.parametrize("fn", GROUPED, ids=lambda loss: loss.name)
@pytest.mark.parametrize("shape", [(3,), (2, 2, 2)])
def test_grouped_losses_need_2d(fn, shape):
    with pytest.raises(ValueError, match=rf"expects \(B, G\) tensors.*{len(shape)}-D"):
        fn(torch.zeros(shape), torch.ones(shape))


@pytest.mark.parametrize("fn", GROUPED, ids=lambda loss: loss.name)
def test_grouped_losses_need_two_candidates(fn):
    with pytest.raises(ValueError, match="at least 2 real candidates"):
        fn(torch.zeros(4, 1), torch.ones(4, 1))


@pytest.mark.parametrize("fn", ALL, ids=lambda loss: loss.name)
def test_empty_and_non_tensor_and_integer_scores(fn):
    with pytest.raises(ValueError, match="empty"):
        fn(torch.zeros(0, 2), torch.zeros(0, 2))
    with pytest.raises(TypeError, match="must be torch.Tensor"):
        fn([[0.0, 1.0]], t([[1, 0]]))
    with pytest.raises(TypeError, match="floating-point"):
        fn(torch.tensor([[0, 1]]), t([[1, 0]]))


def test_listwise_all_rows_zero():
    with pytest.raises(ValueError, match="every row has all-zero labels"):
        listwise_softmax_ce(t([[1.0, 0.0], [0.0, 1.0]]), t([[0, 0], [0, 0]]))


def test_listwise_negative_labels_and_bad_temperature():
    with pytest.raises(ValueError, match="labels must be >= 0"):
        listwise_softmax_ce(t([[1.0, 0.0]]), t([[1, -1]]))
    for bad in (0.0, -1.0):
        with pytest.raises(ValueError, match="temperature must be > 0"):
            listwise_softmax_ce(t([[1.0, 0.0]]), t([[1, 0]]), temperature=bad)


@pytest.mark.parametrize("fn", [pairwise_ranknet, pairwise_margin])
def test_pairwise_without_pairs(fn):
    with pytest.raises(ValueError, match="no pair with different labels"):
        fn(t([[1.0, 0.0], [2.0, 3.0]]), t([[1, 1], [0, 0]]))


def test_bce_bad_max_grade():
    with pytest.raises(ValueError, match="max_grade must be > 0"):
        pointwise_bce(t([0.0]), t([1.0]), max_grade=0.0)
