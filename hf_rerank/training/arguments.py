"""Training arguments: what a run is, declared once (``TrainingArguments`` subclasses).

Field names are command-line flags of the recipes (``--optimizer lion --lion_scaling 3``) and keys
of their YAML configs. transformers' own ``optim`` field is not used: its only Lion is
bitsandbytes' 8/32-bit one (CUDA only); ``optimizer`` here selects hf-rerank's factory
(``hf_rerank.optim``), which builds lion-pytorch's Lion or torch's AdamW with the same
parameter groups and logs the effective hyperparameters; its ``OptimizerSpec`` validates the
optimizer options when the arguments are built (``RerankTrainingArguments.optimizer_spec``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from transformers import TrainingArguments

from hf_rerank.losses import EMBEDDING_LOSSES, LOSSES, Loss, build_loss, describe_losses
from hf_rerank.optim import OptimizerSpec
from hf_rerank.precision import Precision, PrecisionError, choose_precision
from hf_rerank.training.efficiency.mixin import EfficiencyArguments


@dataclass
class TeacherArguments:
    """Where a distilled run's targets come from; the data arguments of both runs include these."""

    teacher: list[str] | None = field(
        default=None,
        metadata={
            "help": "distill from these scored runs: run names of the training data or TREC run files "
            "(hf-rerank score / fuse), one teacher per query; examples become lists of the teacher's candidates"
        },
    )
    teacher_depth: int | None = field(
        default=None, metadata={"help": "teacher: candidates per query taken from the teacher's top (default: all)"}
    )
    groups_per_query: int = field(
        default=1,
        metadata={"help": "teacher: lists drawn per query per epoch (each the teacher's best + a fresh sample)"},
    )

    def __post_init__(self):
        if isinstance(self.teacher, str):  # one teacher given as a plain string (Python callers, YAML scalars)
            self.teacher = [self.teacher]


@dataclass
class RerankTrainingArguments(EfficiencyArguments, TrainingArguments):
    """Arguments shared by every hf-rerank trainer (the optimizer factory, LoRA, precision, the score
    losses' options, and the speed settings transformers' ``TrainingArguments`` lacks:
    ``optimizer_foreach``, ``fast_cpu_dropout``)."""

    optimizer_foreach: bool = field(
        default=True,
        metadata={
            "help": "vectorised optimizer update (Lion: lion-pytorch foreach; AdamW: torch's fused kernel, "
            "CPUs included); false: one parameter at a time"
        },
    )
    fast_cpu_dropout: bool = field(
        default=True,
        metadata={
            "help": "training on a CPU: dropout masks from NumPy's PCG64 instead of torch's single-threaded "
            "Bernoulli, and attention computed eagerly so that its dropout uses them too (same "
            "distribution, p rounded to 1/65536; hf_rerank.training.cpu_dropout); no effect on GPUs"
        },
    )
    optimizer: str = field(
        default="adamw", metadata={"help": "lion or adamw (hf-rerank's factory; `optim` is ignored)"}
    )
    lion_beta1: float = field(default=0.9, metadata={"help": "Lion beta1 (interpolation of momentum and gradient)"})
    lion_beta2: float = field(default=0.99, metadata={"help": "Lion beta2 (momentum decay)"})
    lion_scaling: float | None = field(
        default=None,
        metadata={
            "help": "treat learning_rate/weight_decay as AdamW-style and use lr/k, wd*k for Lion "
            "(the Lion paper: k = 3-10)"
        },
    )
    lion_triton: bool = field(
        default=False, metadata={"help": "use lion-pytorch's Triton kernel (CUDA + triton only; else falls back)"}
    )
    hub_allow_overwrite: bool = field(
        default=False,
        metadata={"help": "with --push_to_hub: replace the files of an existing repository (default: refuse)"},
    )
    lora_r: int | None = field(
        default=None,
        metadata={
            "help": "train LoRA adapters of this rank instead of all weights "
            "(a cross-encoder's classification head trains fully; arXiv 2506.18535: 16)"
        },
    )
    lora_alpha: float = field(default=32.0, metadata={"help": "LoRA alpha (update scaled by alpha / r)"})
    lora_dropout: float = field(default=0.1, metadata={"help": "LoRA dropout"})
    lora_target_modules: list[str] = field(
        default_factory=lambda: ["query", "value"],
        metadata={"help": "modules that get adapters (BERT: query key value dense)"},
    )
    overwrite_output_dir: bool = field(
        default=False,
        metadata={
            "help": "train into a non-empty --output_dir by first removing what is in it (default: refuse, "
            "unless --resume_from_checkpoint continues the run there)"
        },
    )
    precision: str = field(
        default="auto",
        metadata={
            "help": "auto (default): bf16 where the hardware computes it natively (CUDA Ampere+, CPUs with "
            "AVX512-BF16 or AMX), else fp32; bf16 or fp16: refused where they would be emulated; fp32. "
            "--bf16 true / --fp16 true are read as --precision bf16 / fp16"
        },
    )
    loss_temperature: float | None = field(
        default=None, metadata={"help": "listwise, kl: scores are divided by it (default 1.0)"}
    )
    loss_margin: float | None = field(default=None, metadata={"help": "margin: the score gap required (default 1.0)"})
    loss_scale: float | None = field(
        default=None, metadata={"help": "mse, margin_mse: teacher scores are multiplied by it (default 1.0)"}
    )
    loss_max_grade: float | None = field(
        default=None,
        metadata={
            "help": "bce: the grade that is target 1.0 "
            "(default 1.0; with graded_labels the highest grade of the training labels)"
        },
    )
    loss_gain: str | None = field(
        default=None, metadata={"help": "lambdaloss: linear (as the metrics, default) or exponential (2**grade - 1)"}
    )
    loss_k: int | None = field(
        default=None,
        metadata={"help": "lambdaloss: pairs count when one side is in the student's top k (default: all)"},
    )
    group_size: int = field(
        default=8,
        metadata={
            "help": "passages per list for grouped losses at most: 1 positive (or the teacher's best) "
            "+ group_size-1 others; shorter lists are padded and masked"
        },
    )

    def loss_options(self) -> dict:
        """The ``--loss_*`` options that were set, ``{option: value}`` for :func:`~hf_rerank.losses.build_loss`."""
        names = ("temperature", "margin", "scale", "max_grade", "gain", "k")
        return {name: getattr(self, f"loss_{name}") for name in names if getattr(self, f"loss_{name}") is not None}

    def build_score_loss(self) -> Loss:
        """The registered score loss named by the subclass's ``loss`` field, with the ``--loss_*`` options set;
        ``ValueError`` naming the valid losses, or the flags that loss takes, when either is wrong."""
        try:
            return build_loss(self.loss, **self.loss_options())
        except ValueError as error:
            raise ValueError(str(error).replace("has no option ", "has no option --loss_")) from None

    @property
    def compute_precision(self) -> str:
        """``bf16``, ``fp16`` or ``fp32``: what the model computes in, as decided at start-up (training,
        and scoring with the model being trained)."""
        return self.precision_choice.name

    def __post_init__(self):
        from hf_rerank.hub.push_callback import HubSettings

        # hf-rerank publishes (private by default, our card, checkpoint branches), never the Trainer:
        # --push_to_hub/--hub_model_id/--hub_strategy are read here and the Trainer's own push is off.
        self.hub_settings = HubSettings.from_training_args(self)
        self.push_to_hub = False
        self.precision_choice = self._decide_precision()
        self.bf16, self.fp16 = self.compute_precision == "bf16", self.compute_precision == "fp16"
        if self.bf16 and self.precision_choice.device_type == "cpu":
            self.use_cpu = True  # transformers allows bf16 on a CPU only when told it is one
        super().__post_init__()
        self.optimizer = self.optimizer_spec().name  # validated by the factory's spec, name as the factory spells it

    def optimizer_spec(self) -> OptimizerSpec:
        """The optimizer these arguments ask for, as :func:`~hf_rerank.optim.build_optimizer` takes it
        (before Lion scaling is applied): ``optimizer``, ``learning_rate``, ``weight_decay``, the betas
        of the chosen optimizer (``lion_beta*`` or ``adam_beta*``), ``adam_epsilon``, ``lion_scaling``,
        ``lion_triton``, ``optimizer_foreach`` (false: one parameter at a time; true: the fastest
        available). :class:`~hf_rerank.errors.UsageError` from :class:`~hf_rerank.optim.OptimizerSpec` when
        they do not fit."""
        lion = str(self.optimizer).lower() == "lion"
        return OptimizerSpec(
            name=self.optimizer,
            lr=self.learning_rate,
            weight_decay=self.weight_decay,
            betas=(self.lion_beta1, self.lion_beta2) if lion else (self.adam_beta1, self.adam_beta2),
            eps=self.adam_epsilon,
            lion_scaling=self.lion_scaling,
            use_triton=self.lion_triton,
            foreach=None if self.optimizer_foreach else False,
        )

    def _decide_precision(self) -> Precision:
        """:func:`~hf_rerank.precision.choose_precision` for ``precision`` (``bf16``/``fp16`` flags
        count as requests) on the device training will use; a refusal names the flag to change."""
        requested = self.precision
        for flag in ("bf16", "fp16"):
            if getattr(self, flag):
                if requested not in ("auto", flag):
                    raise ValueError(f"--{flag} true contradicts --precision {requested}: give only --precision")
                requested = flag
        device_type = "cpu" if self.use_cpu or not torch.cuda.is_available() else "cuda"
        try:
            return choose_precision(requested, device_type)
        except PrecisionError as exc:
            source = (
                f"--{requested} true (a config's `{requested}: true`)"
                if getattr(self, requested, False)
                else f"--precision {requested}"
            )
            raise PrecisionError(f"{source}: {exc}") from None


@dataclass
class CrossEncoderTrainingArguments(RerankTrainingArguments):
    """A cross-encoder run: loss, sequence length (the ``--loss_*`` options and ``group_size`` are shared)."""

    loss: str = field(default="bce", metadata={"help": "the loss (hf_rerank.losses): " + describe_losses()})
    max_length: int = field(
        default=512, metadata={"help": "tokens per (query, passage) pair; the passage is truncated, never the query"}
    )
    length_bucketing: bool = field(
        default=True, metadata={"help": "batch examples of similar length together (less padding)"}
    )

    def __post_init__(self):
        super().__post_init__()
        self.build_score_loss()


@dataclass
class EmbeddingTrainingArguments(RerankTrainingArguments):
    """A bi-encoder (embedding model) run: loss, sequence length, batching, optional LoRA."""

    loss: str = field(
        default="mnrl",
        metadata={
            "help": "mnrl (in-batch negatives InfoNCE, plus the example's negative if any), triplet, or a "
            "score loss of hf_rerank.losses on the cosine scores of lists of a --teacher's candidates "
            "(options --loss_*, lists of --group_size): " + describe_losses()
        },
    )
    temperature: float = field(
        default=0.05,
        metadata={"help": "mnrl: cosine similarities are divided by it (0.05 = sentence-transformers' scale 20)"},
    )
    distance: str = field(
        default="euclidean", metadata={"help": "triplet: euclidean or cosine (arXiv 2506.18535: euclidean)"}
    )
    margin: float = field(
        default=5.0, metadata={"help": "triplet: margin (arXiv 2506.18535 / sentence-transformers: 5)"}
    )
    max_length: int = field(
        default=256, metadata={"help": "tokens per query or passage (arXiv 2506.18535: 256, LoRA 512)"}
    )
    no_duplicate_queries: bool = field(
        default=True,
        metadata={"help": "mnrl: batches never hold one query twice (its positives would be false negatives)"},
    )
    length_bucketing: bool = field(
        default=True,
        metadata={
            "help": "batch examples of similar length together (less padding; mnrl: within batches of distinct queries)"
        },
    )
    length_chunks: bool = field(
        default=True,
        metadata={
            "help": "on CPUs: encode each batch's texts in chunks of similar length, each padded to its own longest "
            "(same embeddings, less padding); GPUs encode one padded batch per field"
        },
    )
    length_chunk_overhead: int = field(
        default=256,
        metadata={
            "help": "length_chunks: what one more forward pass costs, in padded tokens "
            "(256: fastest of 128-1024 for all-MiniLM-L6-v2 on the README's 2-core CPU)"
        },
    )
    gather_across_devices: bool = field(
        default=False,
        metadata={"help": "mnrl under DDP: every process's passages are negatives for every query (with gradients)"},
    )

    @property
    def chunk_overhead_tokens(self) -> int | None:
        """The collator's ``chunk_overhead_tokens``: ``length_chunk_overhead`` when ``length_chunks``
        is on and training runs on a CPU, else ``None`` (one chunk per field)."""
        return self.length_chunk_overhead if self.length_chunks and self.device.type == "cpu" else None

    def __post_init__(self):
        super().__post_init__()
        if self.loss in EMBEDDING_LOSSES:
            if self.loss_options():
                raise ValueError(
                    f"--loss_{', --loss_'.join(self.loss_options())} configure the score losses, not {self.loss}: "
                    "mnrl takes --temperature, triplet --distance and --margin"
                )
        elif self.loss in LOSSES:
            self.build_score_loss()
        else:
            raise ValueError(
                f"loss must be {', '.join(EMBEDDING_LOSSES)} or a score loss ({', '.join(LOSSES)}) for "
                f"embedding models, got {self.loss!r}"
            )
        if self.length_chunk_overhead < 0:
            raise ValueError(f"length_chunk_overhead must be >= 0 tokens, got {self.length_chunk_overhead}")
        if self.distance not in ("euclidean", "cosine"):
            raise ValueError(f"distance must be 'euclidean' or 'cosine', got {self.distance!r}")
