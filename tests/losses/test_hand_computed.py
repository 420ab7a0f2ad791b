"""Label losses (bce, listwise, ranknet, margin) against values worked out by hand with ``math``."""

import math

import pytest
import torch

from hf_rerank.losses import listwise_softmax_ce, pairwise_margin, pairwise_ranknet, pointwise_bce


def t(x):
    return torch.tensor(x, dtype=torch.float32)


def approx(x):
    return pytest.approx(x, rel=1e-5, abs=1e-6)


def sp(x):
    """softplus by hand: log(1 + e^x)."""
    return math.log1p(math.exp(x))


# --------------------------------------------------------------------------- pointwise_bce
def test_bce_binary_labels():
    # y=1, s=2:  -log sigma(2)      = log(1 + e^-2)
    # y=0, s=-1: -log(1 - sigma(-1)) = -log sigma(1) = log(1 + e^-1)
    expected = (math.log(1 + math.exp(-2)) + math.log(1 + math.exp(-1))) / 2
    assert pointwise_bce(t([2.0, -1.0]), t([1.0, 0.0])).item() == approx(expected)


def test_bce_graded_label_becomes_soft_target():
    # grade 2 of max 3 -> t = 2/3; s = 0.5:
    # -(2/3 log sigma(0.5) + 1/3 log(1 - sigma(0.5))) = 2/3 log(1 + e^-0.5) + 1/3 log(1 + e^0.5)
    expected = 2 / 3 * math.log(1 + math.exp(-0.5)) + 1 / 3 * math.log(1 + math.exp(0.5))
    assert pointwise_bce(t([0.5]), t([2.0]), max_grade=3.0).item() == approx(expected)


def test_bce_clips_targets_and_accepts_groups():
    # (B, G) = (2, 2), max_grade 2: grades [3, 1; -1, 2] -> targets [1, 0.5; 0, 1]
    # s=1,t=1:   log(1 + e^-1)
    # s=0,t=0.5: log 2
    # s=-2,t=0:  log(1 + e^-2)
    # s=3,t=1:   log(1 + e^-3)
    expected = (math.log(1 + math.exp(-1)) + math.log(2) + math.log(1 + math.exp(-2)) + math.log(1 + math.exp(-3))) / 4
    loss = pointwise_bce(t([[1.0, 0.0], [-2.0, 3.0]]), t([[3.0, 1.0], [-1.0, 2.0]]), max_grade=2.0)
    assert loss.item() == approx(expected)


def test_bce_accepts_integer_labels():
    # s=0, y=1: log 2
    assert pointwise_bce(t([0.0]), torch.tensor([1])).item() == approx(math.log(2))


# --------------------------------------------------------------------------- listwise_softmax_ce
def test_listwise_single_positive_first():
    # -log(e^2 / (e^2 + e^0 + e^-1))
    expected = -math.log(math.exp(2) / (math.exp(2) + 1 + math.exp(-1)))
    assert listwise_softmax_ce(t([[2.0, 0.0, -1.0]]), t([[1, 0, 0]])).item() == approx(expected)


def test_listwise_positive_not_at_index_0():
    # positive at index 1 with score 3: -log(e^3 / (e^0.5 + e^3 + e^-2))
    expected = -math.log(math.exp(3) / (math.exp(0.5) + math.exp(3) + math.exp(-2)))
    assert listwise_softmax_ce(t([[0.5, 3.0, -2.0]]), t([[0, 1, 0]])).item() == approx(expected)


def test_listwise_two_graded_positives():
    # labels [2, 1, 0] -> targets [2/3, 1/3, 0]; log Z = log(e^1 + e^2 + e^0)
    # loss = -(2/3 (1 - log Z) + 1/3 (2 - log Z)) = log Z - 2/3 - 2/3
    log_z = math.log(math.e + math.exp(2) + 1)
    expected = log_z - (2 / 3 * 1.0 + 1 / 3 * 2.0)
    assert listwise_softmax_ce(t([[1.0, 2.0, 0.0]]), t([[2, 1, 0]])).item() == approx(expected)


def test_listwise_skips_all_zero_rows_and_averages_the_rest():
    # row 0: -log(e^2 / (e^2 + 1 + e^-1)); row 1 all-zero -> skipped;
    # row 2: positive at index 2, scores [1, 1, 1] -> -log(1/3) = log 3
    row0 = -math.log(math.exp(2) / (math.exp(2) + 1 + math.exp(-1)))
    expected = (row0 + math.log(3)) / 2
    scores = t([[2.0, 0.0, -1.0], [5.0, -5.0, 0.0], [1.0, 1.0, 1.0]])
    labels = t([[1, 0, 0], [0, 0, 0], [0, 0, 1]])
    assert listwise_softmax_ce(scores, labels).item() == approx(expected)


def test_listwise_temperature():
    # T = 0.5 doubles the scores: [2, 0] -> [4, 0]; -log(e^4 / (e^4 + 1)) = log(1 + e^-4)
    expected = math.log(1 + math.exp(-4))
    assert listwise_softmax_ce(t([[2.0, 0.0]]), t([[1, 0]]), temperature=0.5).item() == approx(expected)
    # T = 2 halves them: [2, 0] -> [1, 0]; log(1 + e^-1)
    assert listwise_softmax_ce(t([[2.0, 0.0]]), t([[1, 0]]), temperature=2.0).item() == approx(
        math.log(1 + math.exp(-1))
    )


# --------------------------------------------------------------------------- pairwise_ranknet
def test_ranknet_single_pair():
    # one pair (0 over 1), s_0 - s_1 = 1: log(1 + e^-1)
    assert pairwise_ranknet(t([[1.0, 0.0]]), t([[1, 0]])).item() == approx(math.log(1 + math.exp(-1)))


def test_ranknet_graded_labels_count_pairs_by_hand():
    # scores [1, 0, 0.5, -1], labels [3, 2, 0, 0]
    # pairs with l_i > l_j (ordered, i better): (0,1) (0,2) (0,3) (1,2) (1,3) -> 5; (2,3) is a tie
    # term = log(1 + exp(s_j - s_i)):
    #   (0,1): s_j - s_i = 0 - 1    = -1
    #   (0,2):            0.5 - 1   = -0.5
    #   (0,3):            -1 - 1    = -2
    #   (1,2):            0.5 - 0   = 0.5
    #   (1,3):            -1 - 0    = -1
    terms = [sp(-1), sp(-0.5), sp(-2), sp(0.5), sp(-1)]
    expected = sum(terms) / 5
    loss = pairwise_ranknet(t([[1.0, 0.0, 0.5, -1.0]]), t([[3, 2, 0, 0]]))
    assert loss.item() == approx(expected)


def test_ranknet_means_over_all_pairs_of_the_batch_not_per_row():
    # row 0 as above: 5 pairs.
    # row 1: scores [0, 2, 9, 9], labels [1, 0, 0, 0] -> 3 pairs, term log(1 + exp(s_j - s_i)):
    #   (0,1): 2 - 0 = 2;  (0,2): 9 - 0 = 9;  (0,3): 9
    # row 2: all labels tied -> no pair.
    # mean over the 8 pairs (NOT the mean of the row means (5-pair mean + 3-pair mean) / 2).
    terms = [sp(-1), sp(-0.5), sp(-2), sp(0.5), sp(-1), sp(2), sp(9), sp(9)]
    expected = sum(terms) / 8
    scores = t([[1.0, 0.0, 0.5, -1.0], [0.0, 2.0, 9.0, 9.0], [3.0, -3.0, 0.0, 1.0]])
    labels = t([[3, 2, 0, 0], [1, 0, 0, 0], [1, 1, 1, 1]])
    assert pairwise_ranknet(scores, labels).item() == approx(expected)
    per_row = (sum(terms[:5]) / 5 + sum(terms[5:]) / 3) / 2
    assert pairwise_ranknet(scores, labels).item() != approx(per_row)


def test_ranknet_is_stable_for_large_gaps():
    # s_0 - s_1 = -200: log(1 + e^200) ~= 200 (a naive exp would overflow float32)
    loss = pairwise_ranknet(t([[-100.0, 100.0]]), t([[1, 0]]))
    assert math.isfinite(loss.item()) and loss.item() == approx(200.0)


# --------------------------------------------------------------------------- pairwise_margin
def test_margin_hinge_active():
    # scores [0.5, 1, 0], labels [1, 0, 0], margin 1:
    #   (0,1): max(0, 1 - (0.5 - 1)) = 1.5
    #   (0,2): max(0, 1 - (0.5 - 0)) = 0.5
    # mean = 1.0
    assert pairwise_margin(t([[0.5, 1.0, 0.0]]), t([[1, 0, 0]])).item() == approx(1.0)


def test_margin_hinge_inactive_gives_zero_loss_and_zero_grad():
    # gaps 3 - 1 = 2 and 3 - 0.5 = 2.5 both >= margin 1 -> 0
    scores = t([[3.0, 1.0, 0.5]]).requires_grad_()
    loss = pairwise_margin(scores, t([[1, 0, 0]]))
    assert loss.item() == 0.0
    loss.backward()
    assert torch.equal(scores.grad, torch.zeros_like(scores))


def test_margin_mixed_and_custom_margin_with_graded_labels():
    # scores [2, 1, 0], labels [2, 1, 0], margin 1.5:
    #   (0,1): max(0, 1.5 - 1) = 0.5
    #   (0,2): max(0, 1.5 - 2) = 0
    #   (1,2): max(0, 1.5 - 1) = 0.5
    # mean over 3 pairs = 1/3 (the inactive pair still counts)
    loss = pairwise_margin(t([[2.0, 1.0, 0.0]]), t([[2, 1, 0]]), margin=1.5)
    assert loss.item() == approx(1 / 3)
