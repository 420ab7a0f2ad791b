"""The offline distillation recipe against its control, several seeds, on DL19 (the test set).

Runs, skipping any whose ``metrics.json`` already exists (an interrupted sweep resumes):

1. nothing, and stops, if the config's teacher runs are missing: make them first with
   ``recipes/prepare_distillation.py`` (the command at the top of the config);
2. the bi-encoder all-MiniLM-L6-v2 reranking DL19's BM25 top-100 (``hf-rerank evaluate``), and the
   DL20 teacher's recipe applied to DL19 (the same ranx fusion of the bi-encoder with SPLADE++,
   TAS-B and ada-002): the teachers' DL19 scores, evaluation only;
3. per seed, ``--config`` (default ``recipes/configs/offline_minilm_dl20_distill.yaml``; distilled)
   and, unless ``--no-control``, the same recipe without the teacher (control:
   ``offline_minilm_dl20_adamw.yaml`` with the distilled run's group size, batch, steps, learning
   rate, schedule and length, learning from DL20's judgments, the only labels there are).

Prints mean ± sd over seeds of DL19 nDCG@10, MAP@100-l2 and MRR@10-l2, training seconds, and paired
tests on per-query nDCG@10 averaged over seeds: distilled vs BM25, vs the bi-encoder, vs the
control, and vs the distilled runs of each earlier sweep named with ``--against OUTPUT`` (same
seeds; two recipes compared) (t-test and Fisher randomisation). Writes the same as JSON to
``OUTPUT/summary.json``.

    .venv/bin/python benchmarks/distillation_dl19.py --seeds 12 13 14 [--output outputs/distill_seeds]
    .venv/bin/python benchmarks/distillation_dl19.py --config recipes/configs/offline_minilm_dl20_distill_msmarco.yaml \
        --no-control --output outputs/distill_msmarco_seeds
    .venv/bin/python benchmarks/distillation_dl19.py \
        --config recipes/configs/offline_minilm_dl20_distill_msmarco_1430q.yaml \
        --no-control --output outputs/distill_1430q_seeds --against outputs/distill_msmarco_seeds
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "recipes"))
CONFIGS = ROOT / "recipes" / "configs"
DATA = ROOT.parent / "shared" / "data" / "trec-dl"
METRICS = ("ndcg@10", "map@100-l2", "mrr@10-l2")
SHARED = (
    "group_size",
    "per_device_train_batch_size",
    "learning_rate",
    "warmup_steps",
    "lr_scheduler_type",
    "max_length",
    "weight_decay",
    "optimizer",
    "logging_steps",
)


def train(name: str, seed: int, output: Path, config: Path, extra: list[str]) -> dict:
    """Train one recipe (``distill``: ``config``, or ``control``) with ``seed``; returns its metrics.json object."""
    import ce_lion
    import yaml

    directory = output / f"{name}-seed{seed}"
    if not (directory / "metrics.json").is_file():
        distill = yaml.safe_load(config.read_text())
        if name == "distill":
            argv = ["--config", str(config)]
        else:  # the same steps and hyperparameters, without the teacher: DL20's judged lists
            steps = json.loads((output / f"distill-seed{seed}" / "metrics.json").read_text())["global_steps"]
            argv = [
                "--config",
                str(CONFIGS / "offline_minilm_dl20_adamw.yaml"),
                "--max_steps",
                str(steps),
                *[item for key in SHARED for item in (f"--{key}", str(distill[key]))],
            ]
        ce_lion.main(
            [*argv, "--seed", str(seed), "--output_dir", str(directory), "--overwrite_output_dir", "true", *extra]
        )
    return json.loads((directory / "metrics.json").read_text())


def first_stage_and_teachers(output: Path) -> dict[str, dict[str, float]]:
    """DL19 nDCG@10 per query of BM25, of the bi-encoder reranking BM25's top-100, and of the DL20
    teacher's fusion recipe applied to DL19's runs (evaluation only: nothing here trains)."""
    from hf_rerank.cli import main as cli
    from hf_rerank.data.formats import read_qrels, read_run
    from hf_rerank.evaluation.fusion import fuse_runs, normalise_run
    from hf_rerank.evaluation.metrics import evaluate_run, get_metric_set

    directory = output / "bi-encoder-dl19"
    if not (directory / "metrics.json").is_file():
        cli(
            [
                "evaluate",
                "--data",
                str(DATA / "dl19"),
                "--run",
                "bm25",
                "--model",
                "sentence-transformers/all-MiniLM-L6-v2",
                "--depth",
                "100",
                "--output",
                str(directory),
                "--overwrite",
                "--quiet",
            ]
        )
    runs = {
        "bi-encoder": read_run(directory / "run.trec"),
        **{name: read_run(DATA / "dl19" / "runs" / f"{name}.run") for name in ("splade_pp", "tasb", "ada2")},
    }
    fused = normalise_run(fuse_runs(runs, method="wsum", norm="min-max"), "min-max")
    qrels = read_qrels(DATA / "dl19" / "qrels.txt")

    def per_query(run: dict) -> dict[str, float]:
        return evaluate_run(qrels, run, get_metric_set("trec-dl")).per_query["ndcg@10"]

    return {
        "BM25": per_query(read_run(DATA / "dl19" / "runs" / "bm25.run")),
        "bi-encoder": per_query(runs["bi-encoder"]),
        "fusion teacher": per_query(fused),
    }


def evaluation_file(sweep: Path, name: str, seed: int) -> Path:
    """The DL19 evaluation (``metrics.json`` with ``per_query``) of run ``name`` (``distill`` or
    ``control``) with ``seed`` in the sweep written to ``sweep``."""
    return sweep / f"{name}-seed{seed}" / "eval_dl19" / "metrics.json"


def seed_averaged_ndcg(sweep: Path, name: str, seeds: list[int]) -> dict[str, float]:
    """``{query id: DL19 nDCG@10 averaged over seeds}`` of run ``name`` in the sweep written to ``sweep``."""
    by_seed = [json.loads(evaluation_file(sweep, name, seed).read_text())["per_query"]["ndcg@10"] for seed in seeds]
    return {qid: statistics.mean(scores[qid] for scores in by_seed) for qid in by_seed[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[12, 13, 14])
    parser.add_argument("--output", type=Path, default=ROOT / "outputs" / "distill_seeds")
    parser.add_argument("--config", type=Path, default=CONFIGS / "offline_minilm_dl20_distill.yaml")
    parser.add_argument("--no-control", action="store_true", help="train only the distilled recipe")
    parser.add_argument(
        "--against",
        type=Path,
        action="append",
        default=[],
        metavar="OUTPUT",
        help="an earlier sweep's output directory: its distilled runs of the same seeds become a baseline "
        "of the paired tests (repeatable)",
    )
    args, extra = parser.parse_known_args()
    extra = [flag for flag in extra if flag != "--"]

    import yaml

    from hf_rerank.data.formats import atomic_write
    from hf_rerank.evaluation.significance import compare

    missing = [name for name in yaml.safe_load(args.config.read_text())["teacher"] if not (ROOT / name).is_file()]
    if missing:
        parser.error(
            f"teacher runs missing: {', '.join(missing)}; make them with the command at the top of {args.config}"
        )
    earlier = [evaluation_file(sweep, "distill", seed) for sweep in args.against for seed in args.seeds]
    if missing := [str(path) for path in earlier if not path.is_file()]:
        parser.error(f"--against: no DL19 evaluation at {', '.join(missing)}; run that sweep with the same --seeds")
    references = first_stage_and_teachers(args.output)
    names = ("distill",) if args.no_control else ("distill", "control")
    runs = {name: {seed: train(name, seed, args.output, args.config, extra) for seed in args.seeds} for name in names}
    summary: dict = {
        "seeds": args.seeds,
        "references_dl19_ndcg@10": {k: round(statistics.mean(v.values()), 4) for k, v in references.items()},
    }
    print(f"\nDL19 BM25 top-100 reranked; seeds {args.seeds}; mean ± sd over seeds")
    print(f"{'':<12}" + "".join(f"{m:>18}" for m in METRICS) + f"{'train s':>10}")
    for name, by_seed in runs.items():
        cells = []
        for metric in METRICS:
            values = [run["eval"]["dl19"][metric] for run in by_seed.values()]
            sd = round(statistics.stdev(values), 4) if len(values) > 1 else None  # one seed: no spread
            summary[f"{name}_{metric}"] = {
                "mean": round(statistics.mean(values), 4),
                "sd": sd,
                "values": [round(v, 4) for v in values],
            }
            cells.append(f"{statistics.mean(values):.4f}" + ("" if sd is None else f" ± {sd:.4f}"))
        seconds = statistics.mean(run["train_seconds"] for run in by_seed.values())
        summary[f"{name}_train_seconds"] = round(seconds, 1)
        print(f"{name:<12}" + "".join(f"{c:>18}" for c in cells) + f"{seconds:>10.0f}")
    print(
        "references on DL19 (nDCG@10): " + ", ".join(f"{k} {v}" for k, v in summary["references_dl19_ndcg@10"].items())
    )
    averaged = {name: seed_averaged_ndcg(args.output, name, args.seeds) for name in runs}
    baselines = {"control": averaged["control"]} if "control" in runs else {}
    baselines.update({sweep.name: seed_averaged_ndcg(sweep, "distill", args.seeds) for sweep in args.against})
    for label, baseline in {**baselines, **references}.items():
        t_test = compare(baseline, {"distill": averaged["distill"]}, test="t-test")["distill"]
        randomised = compare(baseline, {"distill": averaged["distill"]}, test="randomisation")["distill"]
        summary[f"distill_vs_{label}"] = {
            "delta": round(t_test.delta, 4),
            "p_t_test": round(t_test.p_value, 4),
            "p_randomisation": round(randomised.p_value, 4),
        }
        print(
            f"distill vs {label}: nDCG@10 delta {t_test.delta:+.4f}, t-test p {t_test.p_value:.4f}, "
            f"randomisation p {randomised.p_value:.4f}"
        )
    for name, by_seed in runs.items():
        for seed, run in by_seed.items():
            significance = run["significance"]["dl19"]["ndcg@10"]
            print(
                f"  {name} seed {seed}: nDCG@10 {run['eval']['dl19']['ndcg@10']:.4f}, "
                f"vs BM25 {significance['delta']:+.4f} "
                f"(t-test p {significance['p_t_test']:.4f}), {run['global_steps']} steps, {run['train_seconds']:.0f} s"
            )
    with atomic_write(args.output / "summary.json") as handle:
        handle.write(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
