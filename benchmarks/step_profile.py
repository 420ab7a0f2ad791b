"""Where a MiniLM cross-encoder training step's time goes on this CPU, and what each speed-up buys.

One process, the bundled all-MiniLM-L6-v2 with a fresh seeded one-logit head (``--model
modernbert``: a random ModernBERT of MiniLM's size instead: hidden 384, 6 layers, 6 heads, FFN
1152, sliding windows of 128 tokens in two layers of three, no dropout, its defaults), one synthetic batch
(``--batch`` rows of ``--length`` tokens, the last ``--padding`` positions of each padded), autocast
to ``--precision`` (``auto``: bf16 where the CPU has it natively, else fp32, as training decides;
printed with the CPU's flags), BCE on the logit, lr 2e-5; per variant a fresh copy of the model and optimizer, 2
warm-up steps, then ``--steps`` timed steps (forward, backward, optimizer step, zero_grad):

- ``torch-dropout-sdpa``: transformers' default (SDPA attention; torch's dropout), foreach AdamW;
- ``no-dropout-sdpa``: every dropout probability 0 (SDPA can then use its flash kernel), foreach AdamW;
- ``fast-dropout-eager``: :func:`hf_rerank.training.cpu_dropout.use_fast_cpu_dropout`, foreach AdamW;
- ``fast-dropout-eager-fused``: the same with torch's fused AdamW (hf-rerank's defaults);
- ``no-dropout-eager-fused``: eager attention without any dropout: the floor of this route.

``--variants`` times only those named. Prints ms per step, sequences/s, the model's FLOP/s
(``TransformerFlops``: real tokens only) and MFU against the matmul peak of that precision measured
first; ``--profile VARIANT`` adds torch.profiler's table of the
operators that took the most time in two more steps of that variant.

    .venv/bin/python benchmarks/step_profile.py [--batch 32] [--length 96] [--padding 6] [--steps 6]
        [--profile torch-dropout-sdpa] [--model modernbert] [--precision auto] [--variants V ...]
"""

from __future__ import annotations

import argparse
import copy
import time

import torch
import torch.nn.functional as F
import transformers
from transformers import AutoModelForSequenceClassification, ModernBertConfig, ModernBertForSequenceClassification

from hf_rerank.models.resolve import bundled_model_path
from hf_rerank.precision import PRECISIONS, PrecisionError, choose_precision
from hf_rerank.training.cpu_dropout import use_fast_cpu_dropout
from hf_rerank.training.efficiency.flops import TransformerFlops
from hf_rerank.training.efficiency.peak import measure_matmul_peak

VARIANTS = (
    "torch-dropout-sdpa",
    "no-dropout-sdpa",
    "fast-dropout-eager",
    "fast-dropout-eager-fused",
    "no-dropout-eager-fused",
)


def prepare(base, variant: str):
    """A copy of ``base`` set up as ``variant`` says, and its AdamW."""
    model = copy.deepcopy(base).train()
    if variant.startswith("no-dropout"):
        for module in model.modules():
            if isinstance(module, torch.nn.Dropout):
                module.p = 0.0
        model.config.attention_probs_dropout_prob = 0.0
    if "eager" in variant:
        use_fast_cpu_dropout(model)
    fused = variant.endswith("fused")
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-5, weight_decay=0.01, fused=fused, foreach=not fused)
    return model, optimizer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=("minilm", "modernbert"), default="minilm")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--length", type=int, default=96)
    parser.add_argument("--padding", type=int, default=6, help="padded positions at the end of every row")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--profile", choices=VARIANTS, help="print torch.profiler's top operators for this variant")
    parser.add_argument("--precision", choices=PRECISIONS, default="auto")
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS), help="time only these")
    args = parser.parse_args()
    if args.profile and args.profile not in args.variants:
        parser.error(f"--profile {args.profile}: that variant is not among --variants")
    transformers.logging.set_verbosity_error()

    try:
        precision = choose_precision(args.precision, "cpu")
    except PrecisionError as error:
        parser.error(str(error))
    print(precision.reason)
    peak = measure_matmul_peak("cpu", precision.dtype)
    print(
        f"{precision.name} matmul peak {peak.flops_per_second / 1e9:.1f} GFLOP/s (median round "
        f"{peak.median_flops_per_second / 1e9:.1f}); torch threads {torch.get_num_threads()}"
    )
    torch.manual_seed(12)
    if args.model == "modernbert":
        base = ModernBertForSequenceClassification(
            ModernBertConfig(
                vocab_size=50368,
                hidden_size=384,
                num_hidden_layers=6,
                num_attention_heads=6,
                intermediate_size=1152,
                max_position_embeddings=max(1024, args.length),
                num_labels=1,
                pad_token_id=0,
            )
        )
    else:
        base = AutoModelForSequenceClassification.from_pretrained(bundled_model_path(), num_labels=1)
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(1000, 20000, (args.batch, args.length), generator=generator)
    mask = torch.ones(args.batch, args.length, dtype=torch.long)
    mask[:, args.length - args.padding :] = 0
    labels = torch.randint(0, 2, (args.batch,), generator=generator).float()
    flops = TransformerFlops.from_model(base).training_flops(mask.sum(dim=1).numpy())

    for variant in args.variants:
        model, optimizer = prepare(base, variant)

        def step():
            with torch.autocast("cpu", dtype=precision.dtype, enabled=precision.dtype != torch.float32):
                logits = model(input_ids=ids, attention_mask=mask).logits.squeeze(-1)
            F.binary_cross_entropy_with_logits(logits.float(), labels).backward()
            optimizer.step()
            optimizer.zero_grad()

        for _ in range(2):
            step()
        start = time.perf_counter()
        for _ in range(args.steps):
            step()
        seconds = (time.perf_counter() - start) / args.steps
        print(
            f"{variant:<26} {seconds * 1000:7.0f} ms/step  {args.batch / seconds:6.1f} sequences/s  "
            f"{flops / seconds / 1e9:6.1f} GFLOP/s  "
            f"MFU {flops / seconds / peak.flops_per_second:.1%}",
            flush=True,
        )
        if variant == args.profile:
            from torch.profiler import ProfilerActivity, profile

            with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as profiled:
                for _ in range(2):
                    step()
            print(profiled.key_averages(group_by_input_shape=True).table(sort_by="self_cpu_time_total", row_limit=25))


if __name__ == "__main__":
    main()
