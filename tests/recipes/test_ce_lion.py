"""recipes/ce_lion.py: configs, overrides, the offline stop, artifacts, and two processes."""

import json
import os
import re
import sys
import time
from pathlib import Path

import pytest
import yaml

from hf_rerank.training.config import parse_args
from tests import processes

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "recipes" / "configs"
sys.path.insert(0, str(ROOT / "recipes"))
import ce_lion  # noqa: E402


def parse(*argv):
    return parse_args(ce_lion.make_parser(), list(argv))


def test_one_config_per_paper_run():
    for backbone in ("minilm", "gte", "modernbert"):
        for optimizer in ("lion", "adamw"):
            model, data, args = parse("--config", str(CONFIGS / f"paper_{backbone}_{optimizer}.yaml"))
            assert args.optimizer == optimizer and args.loss == "bce"
            assert (args.per_device_train_batch_size, args.num_train_epochs, args.seed) == (64, 3, 12)
            assert args.precision == "auto"  # bf16 on the papers' GPUs, fp32 on a CPU without native bf16
            assert args.weight_decay == 0.01 and args.warmup_steps == 0.1
            assert args.learning_rate == (2e-6 if (backbone, optimizer) == ("modernbert", "lion") else 2e-5)
            assert args.lr_scheduler_type.value == ("cosine" if backbone == "modernbert" else "linear")
            assert model.trust_remote_code == (backbone == "gte")
            assert (data.train_data, data.eval_name, data.eval_depth) == (
                ["sentence-transformers/msmarco"],
                "dl19",
                1000,
            )
            if optimizer == "lion":
                assert (args.lion_beta1, args.lion_beta2) == (0.9, 0.99)


def test_command_line_overrides_the_config(tmp_path):
    _, data, args = parse(
        "--config",
        str(CONFIGS / "offline_minilm_dl20_lion.yaml"),
        "--max_steps",
        "20",
        "--output_dir",
        str(tmp_path),
        "--seed",
        "1",
    )
    assert (args.max_steps, args.output_dir, args.seed) == (20, str(tmp_path), 1)
    assert args.optimizer == "lion" and data.train_data == ["../shared/data/trec-dl/dl20"]


def test_unknown_config_key_is_named(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text(yaml.safe_dump({"learning_rat": 1e-5}))
    with pytest.raises(SystemExit, match="unknown argument.*learning_rat"):
        parse("--config", str(config))


def test_no_arguments_stops_at_once_naming_the_offline_config():
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    started = time.monotonic()
    done = processes.run([sys.executable, str(ROOT / "recipes" / "ce_lion.py")], timeout=120, cwd=ROOT, env=env)
    assert done.returncode != 0
    assert "offline_minilm_dl20_lion.yaml" in done.stderr
    assert "sentence-transformers/msmarco" in done.stderr
    assert time.monotonic() - started < 60


@pytest.mark.slow
def test_recipe_writes_artifacts_and_callback_equals_standalone_evaluate(tmp_path, capsys):
    from hf_rerank.cli import main as cli

    out = tmp_path / "run"
    summary = ce_lion.main(
        [
            "--config",
            str(CONFIGS / "demo_sample.yaml"),
            "--max_steps",
            "2",
            "--precision",
            "fp32",
            "--eval_strategy",
            "steps",
            "--eval_steps",
            "2",
            "--eval_on_start",
            "false",
            "--output_dir",
            str(out),
        ]
    )
    saved = json.loads((out / "metrics.json").read_text())
    assert saved == json.loads(json.dumps(summary))
    assert set(saved["eval"]["sample"]) == {"ndcg@10", "map@100-l2", "mrr@10-l2", "recall@100-l2"}
    assert saved["optimizer"]["name"] == "lion" and saved["optimizer"]["lion_scaling"] == 3.0
    assert saved["optimizer"]["lr"] == pytest.approx(1e-4 / 3)
    assert saved["train_seconds"] > 0 and saved["train_samples_per_second"] > 0
    assert saved["precision"] == "fp32" and saved["precision_reason"].startswith("fp32, as asked (CPU flags: ")
    assert saved["efficiency"]["matmul_peak_seconds"] < 5  # the peak measurement keeps to its budget
    history = json.loads((out / "log_history.json").read_text())
    callback = next(entry for entry in history if "eval_sample_ndcg@10" in entry)
    assert callback["step"] == 2
    assert (out / "eval_sample" / "run.trec").is_file()
    # the callback, the final evaluation and `hf-rerank evaluate` on the saved checkpoint agree
    assert (
        cli(
            [
                "evaluate",
                "--data",
                "sample-test",
                "--run",
                "bm25",
                "--model",
                str(out),
                "--depth",
                "50",
                "--precision",
                "fp32",
                "--quiet",
                "--output",
                str(tmp_path / "cli"),
            ]
        )
        == 0
    )
    standalone = json.loads((tmp_path / "cli" / "metrics.json").read_text())["metrics"]
    for metric, value in standalone.items():
        assert callback[f"eval_sample_{metric}"] == pytest.approx(value, abs=1e-6)
        assert saved["eval"]["sample"][metric] == pytest.approx(value, abs=1e-6)


@pytest.mark.slow
def test_two_cpu_processes_train_identical_weights(tmp_path):
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        str(ROOT / "recipes" / "ce_lion.py"),
        "--config",
        str(CONFIGS / "demo_sample.yaml"),
        "--max_steps",
        "3",
        "--use_cpu",
        "true",
        "--eval_strategy",
        "steps",
        "--eval_steps",
        "3",
        "--eval_on_start",
        "false",
        "--logging_steps",
        "1",
        "--output_dir",
        str(tmp_path),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    done = processes.run(command, timeout=600, cwd=ROOT, env=env)
    log = done.stdout + done.stderr
    assert done.returncode == 0, log[-3000:]
    assert "world size: 2 (process 0)" in log and "world size: 2 (process 1)" in log
    fingerprints = dict(re.findall(r"process (\d): final weights sha256 ([0-9a-f]{64})", log))
    assert set(fingerprints) == {"0", "1"} and fingerprints["0"] == fingerprints["1"]
    history = json.loads((tmp_path / "log_history.json").read_text())
    losses = [entry["loss"] for entry in history if "loss" in entry]
    assert losses and all(loss == loss and abs(loss) < 1e3 for loss in losses)
    # the IR callback scored its pairs in two shards and reported once
    sharded = next(entry for entry in history if "eval_sample_ndcg@10" in entry)
    final = json.loads((tmp_path / "metrics.json").read_text())["eval"]["sample"]["ndcg@10"]
    assert sharded["eval_sample_ndcg@10"] == pytest.approx(final, abs=0.02)  # same weights; bf16 batches differ
    assert json.loads((tmp_path / "metrics.json").read_text())["world_size"] == 2
