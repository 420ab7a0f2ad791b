"""Optimizer and LR-scheduler factory for fine-tuning rerankers (AdamW or Lion).

Guards against the flaws of the seed paper's training code:

* the LR schedule can only be built *for* a given optimizer (no default or global), and
  :func:`assert_scheduler_bound` checks that the schedule drives the optimizer that actually trains;
* Lion's hyperparameters can be derived from AdamW-style ones with ``lion_scaling=k``
  (``lr / k``, ``weight_decay * k``, so ``lr * weight_decay`` is unchanged, as the Lion paper
  advises with k = 3..10), and the *effective* values are logged and reported by
  :meth:`OptimizerSpec.effective`.

Weight decay is decoupled (applied to the weights, not added to the gradient) and uses each
parameter group's own, scheduled learning rate: every step multiplies the weights by
``1 - lr_group * weight_decay`` (``torch.optim.AdamW`` and ``lion_pytorch`` with
``decoupled_weight_decay=False``). lion-pytorch's ``decoupled_weight_decay=True`` instead divides
the decay by the *constructor's* lr, which is wrong for a group with another lr, so it is never used.

Lion's update (lion-pytorch 0.2.5, all variants: decay first, then the signed update)::

    p <- p * (1 - lr * wd)
    p <- p - lr * sign(b1 * m + (1 - b1) * g)
    m <- b2 * m + (1 - b2) * g
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import inspect
import logging
import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from hf_rerank.errors import HfRerankError, UsageError

logger = logging.getLogger("hf_rerank")

OPTIMIZERS = ("adamw", "lion")

#: Default betas per optimizer (AdamW: torch's default; Lion: the Lion paper's (0.9, 0.99)).
DEFAULT_BETAS = {"adamw": (0.9, 0.999), "lion": (0.9, 0.99)}

__all__ = [
    "OPTIMIZERS",
    "DEFAULT_BETAS",
    "ForeachLion",
    "OptimizerSpec",
    "SchedulerBindingError",
    "assert_scheduler_bound",
    "build_optimizer",
    "build_scheduler",
    "parameter_groups",
]


# ---------------------------------------------------------------------------------------------
# Parameter groups
# ---------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def _norm_layer_types() -> tuple[type, ...]:
    types: list[type] = [nn.LayerNorm, nn.GroupNorm, nn.LocalResponseNorm, nn.modules.batchnorm._NormBase]
    if hasattr(nn, "RMSNorm"):
        types.append(nn.RMSNorm)
    try:  # present in transformers 5.24 (== [nn.LayerNorm]); gone or extended in other versions
        from transformers.pytorch_utils import ALL_LAYERNORM_LAYERS

        types.extend(t for t in ALL_LAYERNORM_LAYERS if isinstance(t, type))
    except ImportError:  # pragma: no cover - depends on the transformers version
        pass
    return tuple(dict.fromkeys(types))


def _is_norm_module(module: nn.Module) -> bool:
    # Module types first; the class-name test catches model-specific norms
    # (LlamaRMSNorm, T5LayerNorm, DebertaLayerNorm, ...) that do not subclass a torch norm.
    return isinstance(module, _norm_layer_types()) or "Norm" in type(module).__name__


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Split ``model``'s trainable parameters into a decay and a no-decay group.

    No decay for: every parameter of a normalisation module (by type, or any module whose class
    name contains ``"Norm"``), every bias, and every parameter with fewer than 2 dimensions.
    Everything else (Linear/attention weights, embeddings, ...) is decayed. Only parameters with
    ``requires_grad`` are included; tied parameters appear once.

    Returns ``[{"name": "decay", "params": [...], "weight_decay": weight_decay},
    {"name": "no_decay", "params": [...], "weight_decay": 0.0}]``, always in that order (group 0,
    whose lr the HF Trainer logs, is the decay group). A group may be empty.
    """
    if weight_decay < 0 or not math.isfinite(weight_decay):
        raise ValueError(f"weight_decay must be finite and >= 0, got {weight_decay}")
    no_decay_ids: set[int] = set()
    for module in model.modules():
        is_norm = _is_norm_module(module)
        for local_name, param in module.named_parameters(recurse=False):
            if is_norm or local_name == "bias" or param.ndim < 2:
                no_decay_ids.add(id(param))
    decay, no_decay = [], []
    for _, param in model.named_parameters():  # deduplicated: tied weights once
        if not param.requires_grad:
            continue
        (no_decay if id(param) in no_decay_ids else decay).append(param)
    if not decay and not no_decay:
        raise ValueError(f"{type(model).__name__} has no trainable parameters (all requires_grad=False)")
    return [
        {"name": "decay", "params": decay, "weight_decay": float(weight_decay)},
        {"name": "no_decay", "params": no_decay, "weight_decay": 0.0},
    ]


# ---------------------------------------------------------------------------------------------
# Spec
# ---------------------------------------------------------------------------------------------


@dataclass
class OptimizerSpec:
    """What optimizer to build, and with which hyperparameters: the one place where an optimizer
    request is validated (training arguments build theirs at start-up,
    :meth:`~hf_rerank.training.arguments.RerankTrainingArguments.optimizer_spec`). A request that
    does not fit raises :class:`~hf_rerank.errors.UsageError` (a ``ValueError``) naming the option
    and what to use instead.

    ``lr`` and ``weight_decay`` are taken as given, except for Lion with ``lion_scaling=k``: then
    they are AdamW-style values and Lion gets ``lr / k`` and ``weight_decay * k`` (k >= 1).
    ``betas=None`` means the optimizer's default (:data:`DEFAULT_BETAS`). ``eps`` is AdamW's only.
    ``use_triton`` (Lion only) asks for lion-pytorch's Triton kernel; it is used only on CUDA
    parameters with ``triton`` importable, otherwise a warning is logged and the foreach (or
    for-loop) implementation is used. ``foreach``: ``None`` = fastest available (Lion: foreach;
    AdamW: fused, on CPUs too), ``True`` = foreach, ``False`` = per-parameter loop.
    """

    name: str = "adamw"
    lr: float = 2e-5
    weight_decay: float = 0.01
    betas: tuple[float, float] | None = None
    eps: float = 1e-8
    lion_scaling: float | None = None
    use_triton: bool = False
    foreach: bool | None = None

    def __post_init__(self) -> None:
        self.name = str(self.name).lower()
        if self.name not in OPTIMIZERS:
            raise UsageError(f"unknown optimizer {self.name!r}; choose one of {OPTIMIZERS}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise UsageError(f"lr must be finite and > 0, got {self.lr}")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise UsageError(f"weight_decay must be finite and >= 0, got {self.weight_decay}")
        if self.betas is not None:
            betas = tuple(float(b) for b in self.betas)
            if len(betas) != 2 or not all(0.0 <= b <= 1.0 for b in betas):
                raise UsageError(f"betas must be two values in [0, 1], got {self.betas}")
            self.betas = betas
        if not (math.isfinite(self.eps) and self.eps > 0):
            raise UsageError(f"eps must be finite and > 0, got {self.eps}")
        if self.lion_scaling is not None:
            if self.name != "lion":
                raise UsageError(
                    f"lion_scaling={self.lion_scaling} is only valid with the Lion optimizer, not {self.name!r}: "
                    "it converts AdamW-style lr and weight decay for Lion; use optimizer 'lion', or leave "
                    "lion_scaling unset"
                )
            k = float(self.lion_scaling)
            if not (math.isfinite(k) and k >= 1.0):
                raise UsageError(
                    f"lion_scaling must be >= 1 (Lion's lr is k times smaller and its weight decay k times "
                    f"larger than AdamW's; the Lion paper suggests k = 3..10), got {self.lion_scaling}"
                )
            self.lion_scaling = k
        if self.use_triton and self.name != "lion":
            raise UsageError(
                f"use_triton (lion-pytorch's Triton kernel; training argument lion_triton) is only valid with the "
                f"Lion optimizer, not {self.name!r}: use optimizer 'lion', or leave it off"
            )

    # Effective hyperparameters (after Lion scaling)
    @property
    def effective_lr(self) -> float:
        return self.lr / self.lion_scaling if self.lion_scaling else self.lr

    @property
    def effective_weight_decay(self) -> float:
        return self.weight_decay * self.lion_scaling if self.lion_scaling else self.weight_decay

    @property
    def effective_betas(self) -> tuple[float, float]:
        return self.betas if self.betas is not None else DEFAULT_BETAS[self.name]

    def effective(self, model: nn.Module | None = None) -> dict[str, Any]:
        """The hyperparameters the optimizer really uses, for logs and run metadata.

        With ``model``, also the implementation for its parameters' device and the number of
        parameter tensors (and elements) with and without decay; without it, the implementation
        assumes the model will be on CUDA iff CUDA is available, and the counts are ``None``.
        """
        scaled = self.lion_scaling is not None
        params = None
        groups = None
        if model is not None:
            groups = parameter_groups(model, self.effective_weight_decay)
            params = [p for g in groups for p in g["params"]]
        implementation, _ = _resolve_implementation(self, params)
        out: dict[str, Any] = {
            "name": self.name,
            "lr": self.effective_lr,
            "weight_decay": self.effective_weight_decay,
            "betas": self.effective_betas,
            "eps": self.eps if self.name == "adamw" else None,
            "lion_scaling": self.lion_scaling,
            "adamw_lr": self.lr if scaled else None,
            "adamw_weight_decay": self.weight_decay if scaled else None,
            "implementation": implementation,
            "n_params_decay": None,
            "n_params_no_decay": None,
            "n_elements_decay": None,
            "n_elements_no_decay": None,
        }
        if groups is not None:
            out.update(_group_counts(groups))
        return out


# ---------------------------------------------------------------------------------------------
# Optimizer
# ---------------------------------------------------------------------------------------------


def _triton_unavailable_reason(params: list[torch.Tensor] | None) -> str | None:
    """Why lion-pytorch's Triton kernel cannot be used here (None if it can).

    lion_pytorch.triton calls ``exit()`` when ``triton`` is missing, so it must never be imported
    without checking first.
    """
    on_cuda = all(p.is_cuda for p in params) if params else torch.cuda.is_available()
    if not torch.cuda.is_available():
        return "CUDA is not available"
    if not on_cuda:
        return "the parameters are not on CUDA"
    if importlib.util.find_spec("triton") is None:
        return "triton is not installed"
    try:
        importlib.import_module("triton")
        importlib.import_module("triton.language")
    except Exception as exc:  # broken install, driver mismatch, ...
        return f"triton cannot be imported ({type(exc).__name__}: {exc})"
    return None


def _lion_fallback(spec: OptimizerSpec) -> str:
    return "lion-pytorch for-loop" if spec.foreach is False or ForeachLion is None else "lion-pytorch foreach"


def _group_counts(groups: list[dict[str, Any]]) -> dict[str, int]:
    decay, no_decay = groups[0]["params"], groups[1]["params"]
    return {
        "n_params_decay": len(decay),
        "n_params_no_decay": len(no_decay),
        "n_elements_decay": sum(p.numel() for p in decay),
        "n_elements_no_decay": sum(p.numel() for p in no_decay),
    }


def _resolve_implementation(spec: OptimizerSpec, params: list[torch.Tensor] | None) -> tuple[str, str | None]:
    """(implementation label, reason the Triton kernel was refused or None)."""
    if spec.name == "lion":
        refused = None
        if spec.use_triton:
            refused = _triton_unavailable_reason(params)
            if refused is None:
                return "lion-pytorch triton", None
        return _lion_fallback(spec), refused
    if spec.foreach is None:
        return "torch.optim.AdamW (fused)", None
    if spec.foreach is False:
        return "torch.optim.AdamW (for-loop)", None
    return "torch.optim.AdamW (foreach)", None


try:  # lion-pytorch >= 0.2 ships a foreach variant
    from lion_pytorch.foreach import Lion as _LionForeachBase
except ImportError:  # pragma: no cover - depends on the installed lion-pytorch
    _LionForeachBase = None


if _LionForeachBase is not None:

    class ForeachLion(_LionForeachBase):
        """lion-pytorch's foreach Lion, skipping param groups in which no parameter has a gradient.

        lion-pytorch 0.2.5 calls ``torch._foreach_*`` on empty lists for such groups, which raises
        "Tensor list must have at least one tensor" (e.g. a group whose parameters were unused in
        the forward pass, or an empty no-decay group). The update itself is lion-pytorch's.
        """

        @torch.no_grad()
        def step(self, closure=None):
            loss = None
            if closure is not None:
                with torch.enable_grad():
                    loss = closure()
            groups = self.param_groups
            active = [g for g in groups if any(p.grad is not None for p in g["params"])]
            if len(active) == len(groups):
                super().step()
            elif active:
                self.param_groups = active
                try:
                    super().step()
                finally:
                    self.param_groups = groups
            return loss

else:  # pragma: no cover
    ForeachLion = None


def _lion(cls, groups, lr, betas, wd, **extra) -> torch.optim.Optimizer:
    # decoupled_weight_decay=False: decay p *= 1 - lr_group * wd (True would divide wd by the
    # constructor's lr, wrong for groups with another lr). Older lion-pytorch lacks the flag and
    # behaves like False.
    if "decoupled_weight_decay" in inspect.signature(cls.__init__).parameters:
        extra["decoupled_weight_decay"] = False
    return cls(groups, lr=lr, betas=betas, weight_decay=wd, **extra)


def build_optimizer(model: nn.Module, spec: OptimizerSpec) -> torch.optim.Optimizer:
    """Build the optimizer ``spec`` describes over ``model``'s trainable parameters.

    Two param groups (see :func:`parameter_groups`), decay with ``spec.effective_weight_decay``.
    Logs the effective hyperparameters at INFO on the ``hf_rerank`` logger.
    """
    if not isinstance(spec, OptimizerSpec):
        raise TypeError(f"spec must be an OptimizerSpec, got {type(spec).__name__}")
    lr, wd, betas = spec.effective_lr, spec.effective_weight_decay, spec.effective_betas
    groups = parameter_groups(model, wd)
    params = [p for g in groups for p in g["params"]]
    implementation, triton_refused = _resolve_implementation(spec, params)
    if triton_refused is not None:
        logger.warning("Lion: Triton kernel requested but %s; using %s instead", triton_refused, implementation)

    if spec.name == "lion":
        from lion_pytorch.lion_pytorch import Lion

        optimizer = None
        if implementation == "lion-pytorch triton":
            try:
                optimizer = _lion(Lion, groups, lr, betas, wd, use_triton=True)
            except (Exception, SystemExit) as exc:  # lion_pytorch.triton exit()s when triton is missing
                implementation = _lion_fallback(spec)
                logger.warning(
                    "Lion: Triton kernel could not be loaded (%s: %s); using %s instead",
                    type(exc).__name__,
                    exc,
                    implementation,
                )
        if optimizer is None:
            if implementation == "lion-pytorch foreach":
                optimizer = _lion(ForeachLion, groups, lr, betas, wd)
            else:
                optimizer = _lion(Lion, groups, lr, betas, wd, use_triton=False)
    else:
        fused = implementation.endswith("(fused)")
        optimizer = torch.optim.AdamW(
            groups,
            lr=lr,
            betas=betas,
            eps=spec.eps,
            weight_decay=wd,
            foreach=False if fused else implementation.endswith("(foreach)"),
            fused=fused,
        )

    counts = _group_counts(groups)
    if spec.lion_scaling is not None:
        logger.info(
            "Lion scaling k=%g: AdamW-style lr=%g, weight_decay=%g -> Lion lr=%g, weight_decay=%g (lr*wd=%g unchanged)",
            spec.lion_scaling,
            spec.lr,
            spec.weight_decay,
            lr,
            wd,
            lr * wd,
        )
    logger.info(
        "optimizer %s [%s]: lr=%g, weight_decay=%g, betas=%s%s; %d tensors (%d elements) with decay, "
        "%d tensors (%d elements) without",
        spec.name,
        implementation,
        lr,
        wd,
        tuple(betas),
        f", eps={spec.eps:g}" if spec.name == "adamw" else "",
        counts["n_params_decay"],
        counts["n_elements_decay"],
        counts["n_params_no_decay"],
        counts["n_elements_no_decay"],
    )
    return optimizer


# ---------------------------------------------------------------------------------------------
# Scheduler
# ---------------------------------------------------------------------------------------------


class SchedulerBindingError(HfRerankError, RuntimeError):
    """The LR scheduler drives another optimizer than the one that trains."""


def _unwrap_optimizer(optimizer: Any) -> Any:
    """Strip wrappers that hold the real optimizer in ``.optimizer`` (accelerate's AcceleratedOptimizer)."""
    seen = set()
    while isinstance(getattr(optimizer, "optimizer", None), torch.optim.Optimizer) and id(optimizer) not in seen:
        seen.add(id(optimizer))
        optimizer = optimizer.optimizer
    return optimizer


def _describe(optimizer: Any) -> str:
    return f"{type(optimizer).__name__} at {id(optimizer):#x}"


def assert_scheduler_bound(scheduler: Any, optimizer: torch.optim.Optimizer) -> None:
    """Raise :class:`SchedulerBindingError` unless ``scheduler`` drives ``optimizer``.

    Wrappers exposing the wrapped optimizer as ``.optimizer`` (accelerate's AcceleratedOptimizer,
    which the HF Trainer puts around its optimizer) are looked through on both sides.
    """
    if optimizer is None:
        raise SchedulerBindingError("no training optimizer given to check the scheduler against")
    bound = getattr(scheduler, "optimizer", None)
    if bound is None:
        raise SchedulerBindingError(f"{type(scheduler).__name__} has no .optimizer; cannot tell what it drives")
    if bound is optimizer:
        return
    inner_bound, inner_opt = _unwrap_optimizer(bound), _unwrap_optimizer(optimizer)
    if inner_bound is not inner_opt:
        raise SchedulerBindingError(
            f"the LR scheduler ({type(scheduler).__name__}) drives {_describe(inner_bound)}, but training "
            f"steps {_describe(inner_opt)}: the schedule would never reach the training optimizer"
        )


def build_scheduler(
    optimizer: torch.optim.Optimizer,
    name: str,
    num_warmup_steps: int | None,
    num_training_steps: int | None,
    scheduler_specific_kwargs: dict | None = None,
):
    """``transformers.get_scheduler(name, optimizer, ...)`` for exactly this ``optimizer``.

    ``optimizer`` is required (no default, no global); the result is checked with
    :func:`assert_scheduler_bound` before it is returned.
    """
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"build_scheduler needs the optimizer it must drive, got {type(optimizer).__name__}")
    from transformers import get_scheduler

    scheduler = get_scheduler(
        name,
        optimizer=optimizer,
        num_warmup_steps=num_warmup_steps,
        num_training_steps=num_training_steps,
        scheduler_specific_kwargs=scheduler_specific_kwargs,
    )
    assert_scheduler_bound(scheduler, optimizer)
    return scheduler
