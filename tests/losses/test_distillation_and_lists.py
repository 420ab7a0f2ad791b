"""The distillation losses (mse, margin_mse, kl), ListNet and LambdaLoss: hand-computed values, masks
(lists of different lengths), the registry, and sentence-transformers' loss of the same name on the
same inputs (to 1e-5)."""

import math

import pytest
import torch

from hf_rerank.losses import (
    LOSSES,
    build_loss,
    describe_losses,
    kl_distillation,
    lambda_loss,
    listnet,
    margin_mse,
    pointwise_mse,
)


def t(x):
    return torch.tensor(x, dtype=torch.float32)


def approx(x):
    return pytest.approx(x, rel=1e-5, abs=1e-6)


# --------------------------------------------------------------------------- hand-computed
def test_mse_hand_computed_with_scale_and_mask():
    # (1 - 0.5)^2 = 0.25, (2 - 3)^2 = 1 -> 0.625; scale 2: teacher 1, 6 -> (0 + 16) / 2 = 8
    assert pointwise_mse(t([1.0, 2.0]), t([0.5, 3.0])).item() == approx(0.625)
    assert pointwise_mse(t([1.0, 2.0]), t([0.5, 3.0]), scale=2.0).item() == approx(8.0)
    masked = pointwise_mse(t([[1.0, 2.0, 99.0]]), t([[0.5, 3.0, -99.0]]), t([[1, 1, 0]]).bool())
    assert masked.item() == approx(0.625)


def test_margin_mse_hand_computed():
    # student margins 3-1 = 2, 3-0 = 3; teacher 2-1 = 1, 2-1.5 = 0.5 -> ((2-1)^2 + (3-0.5)^2) / 2
    scores, teacher = t([[3.0, 1.0, 0.0]]), t([[2.0, 1.0, 1.5]])
    assert margin_mse(scores, teacher).item() == approx((1 + 2.5**2) / 2)
    assert margin_mse(scores, teacher, t([[1, 1, 0]]).bool()).item() == approx(1.0)
    assert margin_mse(scores, teacher, scale=2.0).item() == approx((0**2 + 2**2) / 2)  # teacher margins 2, 1
    with pytest.raises(ValueError, match="column 0"):
        margin_mse(t([[1.0, 2.0, 3.0]]), t([[1.0, 2.0, 3.0]]), t([[0, 1, 1]]).bool())


def test_kl_hand_computed_at_two_temperatures():
    # teacher [0, 0] -> p = [1/2, 1/2]; student [0, ln 3] -> q = [1/4, 3/4]
    scores, teacher = t([[0.0, math.log(3)]]), t([[0.0, 0.0]])
    expected = 0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75)
    assert kl_distillation(scores, teacher).item() == approx(expected)
    # T = 2: q = softmax([0, ln 3 / 2]) = [1, sqrt 3] / (1 + sqrt 3); times T^2 = 4
    q0, q1 = 1 / (1 + math.sqrt(3)), math.sqrt(3) / (1 + math.sqrt(3))
    expected = 4 * (0.5 * math.log(0.5 / q0) + 0.5 * math.log(0.5 / q1))
    assert kl_distillation(scores, teacher, temperature=2.0).item() == approx(expected)
    assert kl_distillation(teacher + 5.0, teacher).item() == approx(0.0)  # a shifted copy is the same distribution


def test_listnet_hand_computed():
    e = math.e
    target = [e / (e + 1), 1 / (e + 1)]  # softmax of labels [1, 0]
    assert listnet(t([[0.0, 0.0]]), t([[1.0, 0.0]])).item() == approx(math.log(2))
    expected = -(target[0] * math.log(0.75) + target[1] * math.log(0.25))  # scores [ln 3, 0] -> q = [3/4, 1/4]
    assert listnet(t([[math.log(3), 0.0]]), t([[1.0, 0.0]])).item() == approx(expected)


def test_lambdaloss_hand_computed_two_candidates_wrong_order():
    # labels [1, 0], scores [0, 1]: the student ranks the relevant one second. D = log2(1 + rank): 1, log2 3.
    # linear gains, maxDCG = 1/1 = 1, normalised gains by predicted rank [0, 1]; one pair, gain gap 1:
    # NDCG-Loss2 delta |1/D_1 - 1/D_2| and LambdaRank |1/D_2 - 1/D_1| are both 1 - 1/log2 3.
    delta = 1 - 1 / math.log2(3)
    weight = 10 * delta + delta
    expected = -weight * math.log(1 / (1 + math.e)) / math.log(2)  # log2 sigmoid(0 - 1)
    assert lambda_loss(t([[0.0, 1.0]]), t([[1.0, 0.0]])).item() == approx(expected)
    # grades 2 vs 0: linear gain 2 normalised by maxDCG 2 -> gap 1, the same; exponential: 3 / 3 -> the same
    assert lambda_loss(t([[0.0, 1.0]]), t([[2.0, 0.0]])).item() == approx(expected)
    assert lambda_loss(t([[0.0, 1.0]]), t([[2.0, 0.0]]), gain="exponential").item() == approx(expected)


def test_lambdaloss_gain_changes_weights_with_three_grades():
    scores, labels = t([[0.0, 1.0, 2.0]]), t([[3.0, 1.0, 0.0]])
    linear, exponential = lambda_loss(scores, labels), lambda_loss(scores, labels, gain="exponential")
    assert linear.item() != approx(exponential.item())
    with pytest.raises(ValueError, match="gain must be one of linear, exponential"):
        lambda_loss(scores, labels, gain="burges")


# --------------------------------------------------------------------------- masks
MASKED = [name for name, cls in LOSSES.items() if cls.grouped] + ["mse", "bce"]


@pytest.mark.parametrize("name", MASKED)
def test_padding_changes_nothing_and_gets_no_gradient(name):
    """Lists of 4 and 2 padded to 4: whatever the padded positions hold, the loss is the same and
    their scores get zero gradient."""
    mask = t([[1, 1, 1, 1], [1, 1, 0, 0]]).bool()
    targets = (
        t([[2.0, 0.0, 1.0, 0.0], [1.0, 0.0, 0.0, 0.0]])
        if LOSSES[name].target == "labels"
        else t([[0.9, 0.1, 0.5, -0.3], [0.7, 0.2, 0.0, 0.0]])
    )
    loss = build_loss(name)
    values = []
    for garbage in (0.0, 1e4, -3.0):
        scores = t([[0.3, -0.2, 1.0, 0.5], [0.1, 0.4, garbage, garbage]]).requires_grad_()
        noisy_targets = targets.clone()
        noisy_targets[~mask] = -garbage
        value = loss(scores, noisy_targets, mask)
        value.backward()
        assert torch.equal(scores.grad[~mask], torch.zeros(2)), name
        values.append(value.item())
    assert values == [approx(values[0])] * 3


@pytest.mark.parametrize("name", ["listwise", "listnet", "kl"])
def test_row_mean_losses_of_padded_lists_equal_the_mean_of_each_list_alone(name):
    loss = build_loss(name)
    long_scores, long_targets = t([[0.3, -0.2, 1.0, 0.5]]), t([[1.0, 0.0, 0.0, 0.0]])
    short_scores, short_targets = t([[0.1, 0.4]]), t([[0.0, 1.0]])
    padded = loss(
        t([[0.3, -0.2, 1.0, 0.5], [0.1, 0.4, 0.0, 0.0]]),
        t([[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]]),
        t([[1, 1, 1, 1], [1, 1, 0, 0]]).bool(),
    )
    alone = (loss(long_scores, long_targets) + loss(short_scores, short_targets)) / 2
    assert padded.item() == approx(alone.item())


def test_a_list_with_one_real_candidate_is_refused():
    with pytest.raises(ValueError, match="kl: every row needs at least 2 real candidates; row 1 has 1"):
        kl_distillation(t([[0.0, 1.0], [0.0, 1.0]]), t([[0.0, 1.0], [0.0, 1.0]]), t([[1, 1], [1, 0]]).bool())


# --------------------------------------------------------------------------- registry
def test_registry_builds_objects_with_options_and_refuses_unknown_ones():
    assert list(LOSSES) == ["bce", "mse", "ranknet", "margin", "margin_mse", "listwise", "listnet", "kl", "lambdaloss"]
    assert {name for name, cls in LOSSES.items() if cls.target == "teacher"} == {"mse", "margin_mse", "kl"}
    kl = build_loss("kl", temperature=0.05)
    assert kl.options() == {"temperature": 0.05} and kl.describe() == "kl(temperature=0.05)"
    assert build_loss("lambdaloss").options() == {"gain": "linear", "k": None, "sigma": 1.0, "mu": 10.0}
    with pytest.raises(ValueError, match=r"loss 'bce' has no option temperature \(its options: max_grade\)"):
        build_loss("bce", temperature=2.0)
    with pytest.raises(ValueError, match="unknown loss 'lambdarank'; valid names: bce, mse, ranknet"):
        build_loss("lambdarank")
    assert all(f"{name}: " in describe_losses() for name in LOSSES)


# --------------------------------------------------------------------------- sentence-transformers
st_ce = pytest.importorskip("sentence_transformers.cross_encoder.losses")
CrossEncoder = pytest.importorskip("sentence_transformers").CrossEncoder


class FakeCrossEncoder(CrossEncoder):
    """A CrossEncoder as far as sentence-transformers' losses look (``num_labels``, ``device``,
    ``preprocess``, ``forward``), answering with scores from a table instead of a network."""

    num_labels = 1
    device = torch.device("cpu")

    def __init__(self, table):
        torch.nn.Module.__init__(self)
        self.table = table

    def preprocess(self, pairs, prompt=None, task=None):
        return {"pairs": [tuple(pair) for pair in pairs]}

    def forward(self, features):
        return {"scores": torch.stack([self.table[pair] for pair in features["pairs"]]).view(-1, 1)}


def table_for(scores, docs):
    return {(f"q{b}", doc): scores[b, j] for b, row in enumerate(docs) for j, doc in enumerate(row)}


SCORES = t([[1.2, -0.3, 0.8, 2.0], [0.1, 0.4, -1.5, 0.0], [3.0, 2.5, 2.9, -0.7]])
GRADES = t([[3.0, 0.0, 1.0, 2.0], [0.0, 1.0, 0.0, 0.0], [2.0, 2.0, 0.0, 1.0]])
TEACHER = t([[4.1, -2.0, 1.3, 3.3], [-0.5, 2.2, -1.0, 0.4], [5.0, 4.4, 1.1, -3.0]])
LENGTHS = [4, 2, 3]


def as_lists(values, lengths=LENGTHS):
    return [values[b, :n] for b, n in enumerate(lengths)]


def docs_of(lengths=LENGTHS):
    return [[f"d{b}-{j}" for j in range(n)] for b, n in enumerate(lengths)]


def mask_of(lengths=LENGTHS):
    return torch.tensor([[j < n for j in range(SCORES.shape[1])] for n in lengths])


@pytest.mark.parametrize(
    "ours, theirs",
    [
        (build_loss("listnet"), lambda model: st_ce.ListNetLoss(model)),
        (build_loss("lambdaloss", gain="exponential"), lambda model: st_ce.LambdaLoss(model)),
        (build_loss("lambdaloss", gain="exponential", k=2), lambda model: st_ce.LambdaLoss(model, k=2)),
        # sentence-transformers reports RankNet in bits by default; ours is in nats, as RankNet was defined
        (build_loss("ranknet"), lambda model: st_ce.RankNetLoss(model, reduction_log="natural")),
    ],
    ids=["listnet", "lambdaloss", "lambdaloss-k2", "ranknet"],
)
def test_list_losses_match_sentence_transformers_on_lists_of_different_lengths(ours, theirs):
    docs = docs_of()
    loss_st = theirs(FakeCrossEncoder(table_for(SCORES, docs)))
    expected = loss_st([[f"q{b}" for b in range(3)], docs], as_lists(GRADES))
    assert ours(SCORES, GRADES, mask_of()).item() == pytest.approx(expected.item(), abs=1e-5)


def test_margin_mse_matches_sentence_transformers():
    docs = [[f"d{b}-{j}" for j in range(4)] for b in range(3)]
    model = FakeCrossEncoder(table_for(SCORES, docs))
    columns = [[f"q{b}" for b in range(3)]] + [[docs[b][j] for b in range(3)] for j in range(4)]
    expected = st_ce.MarginMSELoss(model)(columns, TEACHER)  # labels [t_pos, t_neg_1, ...]
    assert margin_mse(SCORES, TEACHER).item() == pytest.approx(expected.item(), abs=1e-5)


def test_mse_and_bce_match_sentence_transformers():
    flat_scores, flat_teacher = SCORES.flatten(), TEACHER.flatten()
    pairs = [(f"q{i}", f"d{i}") for i in range(len(flat_scores))]
    model = FakeCrossEncoder({pair: flat_scores[i] for i, pair in enumerate(pairs)})
    columns = [[q for q, _ in pairs], [d for _, d in pairs]]
    assert build_loss("mse")(flat_scores, flat_teacher).item() == pytest.approx(
        st_ce.MSELoss(model)(columns, flat_teacher).item(), abs=1e-5
    )
    soft = GRADES.flatten() / 3
    assert build_loss("bce", max_grade=3.0)(flat_scores, GRADES.flatten()).item() == pytest.approx(
        st_ce.BinaryCrossEntropyLoss(model)(columns, soft).item(), abs=1e-5
    )


@pytest.mark.parametrize("temperature", [1.0, 0.05, 2.0])
def test_kl_matches_sentence_transformers_distill_kl_div(temperature):
    st_losses = pytest.importorskip("sentence_transformers.sentence_transformer.losses")
    loss_st = st_losses.DistillKLDivLoss(model=None, temperature=temperature)
    # dot-product similarity of a query embedding [1] with passage embeddings [s_j] is s_j
    embeddings = [torch.ones(3, 1)] + [SCORES[:, j : j + 1] for j in range(4)]
    expected = loss_st.compute_loss_from_embeddings(embeddings, TEACHER)
    assert build_loss("kl", temperature=temperature)(SCORES, TEACHER).item() == pytest.approx(expected.item(), abs=1e-5)
