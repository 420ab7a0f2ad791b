"""Model FLOPs of training a transformer encoder (:class:`TransformerFlops`).

Per sequence of ``n`` real tokens, ``(4 N + 2 N_trainable) n + 12 H sum_layers pairs_l(n)``;
``N`` is the number of non-embedding parameters (every parameter not owned by an
``nn.Embedding``), ``H`` the hidden size, and ``pairs_l(n)`` the (query, key) pairs layer ``l``
attends: ``n^2`` for global attention, fewer for a sliding window. With every weight trained this
is PaLM's ``6 N + 12 L H T`` per token (Chowdhery et al. 2022, appendix B; the ``6 N`` is Kaplan et
al. 2020, section 2.1): 2 FLOPs per weight per token forward, 4 backward (2 for the input gradient,
2 for the weight gradient, which frozen weights skip), and per layer two ``n x n x H`` matmuls
(``QK^T``, ``AV``) at 2 FLOPs per multiply-add, times 3 for forward plus backward. Padding is not
useful work and is not counted. Norms, activations, softmax and the head's per-sequence work are
not counted either (a classification head applied to one token per sequence is counted per token:
< 1.5% too much for MiniLM-L6, < 0.5% for ModernBERT-base).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from torch import nn

FLOPS_FORMULA = (
    "(4 N + 2 N_trainable) x real tokens + 12 H x attended (query, key) pairs per layer "
    "(PaLM appendix B; Kaplan et al. 2020): 6 N + 12 L H T per token with every weight trained"
)


@dataclass(frozen=True)
class TransformerFlops:
    """Training FLOPs of a transformer encoder (see the module docstring for the formula).

    Attributes:
        non_embedding_parameters: N, parameters not owned by an ``nn.Embedding``.
        trainable_non_embedding_parameters: those of them with ``requires_grad``.
        hidden_size: H.
        windows: per layer, ``None`` for global attention, or ``w`` for a bidirectional sliding
            window in which a token attends to the tokens at distance <= ``w``.
    """

    non_embedding_parameters: int
    trainable_non_embedding_parameters: int
    hidden_size: int
    windows: tuple[int | None, ...]

    @classmethod
    def from_model(cls, model: nn.Module) -> TransformerFlops:
        """Read N from ``model``'s parameters and H, the layers and their attention windows from
        its config (``hidden_size``, ``num_hidden_layers``; ``layer_types`` with
        ``sliding_attention`` layers and ``sliding_window``, as ModernBERT has).

        Raises:
            ValueError: the config has no ``hidden_size`` or ``num_hidden_layers``.
        """
        config = getattr(model, "config", None)
        hidden = getattr(config, "hidden_size", None)
        layers = getattr(config, "num_hidden_layers", None)
        if hidden is None or layers is None:
            raise ValueError(f"{type(model).__name__}: its config gives no hidden_size and num_hidden_layers")
        embedding = {
            id(p) for module in model.modules() if isinstance(module, nn.Embedding) for p in module.parameters()
        }
        parameters = [p for p in model.parameters() if id(p) not in embedding]
        layer_types = getattr(config, "layer_types", None) or ["full_attention"] * layers
        window = getattr(config, "sliding_window", None)
        windows = tuple(window if kind == "sliding_attention" and window is not None else None for kind in layer_types)
        return cls(
            non_embedding_parameters=sum(p.numel() for p in parameters),
            trainable_non_embedding_parameters=sum(p.numel() for p in parameters if p.requires_grad),
            hidden_size=int(hidden),
            windows=windows,
        )

    def training_flops(self, lengths: np.ndarray) -> float:
        """FLOPs of one forward and backward pass over sequences of ``lengths`` real tokens."""
        n = np.asarray(lengths, dtype=np.float64)
        dense = (4 * self.non_embedding_parameters + 2 * self.trainable_non_embedding_parameters) * n.sum()
        pairs = 0.0
        for window in self.windows:
            if window is None:
                pairs += float((n * n).sum())
            else:  # each token, itself plus up to `window` tokens on either side
                m = np.minimum(window, np.maximum(n - 1, 0))
                pairs += float((n + 2 * (m * n - m * (m + 1) / 2)).sum())
        return float(dense + 12 * self.hidden_size * pairs)
