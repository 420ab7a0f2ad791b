"""Lion vs AdamW, several seeds: the offline DL20 -> DL19 cross-encoder runs, with significance.

Runs ``recipes/ce_lion.py`` with ``recipes/configs/offline_minilm_dl20_{lion,adamw}.yaml`` once
per optimizer and seed (skipping runs whose ``metrics.json`` already exists, so an interrupted
sweep resumes), then prints, per optimizer, the mean and standard deviation over seeds of DL19
nDCG@10, MAP@100-l2 and MRR@10-l2, train seconds and samples/s; each run's paired t-test
against BM25; and Lion vs AdamW compared on per-query scores averaged over seeds (paired t-test
and randomisation test). Last line: JSON.

    .venv/bin/python benchmarks/offline_ce_seeds.py --seeds 12 13 14 \\
        --output outputs/offline_seeds [-- extra recipe flags]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "recipes"))

METRICS = ("ndcg@10", "map@100-l2", "mrr@10-l2")


def run_once(optimizer: str, seed: int, output: Path, extra: list[str]) -> Path:
    import ce_lion

    directory = output / f"{optimizer}-seed{seed}"
    if not (directory / "metrics.json").is_file():
        ce_lion.main(
            [
                "--config",
                str(ROOT / "recipes" / "configs" / f"offline_minilm_dl20_{optimizer}.yaml"),
                "--seed",
                str(seed),
                "--output_dir",
                str(directory),
                *extra,
            ]
        )
    return directory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[12, 13, 14])
    parser.add_argument("--optimizers", nargs="+", default=["lion", "adamw"])
    parser.add_argument("--output", type=Path, default=ROOT / "outputs" / "offline_seeds")
    args, extra = parser.parse_known_args()
    extra = [flag for flag in extra if flag != "--"]

    from hf_rerank.evaluation.significance import compare

    rows, per_query = {}, {}
    for optimizer in args.optimizers:
        for seed in args.seeds:
            directory = run_once(optimizer, seed, args.output, extra)
            summary = json.loads((directory / "metrics.json").read_text())
            report = json.loads((directory / "eval_dl19" / "metrics.json").read_text())
            rows[optimizer, seed] = summary
            per_query[optimizer, seed] = report["per_query"]

    print(f"\nDL19 BM25 top-100 reranked; {len(args.seeds)} seeds {args.seeds}; mean ± standard deviation over seeds")
    print(f"{'optimizer':<8} " + " ".join(f"{m:>17}" for m in METRICS) + f" {'train s':>12} {'samples/s':>10}")
    first = next(iter(rows.values()))["first_stage"]["dl19"]
    print(f"{'BM25':<8} " + " ".join(f"{first[m]:>17.4f}" for m in METRICS))
    result = {}
    for optimizer in args.optimizers:
        runs = [rows[optimizer, seed] for seed in args.seeds]
        cells = []
        for metric in METRICS:
            values = [run["eval"]["dl19"][metric] for run in runs]
            spread = statistics.stdev(values) if len(values) > 1 else 0.0
            cells.append(f"{statistics.mean(values):.4f} ± {spread:.4f}")
            result[f"{optimizer}_{metric}_mean"] = round(statistics.mean(values), 4)
        seconds = statistics.mean(run["train_seconds"] for run in runs)
        speed = statistics.mean(run["train_samples_per_second"] for run in runs)
        print(f"{optimizer:<8} " + " ".join(f"{c:>17}" for c in cells) + f" {seconds:>12.1f} {speed:>10.2f}")
        for seed, run in zip(args.seeds, runs):
            significance = run["significance"]["dl19"]["ndcg@10"]
            print(
                f"    seed {seed}: nDCG@10 {run['eval']['dl19']['ndcg@10']:.4f} vs BM25 {significance['delta']:+.4f} "
                f"(t-test p {significance['p_t_test']:.4f}); "
                f"lr {run['optimizer']['lr']:.2e}, wd {run['optimizer']['weight_decay']}"
            )
    if len(args.optimizers) == 2:
        a, b = args.optimizers
        for metric in METRICS:
            averaged = {
                name: {
                    qid: statistics.mean(per_query[name, seed][metric][qid] for seed in args.seeds)
                    for qid in per_query[name, args.seeds[0]][metric]
                }
                for name in (a, b)
            }
            t_test = compare(averaged[b], {a: averaged[a]}, test="t-test")[a]
            randomised = compare(averaged[b], {a: averaged[a]}, test="randomisation")[a]
            print(
                f"{a} vs {b} on {metric} (per-query means over seeds): delta {t_test.delta:+.4f}, "
                f"t-test p {t_test.p_value:.4f}, randomisation p {randomised.p_value:.4f}"
            )
            result[f"{a}_vs_{b}_{metric}_p_t_test"] = round(t_test.p_value, 4)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
