"""``hf-rerank evaluate`` end to end: on the shared TREC DL data, on bad input, and its help."""

import json
import sys

import pytest

from hf_rerank.cli import main
from tests import processes


def test_first_stage_scores_as_the_data_readme_says(trec_dl, tmp_path, capsys):
    assert main(["evaluate", "--data", str(trec_dl / "dl19"), "--run", "bm25", "--output", str(tmp_path)]) == 0
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert {k: round(v, 4) for k, v in saved["metrics"].items()} == {
        "ndcg@10": 0.5058,
        "map@100-l2": 0.2476,
        "mrr@10-l2": 0.7024,
        "recall@100-l2": 0.4910,
    }
    assert saved["first_stage"] == saved["metrics"]
    assert (saved["model"], saved["run"], saved["depth"], saved["queries"]) == (None, "bm25", 100, 43)
    assert "grade >= 2" in saved["convention"]
    assert len((tmp_path / "run.trec").read_text().splitlines()) == 4300
    assert "0.5058" in capsys.readouterr().out


def test_dl20_and_the_paper_convention(trec_dl, capsys):
    assert main(["evaluate", "--data", str(trec_dl / "dl20"), "--run", "bm25", "--metrics", "trec-dl", "--quiet"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["ndcg@10"] == pytest.approx(0.4796, abs=5e-5)
    assert main(["evaluate", "--data", str(trec_dl / "dl19"), "--run", "bm25", "--metrics", "paper", "--quiet"]) == 0
    paper = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert set(paper) == {"ndcg@10", "map", "mrr", "precision@10", "recall@100", "recall@1000", "ndcg"}


def test_reranks_with_a_cross_encoder_checkpoint(trec_dl, tiny_cross_encoder_dir, tmp_path, capsys):
    code = main(
        [
            "evaluate",
            "--data",
            str(trec_dl / "dl19"),
            "--run",
            "bm25",
            "--model",
            str(tiny_cross_encoder_dir),
            "--depth",
            "5",
            "--precision",
            "fp32",
            "--quiet",
            "--output",
            str(tmp_path),
        ]
    )
    assert code == 0
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["pairs"] == 43 * 5 and saved["pairs_per_second"] > 0
    assert saved["first_stage"]["recall@100-l2"] == pytest.approx(0.4910, abs=5e-5)
    # only the top-5 are reordered, so recall@100 cannot change
    assert saved["metrics"]["recall@100-l2"] == pytest.approx(saved["first_stage"]["recall@100-l2"])
    assert set(saved["significance"]["ndcg@10"]) == {"delta", "p_t_test", "p_randomisation"}
    assert "reranked top-5" in capsys.readouterr().out


@pytest.mark.slow
def test_bundled_minilm_bi_encoder_on_dl19(trec_dl, tmp_path):
    """all-MiniLM-L6-v2 reranking DL19 BM25 top-100: sentence-transformers gives nDCG@10 0.6424 on this input."""
    assert (
        main(
            [
                "evaluate",
                "--data",
                str(trec_dl / "dl19"),
                "--run",
                "bm25",
                "--model",
                "sentence-transformers/all-MiniLM-L6-v2",
                "--quiet",
                "--output",
                str(tmp_path),
            ]
        )
        == 0
    )
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["metrics"]["ndcg@10"] == pytest.approx(0.6424, abs=0.005)
    assert saved["significance"]["ndcg@10"]["p_t_test"] < 0.05


def test_bad_input_exits_2_naming_file_and_line(tmp_path, capsys):
    (tmp_path / "runs").mkdir()
    (tmp_path / "queries.tsv").write_text("1\tcats\n")
    (tmp_path / "collection.tsv").write_text("a\tcats live long\n")
    (tmp_path / "qrels.txt").write_text("1 0 a 2\n1 0 b two\n")
    (tmp_path / "runs" / "bm25.run").write_text("1 Q0 a 1 1.0 x\n")
    assert main(["evaluate", "--data", str(tmp_path), "--run", "bm25"]) == 2
    assert f"{tmp_path / 'qrels.txt'}:2: grade must be an integer, found 'two'" in capsys.readouterr().err
    (tmp_path / "qrels.txt").write_text("1 0 a 2\n")
    assert main(["evaluate", "--data", str(tmp_path), "--run", "tasb"]) == 2
    assert "no run 'tasb' (runs: bm25)" in capsys.readouterr().err
    assert main(["evaluate", "--data", str(tmp_path / "nowhere"), "--run", "bm25"]) == 2
    assert "unknown collection" in capsys.readouterr().err


def test_run_for_unjudged_queries_is_a_counted_warning(tmp_path, capsys, caplog):
    (tmp_path / "runs").mkdir()
    (tmp_path / "queries.tsv").write_text("1\tcats\n2\tdogs\n")
    (tmp_path / "collection.tsv").write_text("a\tcats live long\nb\tdogs bark\n")
    (tmp_path / "qrels.txt").write_text("1 0 a 2\n")
    (tmp_path / "runs" / "bm25.run").write_text("1 Q0 a 1 1.0 x\n2 Q0 b 1 1.0 x\n")
    assert main(["evaluate", "--data", str(tmp_path), "--run", "bm25", "--output", str(tmp_path / "out")]) == 0
    saved = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert saved["queries"] == 1 and any("1 queries with no judgments" in w for w in saved["warnings"])


def test_console_script_help_teaches():
    done = processes.run([sys.executable, "-m", "hf_rerank.cli", "evaluate", "--help"], timeout=120)
    assert done.returncode == 0, done.stderr
    for words in ("--data", "--depth", "examples:", "trec-dl:", "grade >= 2"):
        assert words in done.stdout


def test_train_embedding_help_lists_the_lora_and_loss_arguments(capsys):
    from hf_rerank.cli import main

    assert main(["train-embedding", "--help"]) == 0
    shown = capsys.readouterr().out
    for flag in (
        "--lora_r",
        "--lora_target_modules",
        "--negatives",
        "--mine_window",
        "--temperature",
        "--retrieval_data",
    ):
        assert flag in shown


@pytest.mark.parametrize(
    ("command", "own", "other"),
    [("train", "--judged_pairs", "--retrieval_data"), ("train-embedding", "--retrieval_data", "--judged_pairs")],
)
def test_each_train_command_shows_its_own_runs_arguments(capsys, command, own, other):
    assert main([command, "--help"]) == 0
    shown = capsys.readouterr().out
    assert shown.startswith(f"usage: hf-rerank {command} [-h]")
    assert own in shown and "--eval_metrics" in shown and other not in shown


@pytest.mark.parametrize(
    ("command", "module", "function", "data_class"),
    [
        ("train", "run_cross_encoder", "train_cross_encoder", "DataArguments"),
        ("train-embedding", "run_embedding", "train_embedding", "EmbeddingDataArguments"),
    ],
)
def test_each_train_command_parses_its_flags_into_its_runs_arguments(
    monkeypatch, tmp_path, command, module, function, data_class
):
    import importlib

    run = importlib.import_module(f"hf_rerank.training.{module}")
    calls = []
    monkeypatch.setattr(run, function, lambda *arguments: calls.append(arguments))
    flags = ["--output_dir", str(tmp_path), "--use_cpu", "true", "--eval_name", "mine", "--seed", "5"]
    assert main([command, *flags]) == 0
    [(_, data_args, training_args)] = calls
    assert type(data_args) is getattr(run, data_class) and data_args.eval_name == "mine"
    assert training_args.seed == 5


def test_output_problems_stop_before_any_work(tmp_path, capsys):
    # the model does not exist: each problem must be reported before anything is loaded
    base = ["evaluate", "--data", "sample", "--run", "bm25", "--model", str(tmp_path / "no-such-model")]
    (tmp_path / "a-file").write_text("x")
    assert main([*base, "--output", str(tmp_path / "a-file")]) == 2
    assert "a-file: exists and is not a directory" in capsys.readouterr().err
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "metrics.json").write_text("{}")
    assert main([*base, "--output", str(tmp_path / "used")]) == 2
    assert "already holds metrics.json; pass --overwrite" in capsys.readouterr().err
    for depth in ("0", "-5"):
        assert main([*base, "--depth", depth]) == 2
        assert f"--depth must be >= 1, got {depth}" in capsys.readouterr().err


def test_overwrite_replaces_both_files_together(tmp_path):
    out = tmp_path / "out"
    assert main(["evaluate", "--data", "sample", "--run", "bm25", "--quiet", "--output", str(out)]) == 0
    (out / "notes.txt").write_text("mine")
    assert main(["evaluate", "--data", "sample", "--run", "bm25", "--quiet", "--output", str(out), "--depth", "5"]) == 2
    assert (
        main(
            [
                "evaluate",
                "--data",
                "sample",
                "--run",
                "bm25",
                "--quiet",
                "--output",
                str(out),
                "--depth",
                "5",
                "--overwrite",
            ]
        )
        == 0
    )
    assert json.loads((out / "metrics.json").read_text())["depth"] == 5
    assert (out / "notes.txt").read_text() == "mine"  # what else the directory holds is kept
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging left behind
