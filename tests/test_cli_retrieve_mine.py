"""``hf-rerank retrieve`` and ``hf-rerank mine`` end to end on the bundled sample with a tiny BERT."""

import json
import logging

import pytest

from hf_rerank.cli import main
from hf_rerank.data.mining import read_negatives
from hf_rerank.data.sources import load_collection


def test_retrieve_writes_metrics_and_run_and_reuses_the_cache(tiny_encoder_dir, tmp_path, capsys, caplog):
    command = ["retrieve", "--model", str(tiny_encoder_dir), "--data", "sample", "--k", "20", "--precision", "fp32",
               "--cache-dir", str(tmp_path / "cache"), "--quiet", "--output", str(tmp_path / "out")]
    assert main(command) == 0
    saved = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert (saved["run"], saved["depth"], saved["queries"], saved["corpus"]) == ("dense", 20, 30, 300)
    assert set(saved["metrics"]) == {"ndcg@10", "map@100-l2", "mrr@10-l2", "recall@100-l2"}
    lines = (tmp_path / "out" / "run.trec").read_text().splitlines()
    assert len(lines) == 30 * 20 and lines[0].split()[3] == "1"
    assert "dense retrieval top-20" in capsys.readouterr().out
    assert len(list((tmp_path / "cache").glob("corpus-*.pt"))) == 1
    assert main(command) == 2  # the report is there: refused before any work
    assert "already holds metrics.json and run.trec; pass --overwrite" in capsys.readouterr().err
    with caplog.at_level(logging.INFO, logger="hf_rerank"):
        assert main([*command, "--overwrite"]) == 0
    assert "loaded 300 embeddings from cache" in caplog.text
    assert (tmp_path / "out" / "run.trec").read_text().splitlines() == lines


def test_retrieve_over_a_union_and_its_conflicts(tiny_encoder_dir, tmp_path, capsys):
    sample = load_collection("sample")
    qids = list(sample.queries)
    sample.subset(qids[:10], "first").to_dir(tmp_path / "first")
    sample.subset(qids[10:], "rest").to_dir(tmp_path / "rest")
    assert main(["retrieve", "--model", str(tiny_encoder_dir), "--data", str(tmp_path / "first"), "--data",
                 str(tmp_path / "rest"), "--k", "5", "--precision", "fp32", "--quiet"]) == 0
    assert set(json.loads(capsys.readouterr().out.splitlines()[-1])) == {"ndcg@10", "map@100-l2", "mrr@10-l2", "recall@100-l2"}
    assert main(["retrieve", "--model", str(tiny_encoder_dir), "--data", "sample", "--data", "sample", "--quiet"]) == 2
    assert "query '3104857' is in both 'sample'" in capsys.readouterr().err


def test_mine_writes_negatives_outside_the_positives(tiny_encoder_dir, tmp_path, capsys):
    output = tmp_path / "negatives.tsv"
    command = ["mine", "--model", str(tiny_encoder_dir), "--data", "sample", "--window", "5", "20", "--per-query", "2",
               "--seed", "7", "--precision", "fp32", "--quiet", "--output", str(output)]
    assert main(command) == 0
    negatives = read_negatives(output)
    sample = load_collection("sample")
    assert len(negatives) == 30 and all(len(pids) == 2 for pids in negatives.values())
    assert all(sample.qrels[qid].get(pid, 0) < 1 for qid, pids in negatives.items() for pid in pids)
    assert "60 negatives for 30 queries of sample (ranks 5-20, seed 7)" in capsys.readouterr().out
    first = output.read_text()
    assert main(command) == 0 and output.read_text() == first


def test_mine_refuses_a_cross_encoder_and_a_bad_window(tiny_cross_encoder_dir, tiny_encoder_dir, tmp_path, capsys):
    assert main(["mine", "--model", str(tiny_cross_encoder_dir), "--data", "sample", "--output", str(tmp_path / "n.tsv")]) == 2
    assert "is a cross-encoder checkpoint; dense retrieval needs a bi-encoder" in capsys.readouterr().err
    assert main(["mine", "--model", str(tiny_encoder_dir), "--data", "sample", "--window", "20", "5", "--quiet",
                 "--output", str(tmp_path / "n.tsv")]) == 2
    assert "window must be two ranks 1 <= first <= last, got (20, 5)" in capsys.readouterr().err
    assert not (tmp_path / "n.tsv").exists()


@pytest.mark.parametrize("command", ["retrieve", "mine"])
def test_help_teaches_with_examples(command, capsys):
    with pytest.raises(SystemExit) as exit_code:
        main([command, "--help"])
    assert exit_code.value.code == 0
    text = capsys.readouterr().out
    assert "examples:" in text and "--data ../shared/data/trec-dl/dl" in text and "--cache-dir" in text
