"""Fine-tune an embedding model in several variants and compare them with the base: the second seed
paper (arXiv 2506.18535).

    python recipes/paper2_variants.py --config recipes/configs/paper2_offline.yaml
    python recipes/paper2_variants.py --config recipes/configs/paper2_offline.yaml --variants full_random --max_steps 10
    accelerate launch recipes/paper2_variants.py --config recipes/configs/paper2_msmarco.yaml

A config holds the shared settings (every argument of ``hf-rerank train-embedding``) and a
``variants`` mapping ``name -> overrides``. The base model is evaluated untrained (row
``base``), then each variant is trained into ``OUTPUT_DIR/<name>/`` by
:func:`~hf_rerank.training.run_embedding.train_embedding`. Written to ``OUTPUT_DIR``:

- ``variants.json``: one row per model (base first): ``{"variant", "eval": {name: {metric:
  value}}, "significance_vs_base": {name: {metric: {"delta", "p_t_test", "p_holm"}}},
  "train_seconds", "inference_seconds", "trainable_parameters", "total_parameters",
  "embedding_space", "lora", "settings"}``; p-values are paired t-tests over queries,
  Holm-corrected across the variants;
- ``variants.md``: the same as a table; ``umap.png``: UMAP panels of every model's embeddings of
  the same (query, positive) pairs, with shared axes.

Into each variant's own directory, so that its model card needs nothing outside it: the comparison
with the base model in its ``metrics.json`` (``base_comparison``: the base model's scores and, per
metric, paired t-test and randomisation test of the variant against it, uncorrected, from both
per-query scores; ``base_embedding_space``), a copy of ``umap.png``, and the card rendered again with them.

Arguments after the config override it for every variant (e.g. ``--max_steps 10``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import shutil
import sys
from pathlib import Path

import numpy as np
import yaml
from transformers import HfArgumentParser

from hf_rerank.data.formats import atomic_write
from hf_rerank.data.sources import SourceUnavailableError
from hf_rerank.evaluation.significance import compare
from hf_rerank.hub.render import write_model_card
from hf_rerank.models.bi_encoder import BiEncoder
from hf_rerank.training.arguments import EmbeddingTrainingArguments
from hf_rerank.training.base_comparison import compare_with_base
from hf_rerank.training.config import config_to_argv
from hf_rerank.training.record import RunRecord
from hf_rerank.training.run_embedding import (
    EmbeddingDataArguments,
    EmbeddingModelArguments,
    evaluate_embedding_model,
    train_embedding,
)

CONFIGS = Path(__file__).resolve().parent / "configs"
DEFAULT_CONFIG = CONFIGS / "paper2_msmarco.yaml"
OFFLINE_CONFIG = CONFIGS / "paper2_offline.yaml"
TABLE_METRICS = ("ndcg@10", "map@100-l2", "mrr@10-l2")
DENSE_METRICS = ("ndcg@10", "recall@100-l2")

logger = logging.getLogger("hf_rerank")


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Configs: " + ", ".join(sorted(p.name for p in CONFIGS.glob("paper2_*.yaml"))),
    )
    parser.add_argument(
        "--config", type=Path, default=DEFAULT_CONFIG, help=f"YAML config (default: {DEFAULT_CONFIG.name})"
    )
    parser.add_argument(
        "--variants", help="comma-separated subset of the config's variants (default: all); base is always evaluated"
    )
    parser.add_argument(
        "--convert",
        type=Path,
        metavar="ROOT",
        help="train nothing: bring a recipe output written before metrics.json had a schema_version (ROOT holds "
        "variants.json, umap.png, base/ and one directory per variant) up to date: store each variant's comparison "
        "with the base model in its metrics.json, copy umap.png beside it, render its card again",
    )
    return parser


def hf_parser() -> HfArgumentParser:
    return HfArgumentParser((EmbeddingModelArguments, EmbeddingDataArguments, EmbeddingTrainingArguments))


def load_config(path: Path) -> tuple[dict, dict[str, dict]]:
    """``(shared settings, {variant: overrides})`` from a recipe config; unknown keys are named."""
    if not path.is_file():
        raise SystemExit(f"--config {path}: no such file")
    config = yaml.safe_load(path.read_text()) or {}
    variants = config.pop("variants", None)
    if not isinstance(variants, dict) or not variants:
        raise SystemExit(f"{path}: needs a 'variants' mapping of name -> settings")
    known = {action.dest for action in hf_parser()._actions}
    for where, settings in [("shared settings", config), *((f"variant {n!r}", v or {}) for n, v in variants.items())]:
        unknown = sorted(set(settings) - known)
        if unknown:
            raise SystemExit(f"{path}: {where}: unknown argument(s) {', '.join(unknown)}")
    if "base" in variants:
        raise SystemExit(f"{path}: 'base' is the untrained model's row; name the variants otherwise")
    return config, {name: settings or {} for name, settings in variants.items()}


def significance_vs_base(rows: list[dict], per_query: dict[str, dict]) -> None:
    """Add ``significance_vs_base`` to each variant row: paired t-test per metric, Holm across variants."""
    base = per_query["base"]
    names = [row["variant"] for row in rows[1:]]
    for evaluation, metrics in base.items():
        for metric in metrics:
            results = compare(base[evaluation][metric], {name: per_query[name][evaluation][metric] for name in names})
            for row in rows[1:]:
                result = results[row["variant"]]
                row.setdefault("significance_vs_base", {}).setdefault(evaluation, {})[metric] = {
                    "delta": result.delta,
                    "p_t_test": result.p_value,
                    "p_holm": result.p_holm,
                }


def record_base_comparison(variant_dir: Path, base_dir: Path, base_space: dict, umap: Path) -> None:
    """Put what the variant's card says about the base model into the variant's directory: for each of its
    evaluations, the comparison with the base model's evaluation in ``base_dir/eval_<name>/``
    (:func:`~hf_rerank.training.base_comparison.compare_with_base`), ``base_space`` (the base model's
    embedding-space numbers) as ``base_embedding_space``, and a copy of ``umap``; then render its card again."""
    record = RunRecord.load(variant_dir / "metrics.json")
    comparison = {
        name: compare_with_base(variant_dir, name, json.loads((base_dir / f"eval_{name}" / "metrics.json").read_text()))
        for name in record.eval
        if (base_dir / f"eval_{name}" / "metrics.json").is_file()
    }
    record = dataclasses.replace(record, base_comparison=comparison or None, base_embedding_space=base_space)
    record.write(variant_dir / "metrics.json")
    shutil.copyfile(umap, variant_dir / umap.name)
    write_model_card(variant_dir, kind=record.kind)


def read_per_query(output_dir: Path, evaluations: list[str]) -> dict[str, dict]:
    return {
        name: json.loads((output_dir / f"eval_{name}" / "metrics.json").read_text())["per_query"]
        for name in evaluations
    }


def table(rows: list[dict], eval_name: str) -> str:
    """Markdown table: rerank and dense metrics (with Holm-corrected p vs base), times, parameters, space numbers."""
    dense = f"{eval_name}_dense"
    header = (
        ["variant"]
        + [f"{eval_name} {m}" for m in TABLE_METRICS]
        + [f"dense {m}" for m in DENSE_METRICS]
        + ["train s", "inference s", "trainable params", "anisotropy", "eff. rank", "alignment", "uniformity"]
    )
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:

        def cell(evaluation, metric):
            value = row["eval"][evaluation][metric]
            test = row.get("significance_vs_base", {}).get(evaluation, {}).get(metric)
            return f"{value:.4f}" + (
                "" if test is None else f" (p={test['p_holm']:.3g}{'*' if test['p_holm'] < 0.05 else ''})"
            )

        space = row["embedding_space"]
        lines.append(
            "| "
            + " | ".join(
                [
                    row["variant"],
                    *(cell(eval_name, m) for m in TABLE_METRICS),
                    *(cell(dense, m) for m in DENSE_METRICS),
                    f"{row['train_seconds']:.0f}",
                    f"{sum(row['inference_seconds'].values()):.0f}",
                    f"{row['trainable_parameters']:,}",
                    f"{space['anisotropy']:.3f}",
                    f"{space['effective_rank']:.1f}",
                    f"{space['alignment']:.3f}",
                    f"{space['uniformity']:.3f}",
                ]
            )
            + " |"
        )
    return (
        "\n".join(lines)
        + "\n\np: paired t-test against base over queries, Holm-corrected across variants; * p < 0.05.\n"
    )


def convert(root: Path) -> list[Path]:
    """Store the base comparison in every variant of an existing recipe output ``root`` (the layout ``main``
    writes: ``variants.json``, ``umap.png``, ``base/eval_<name>/`` and ``<variant>/eval_<name>/``), as ``main``
    does after training; returns the variants' directories."""
    if not (root / "variants.json").is_file():
        raise SystemExit(f"--convert {root}: no variants.json (not an output of this recipe)")
    rows = json.loads((root / "variants.json").read_text())
    for row in rows[1:]:
        record_base_comparison(root / row["variant"], root / "base", rows[0]["embedding_space"], root / "umap.png")
    return [root / row["variant"] for row in rows[1:]]


def main(argv: list[str] | None = None) -> list[dict]:
    argv = sys.argv[1:] if argv is None else argv
    logging.basicConfig(level=logging.INFO, format="%(asctime)s hf_rerank: %(message)s")
    options, overrides = make_parser().parse_known_args(argv)
    if options.convert:
        for variant_dir in convert(options.convert):
            print(f"converted {variant_dir}")
        return []
    shared, variants = load_config(options.config)
    if options.variants:
        chosen = options.variants.split(",")
        unknown = [name for name in chosen if name not in variants]
        if unknown:
            raise SystemExit(f"unknown variant(s) {', '.join(unknown)}; the config has {', '.join(variants)}")
        variants = {name: variants[name] for name in chosen}

    def arguments(name: str, settings: dict):
        model_args, data_args, training_args = hf_parser().parse_args_into_dataclasses(
            args=config_to_argv({**shared, **settings}, str(options.config)) + overrides
        )
        root = Path(training_args.output_dir)
        training_args.output_dir = str(root / name)
        return root, model_args, data_args, training_args

    root, model_args, data_args, training_args = arguments("base", {})
    rows, per_query, spaces = [], {}, {}
    evaluations = [data_args.eval_name, f"{data_args.eval_name}_dense"]
    try:
        if training_args.process_index == 0:
            base_dir = Path(training_args.output_dir)
            encoder = BiEncoder.from_pretrained(
                model_args.model_name_or_path,
                max_length=training_args.max_length,
                precision=training_args.compute_precision,
            )
            base = evaluate_embedding_model(encoder, data_args, base_dir, model_name=model_args.model_name_or_path)
            rows.append(
                {
                    "variant": "base",
                    "eval": base["eval"],
                    "train_seconds": 0.0,
                    "inference_seconds": base["inference_seconds"],
                    "trainable_parameters": 0,
                    "total_parameters": sum(p.numel() for p in encoder.model.parameters()),
                    "embedding_space": base["embedding_space"],
                    "lora": None,
                    "settings": {},
                }
            )
            per_query["base"] = base["per_query"]
            spaces["base"] = base_dir / "space_embeddings.npz"
        for name, settings in variants.items():
            _, model_args, data_args, training_args = arguments(name, settings)
            summary = train_embedding(model_args, data_args, training_args)
            if training_args.process_index == 0:
                output_dir = Path(training_args.output_dir)
                rows.append(
                    {
                        "variant": name,
                        "eval": summary["eval"],
                        "train_seconds": summary["train_seconds"],
                        "inference_seconds": summary["inference_seconds"],
                        "trainable_parameters": summary["trainable_parameters"],
                        "total_parameters": summary["total_parameters"],
                        "embedding_space": summary["embedding_space"],
                        "lora": summary["lora"],
                        "settings": settings,
                        "regressed_at_steps": summary["regressed_at_steps"],
                    }
                )
                per_query[name] = read_per_query(output_dir, evaluations)
                spaces[name] = output_dir / "space_embeddings.npz"
    except SourceUnavailableError as error:
        raise SystemExit(
            f"{error}\n\nMS MARCO cannot be reached from here. Run the offline variants instead:\n"
            f"  python recipes/paper2_variants.py --config {OFFLINE_CONFIG}"
        ) from None
    if training_args.process_index != 0:
        return []
    per_query["base"] = read_per_query(root / "base", evaluations)
    if len(rows) > 1:
        significance_vs_base(rows, per_query)
    with atomic_write(root / "variants.json") as handle:
        json.dump(rows, handle, indent=2)
    markdown = table(rows, data_args.eval_name)
    with atomic_write(root / "variants.md") as handle:
        handle.write(markdown)
    print(markdown)
    from hf_rerank.analysis.umap_figure import umap_figure

    embeddings = {name: tuple(np.load(path)[key] for key in ("queries", "passages")) for name, path in spaces.items()}
    umap_figure(
        embeddings,
        root / "umap.png",
        title=f"UMAP of {len(embeddings['base'][0])} {data_args.eval_name} (query, positive) pairs per model",
        stats={row["variant"]: row["embedding_space"] for row in rows},
    )
    for row in rows[1:]:
        record_base_comparison(root / row["variant"], root / "base", rows[0]["embedding_space"], root / "umap.png")
    print(f"wrote {root / 'variants.json'}, {root / 'variants.md'} and {root / 'umap.png'}")
    return rows


if __name__ == "__main__":
    main()
