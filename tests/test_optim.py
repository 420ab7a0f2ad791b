"""Optimizer factory: parameter groups, Lion scaling, the Lion update, decay, schedules, state dicts."""

import copy
import importlib.util
import io
import logging
import math
import sys

import pytest
import torch
from torch import nn

from hf_rerank.optim import (
    OPTIMIZERS,
    OptimizerSpec,
    SchedulerBindingError,
    assert_scheduler_bound,
    build_optimizer,
    build_scheduler,
    parameter_groups,
)

LION_FOREACH = OptimizerSpec("lion", lr=1e-3, weight_decay=0.1)
LION_LOOP = OptimizerSpec("lion", lr=1e-3, weight_decay=0.1, foreach=False)
ADAMW = OptimizerSpec("adamw", lr=1e-3, weight_decay=0.01)
ALL_SPECS = pytest.mark.parametrize("spec", [LION_FOREACH, LION_LOOP, ADAMW], ids=["lion", "lion-loop", "adamw"])


class FancyNorm(nn.Module):
    """A model-specific norm with a 2-D scale: no decay by class name, not by shape."""

    def __init__(self, dim):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(1, dim))

    def forward(self, x):
        return x / x.norm(dim=-1, keepdim=True).clamp(min=1e-6) * self.scale


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(10, 4)
        self.lin = nn.Linear(4, 3)
        self.norm = nn.LayerNorm(3)
        self.fancy = FancyNorm(3)
        self.head = nn.Linear(3, 1, bias=False)
        self.frozen = nn.Linear(3, 3)
        self.frozen.requires_grad_(False)

    def forward(self, ids):
        return self.head(self.fancy(self.norm(self.lin(self.emb(ids))))).squeeze(-1)


def tiny(seed=0):
    torch.manual_seed(seed)
    return Tiny().double()


def batch(step):
    g = torch.Generator().manual_seed(1000 + step)
    return torch.randint(0, 10, (6,), generator=g), torch.randn(6, generator=g, dtype=torch.float64)


def train(model, optimizer, steps, start=0, scheduler=None):
    for step in range(start, start + steps):
        ids, y = batch(step)
        loss = ((model(ids) - y) ** 2).mean()
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        optimizer.zero_grad(set_to_none=True)


def names_of(model, params):
    by_id = {id(p): n for n, p in model.named_parameters()}
    return sorted(by_id[id(p)] for p in params)


# -- parameter groups --------------------------------------------------------------------------


def test_parameter_groups_split_by_module_type_and_shape():
    model = tiny()
    groups = parameter_groups(model, 0.05)
    assert [g["name"] for g in groups] == ["decay", "no_decay"]
    assert [g["weight_decay"] for g in groups] == [0.05, 0.0]
    assert names_of(model, groups[0]["params"]) == ["emb.weight", "head.weight", "lin.weight"]
    assert names_of(model, groups[1]["params"]) == ["fancy.scale", "lin.bias", "norm.bias", "norm.weight"]
    assert sum(len(g["params"]) for g in groups) == 7  # frozen.weight / frozen.bias left out


def test_parameter_groups_rmsnorm_tied_and_frozen():
    model = nn.Sequential(nn.Linear(3, 3), nn.RMSNorm(3), nn.Linear(3, 3, bias=False))
    model[2].weight = model[0].weight  # tied: listed once
    groups = parameter_groups(model, 0.1)
    assert names_of(model, groups[0]["params"]) == ["0.weight"]
    assert names_of(model, groups[1]["params"]) == ["0.bias", "1.weight"]
    model.requires_grad_(False)
    with pytest.raises(ValueError, match="no trainable parameters"):
        parameter_groups(model, 0.1)
    with pytest.raises(ValueError):
        parameter_groups(tiny(), -0.1)


@ALL_SPECS
def test_optimizer_param_groups(spec):
    model = tiny()
    opt = build_optimizer(model, spec)
    assert [g["name"] for g in opt.param_groups] == ["decay", "no_decay"]
    assert [len(g["params"]) for g in opt.param_groups] == [3, 4]
    assert [g["weight_decay"] for g in opt.param_groups] == [spec.weight_decay, 0.0]
    assert all(g["lr"] == spec.lr for g in opt.param_groups)


# -- spec and Lion scaling ---------------------------------------------------------------------


def test_lion_scaling_converts_adamw_hyperparameters(caplog):
    spec = OptimizerSpec("lion", lr=2e-5, weight_decay=0.01, lion_scaling=5)
    assert spec.effective_lr == pytest.approx(4e-6, rel=1e-12)
    assert spec.effective_weight_decay == pytest.approx(0.05, rel=1e-12)
    assert spec.effective_lr * spec.effective_weight_decay == pytest.approx(2e-5 * 0.01, rel=1e-12)
    with caplog.at_level(logging.INFO, logger="hf_rerank"):
        opt = build_optimizer(tiny(), spec)
    assert opt.param_groups[0]["lr"] == spec.effective_lr
    assert opt.param_groups[0]["weight_decay"] == spec.effective_weight_decay
    assert opt.param_groups[1]["weight_decay"] == 0.0
    text = caplog.text
    assert "k=5" in text and "lr=2e-05" in text and "lr=4e-06" in text and "weight_decay=0.05" in text
    assert all(r.name == "hf_rerank" for r in caplog.records)


def test_lion_scaling_one_is_identity():
    spec = OptimizerSpec("lion", lr=1e-4, weight_decay=0.1, lion_scaling=1)
    assert (spec.effective_lr, spec.effective_weight_decay) == (1e-4, 0.1)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(name="lion", lion_scaling=0.5), ">= 1"),
        (dict(name="lion", lion_scaling=float("nan")), ">= 1"),
        (dict(name="adamw", lion_scaling=3), "only valid with the Lion"),
        (dict(name="adamw", use_triton=True), "only valid with the Lion"),
        (dict(name="sgd"), "unknown optimizer"),
        (dict(name="lion", lr=0.0), "lr"),
        (dict(name="lion", weight_decay=-1.0), "weight_decay"),
        (dict(name="adamw", betas=(0.9, 1.5)), "betas"),
    ],
)
def test_spec_rejects(kwargs, match):
    with pytest.raises(ValueError, match=match):
        OptimizerSpec(**kwargs)


def test_optimizers_constant_and_default_betas():
    assert OPTIMIZERS == ("adamw", "lion")
    assert OptimizerSpec("lion").effective_betas == (0.9, 0.99)
    assert OptimizerSpec("adamw").effective_betas == (0.9, 0.999)
    assert OptimizerSpec("LION", betas=[0.95, 0.98]).betas == (0.95, 0.98)


def test_effective_contents():
    model = tiny()
    eff = OptimizerSpec("lion", lr=2e-5, weight_decay=0.01, lion_scaling=4).effective(model)
    assert eff["name"] == "lion"
    assert eff["lr"] == pytest.approx(5e-6) and eff["weight_decay"] == pytest.approx(0.04)
    assert eff["betas"] == (0.9, 0.99) and eff["eps"] is None
    assert eff["lion_scaling"] == 4.0
    assert (eff["adamw_lr"], eff["adamw_weight_decay"]) == (2e-5, 0.01)
    assert eff["implementation"] == "lion-pytorch foreach"
    assert (eff["n_params_decay"], eff["n_params_no_decay"]) == (3, 4)
    assert (eff["n_elements_decay"], eff["n_elements_no_decay"]) == (10 * 4 + 4 * 3 + 3, 3 + 3 + 3 + 3)

    eff = OptimizerSpec("adamw", lr=2e-5, weight_decay=0.01).effective(model)  # model on CPU
    assert (eff["lr"], eff["weight_decay"], eff["eps"]) == (2e-5, 0.01, 1e-8)
    assert eff["betas"] == (0.9, 0.999)
    assert eff["lion_scaling"] is None and eff["adamw_lr"] is None and eff["adamw_weight_decay"] is None
    assert eff["implementation"] == "torch.optim.AdamW (fused)"  # torch's fused kernel runs on CPUs too
    assert OptimizerSpec("adamw", foreach=True).effective(model)["implementation"] == "torch.optim.AdamW (foreach)"
    assert OptimizerSpec("adamw", foreach=False).effective(model)["implementation"] == "torch.optim.AdamW (for-loop)"
    assert OptimizerSpec("lion", foreach=False).effective(model)["implementation"] == "lion-pytorch for-loop"
    assert OptimizerSpec("lion").effective()["n_params_decay"] is None


def test_triton_requested_on_cpu_warns_and_falls_back(caplog):
    model = tiny()
    spec = OptimizerSpec("lion", lr=1e-3, weight_decay=0.1, use_triton=True)
    with caplog.at_level(logging.WARNING, logger="hf_rerank"):
        opt = build_optimizer(model, spec)
    assert any(r.levelno == logging.WARNING and "Triton" in r.getMessage() for r in caplog.records)
    assert spec.effective(model)["implementation"] == "lion-pytorch foreach"
    if importlib.util.find_spec("triton") is None:
        assert "lion_pytorch.triton" not in sys.modules  # importing it would exit()
    before = copy.deepcopy(model.state_dict())
    train(model, opt, 1)
    assert not torch.equal(before["lin.weight"], model.lin.weight)


# -- the Lion update and weight decay ----------------------------------------------------------


class Pair(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.tensor([[0.5, -1.0], [2.0, 0.0]], dtype=torch.float64))  # decay
        self.b = nn.Parameter(torch.tensor([0.25, -0.75], dtype=torch.float64))  # no decay


@pytest.mark.parametrize("foreach", [None, False], ids=["foreach", "for-loop"])
def test_lion_update_matches_paper_formula(foreach):
    lr, wd, b1, b2 = 0.01, 0.5, 0.9, 0.99
    model = Pair()
    opt = build_optimizer(model, OptimizerSpec("lion", lr=lr, weight_decay=wd, betas=(b1, b2), foreach=foreach))
    grads = [
        {"w": torch.tensor([[1.0, -0.2], [0.0, 0.3]]), "b": torch.tensor([0.4, -2.0])},
        # step 2: small opposite gradients on [0][0] and b[0]: momentum wins, sign(c) != sign(g)
        {"w": torch.tensor([[-0.05, -0.1], [0.2, -0.3]]), "b": torch.tensor([-0.01, 1.0])},
    ]
    ref = {"w": model.w.detach().clone(), "b": model.b.detach().clone()}
    m = {k: torch.zeros_like(v) for k, v in ref.items()}
    decay = {"w": wd, "b": 0.0}
    for step, g in enumerate(grads):
        for k in ("w", "b"):
            gk = g[k].double()
            getattr(model, k).grad = gk.clone()
            c = b1 * m[k] + (1 - b1) * gk
            ref[k] = ref[k] * (1 - lr * decay[k]) - lr * torch.sign(c)  # decay first, then the signed update
            m[k] = b2 * m[k] + (1 - b2) * gk
        opt.step()
        for k in ("w", "b"):
            p = getattr(model, k)
            torch.testing.assert_close(p.detach(), ref[k], rtol=0, atol=1e-15)
            torch.testing.assert_close(opt.state[p]["exp_avg"], m[k], rtol=0, atol=1e-15)
        if step == 0:  # zero gradient -> sign 0 -> decay only
            assert model.w[1, 0].item() == pytest.approx(2.0 * (1 - 0.005), abs=1e-15)
            assert model.w[1, 1].item() == pytest.approx(-0.01, abs=1e-15)  # decay of 0 is 0
            assert model.w[0, 0].item() == pytest.approx(0.5 * (1 - 0.005) - 0.01, abs=1e-15)
    # momentum beat the opposite gradient
    assert model.w[0, 0].item() == pytest.approx((0.5 * 0.995 - 0.01) * 0.995 - 0.01, abs=1e-15)
    assert model.b[0].item() == pytest.approx(0.25 - 0.01 - 0.01, abs=1e-15)


@ALL_SPECS
def test_decay_uses_each_groups_own_lr(spec):
    """With zero gradients only the decay acts (Lion: sign(0) = 0; AdamW: m = v = 0), and a group
    whose lr differs decays by exactly (1 - lr_group * wd) per step."""
    model = tiny()
    opt = build_optimizer(model, spec)
    wd = spec.weight_decay
    lrs = (spec.lr, spec.lr * 7)
    opt.param_groups[1]["lr"] = lrs[1]  # e.g. a layer-wise lr or a schedule
    opt.param_groups[1]["weight_decay"] = wd
    start = [[p.detach().clone() for p in g["params"]] for g in opt.param_groups]
    steps = 3
    for _ in range(steps):
        for g in opt.param_groups:
            for p in g["params"]:
                p.grad = torch.zeros_like(p)
        opt.step()
    for g, lr, before in zip(opt.param_groups, lrs, start):
        for p, p0 in zip(g["params"], before):
            torch.testing.assert_close(p.detach(), p0 * (1 - lr * wd) ** steps, rtol=1e-13, atol=0)


def test_foreach_lion_skips_groups_without_gradients():
    """lion-pytorch 0.2.5's foreach Lion raises on a group in which no parameter has a gradient."""
    model = nn.Sequential(nn.Linear(3, 2, bias=False), nn.LayerNorm(5)).double()  # LayerNorm unused
    opt = build_optimizer(model, OptimizerSpec("lion", lr=1e-3, weight_decay=0.1))
    norm_before = model[1].weight.detach().clone()
    w_before = model[0].weight.detach().clone()
    model[0](torch.ones(4, 3, dtype=torch.float64)).sum().backward()
    opt.step()
    assert torch.equal(model[1].weight, norm_before)
    assert not torch.equal(model[0].weight, w_before)
    assert [g["name"] for g in opt.param_groups] == ["decay", "no_decay"]


# -- state dict --------------------------------------------------------------------------------


@ALL_SPECS
def test_state_dict_round_trip(spec):
    base = tiny()
    a = copy.deepcopy(base)
    opt_a = build_optimizer(a, spec)
    sched_a = build_scheduler(opt_a, "linear", 2, 10)
    train(a, opt_a, 4, scheduler=sched_a)

    b = copy.deepcopy(base)
    opt_b = build_optimizer(b, spec)
    sched_b = build_scheduler(opt_b, "linear", 2, 10)
    train(b, opt_b, 2, scheduler=sched_b)
    buf = io.BytesIO()
    torch.save({"model": b.state_dict(), "optimizer": opt_b.state_dict(), "scheduler": sched_b.state_dict()}, buf)
    buf.seek(0)
    saved = torch.load(buf, weights_only=True)

    c = tiny(seed=123)  # different init, overwritten by the checkpoint
    c.load_state_dict(saved["model"])
    opt_c = build_optimizer(c, spec)
    sched_c = build_scheduler(opt_c, "linear", 2, 10)
    opt_c.load_state_dict(saved["optimizer"])
    sched_c.load_state_dict(saved["scheduler"])
    assert [g["name"] for g in opt_c.param_groups] == ["decay", "no_decay"]
    train(c, opt_c, 2, start=2, scheduler=sched_c)

    for (name, pa), pc in zip(a.named_parameters(), c.parameters()):
        assert torch.equal(pa, pc), name
    assert sched_a.get_last_lr() == sched_c.get_last_lr()


# -- schedulers --------------------------------------------------------------------------------


class Wrapped(torch.optim.Optimizer):
    """Stands in for accelerate's AcceleratedOptimizer (the real optimizer in ``.optimizer``)."""

    def __init__(self, optimizer):
        self.optimizer = optimizer

    @property
    def param_groups(self):
        return self.optimizer.param_groups

    @property
    def state(self):
        return self.optimizer.state

    @property
    def defaults(self):
        return self.optimizer.defaults

    def step(self, closure=None):
        return self.optimizer.step(closure)


def test_scheduler_binding_checks():
    opt_a = build_optimizer(tiny(), LION_FOREACH)
    opt_b = build_optimizer(tiny(), ADAMW)
    sched = build_scheduler(opt_a, "cosine", 2, 10)
    assert sched.optimizer is opt_a
    assert_scheduler_bound(sched, opt_a)
    with pytest.raises(SchedulerBindingError, match="never reach the training optimizer"):
        assert_scheduler_bound(sched, opt_b)
    assert_scheduler_bound(sched, Wrapped(opt_a))  # trainer wraps its optimizer
    assert_scheduler_bound(build_scheduler(Wrapped(opt_a), "linear", 2, 10), opt_a)
    with pytest.raises(SchedulerBindingError):
        assert_scheduler_bound(sched, Wrapped(opt_b))
    with pytest.raises(SchedulerBindingError):
        assert_scheduler_bound(object(), opt_a)
    with pytest.raises(TypeError):
        build_scheduler(None, "linear", 2, 10)


def _lr_seen_by(train_model, train_opt, sched, k):
    """Train k steps (scheduler stepped each time), then the lr the training optimizer applies next:
    measured from a Lion step on ``lin.bias`` (no decay, |delta| = lr * |sign| = lr)."""
    train(train_model, train_opt, k, scheduler=sched)
    bias = train_model.lin.bias
    before = bias.detach().clone()
    train_model.lin.bias.grad = torch.ones_like(bias)
    train_opt.step()
    train_opt.zero_grad(set_to_none=True)
    return (before - bias.detach()).abs().max().item(), [g["lr"] for g in train_opt.param_groups]


def _expected_linear(base, k, warmup, total):
    return base * (k / warmup if k < warmup else max(0.0, (total - k) / (total - warmup)))


@pytest.mark.parametrize("k", [1, 3, 6])
def test_schedule_reaches_the_training_optimizer(k):
    spec = OptimizerSpec("lion", lr=2e-5, weight_decay=0.01, lion_scaling=4)
    warmup, total = 4, 10
    model = tiny()
    opt = build_optimizer(model, spec)
    sched = build_scheduler(opt, "linear", warmup, total)
    assert_scheduler_bound(sched, opt)
    expected = _expected_linear(spec.effective_lr, k, warmup, total)
    applied, group_lrs = _lr_seen_by(model, opt, sched, k)
    assert group_lrs == pytest.approx([expected, expected], rel=1e-12)
    assert sched.get_last_lr() == pytest.approx([expected, expected], rel=1e-12)
    assert applied == pytest.approx(expected, rel=1e-6)


@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step\\(\\)` before:UserWarning")
def test_schedule_bound_to_another_optimizer_is_caught():
    """The seed paper's bug: schedule bound to a second optimizer while the first one trains.
    The end-to-end check above would fail, and assert_scheduler_bound raises."""
    spec = OptimizerSpec("lion", lr=2e-5, weight_decay=0.01, lion_scaling=4)
    model = tiny()
    opt = build_optimizer(model, spec)
    other = build_optimizer(tiny(), OptimizerSpec("adamw", lr=2e-5, weight_decay=0.01))
    sched = build_scheduler(other, "linear", 4, 10)
    with pytest.raises(SchedulerBindingError):
        assert_scheduler_bound(sched, opt)
    applied, group_lrs = _lr_seen_by(model, opt, sched, 3)
    expected = _expected_linear(spec.effective_lr, 3, 4, 10)
    assert group_lrs != pytest.approx([expected, expected], rel=1e-12)
    assert not math.isclose(applied, expected, rel_tol=1e-6)
