"""``hf-rerank retrieve``, ``mine``, ``score``, ``fuse`` and ``mine-ce`` end to end on the bundled sample and toy
collections with a tiny BERT (the bundled all-MiniLM-L6-v2 on four pairs)."""

import json
import logging

import pytest
import torch

from hf_rerank.cli import main
from hf_rerank.data.collection import IRCollection
from hf_rerank.data.formats import read_run, write_run
from hf_rerank.data.negatives import read_negatives
from hf_rerank.data.sources import load_collection


def test_retrieve_writes_metrics_and_run_and_reuses_the_cache(tiny_encoder_dir, tmp_path, capsys, caplog):
    command = [
        "retrieve",
        "--model",
        str(tiny_encoder_dir),
        "--data",
        "sample",
        "--k",
        "20",
        "--precision",
        "fp32",
        "--cache-dir",
        str(tmp_path / "cache"),
        "--quiet",
        "--output",
        str(tmp_path / "out"),
    ]
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
    assert (
        main(
            [
                "retrieve",
                "--model",
                str(tiny_encoder_dir),
                "--data",
                str(tmp_path / "first"),
                "--data",
                str(tmp_path / "rest"),
                "--k",
                "5",
                "--precision",
                "fp32",
                "--quiet",
            ]
        )
        == 0
    )
    assert set(json.loads(capsys.readouterr().out.splitlines()[-1])) == {
        "ndcg@10",
        "map@100-l2",
        "mrr@10-l2",
        "recall@100-l2",
    }
    assert main(["retrieve", "--model", str(tiny_encoder_dir), "--data", "sample", "--data", "sample", "--quiet"]) == 2
    assert "query '3104857' is in both 'sample'" in capsys.readouterr().err


def test_mine_writes_negatives_outside_the_positives(tiny_encoder_dir, tmp_path, capsys):
    output = tmp_path / "negatives.tsv"
    command = [
        "mine",
        "--model",
        str(tiny_encoder_dir),
        "--data",
        "sample",
        "--window",
        "5",
        "20",
        "--per-query",
        "2",
        "--seed",
        "7",
        "--precision",
        "fp32",
        "--quiet",
        "--output",
        str(output),
    ]
    assert main(command) == 0
    negatives = read_negatives(output)
    sample = load_collection("sample")
    assert len(negatives) == 30 and all(len(pids) == 2 for pids in negatives.values())
    assert all(sample.qrels[qid].get(pid, 0) < 1 for qid, pids in negatives.items() for pid in pids)
    assert "60 negatives for 30 queries of sample (ranks 5-20, seed 7)" in capsys.readouterr().out
    first = output.read_text()
    assert main(command) == 0 and output.read_text() == first


def test_mine_refuses_a_cross_encoder_and_a_bad_window(tiny_cross_encoder_dir, tiny_encoder_dir, tmp_path, capsys):
    assert (
        main(["mine", "--model", str(tiny_cross_encoder_dir), "--data", "sample", "--output", str(tmp_path / "n.tsv")])
        == 2
    )
    assert "is a cross-encoder checkpoint; dense retrieval needs a bi-encoder" in capsys.readouterr().err
    assert (
        main(
            [
                "mine",
                "--model",
                str(tiny_encoder_dir),
                "--data",
                "sample",
                "--window",
                "20",
                "5",
                "--quiet",
                "--output",
                str(tmp_path / "n.tsv"),
            ]
        )
        == 2
    )
    assert "window must be two ranks 1 <= first <= last, got (20, 5)" in capsys.readouterr().err
    assert not (tmp_path / "n.tsv").exists()


@pytest.mark.parametrize("command", ["retrieve", "mine"])
def test_help_teaches_with_examples(command, capsys):
    with pytest.raises(SystemExit) as exit_code:
        main([command, "--help"])
    assert exit_code.value.code == 0
    text = capsys.readouterr().out
    assert "examples:" in text and "--data data/trec-dl/dl" in text and "--cache-dir" in text


# hf-rerank score, fuse and mine-ce: teacher runs, fusion, teacher-scored mining.


@pytest.fixture
def toy_dir(tmp_path):
    """Two queries, four passages with text; run bm25 names a passage with none (ghost)."""
    IRCollection(
        "toy",
        {"q1": "what do cats eat", "q2": "how fast do dogs run"},
        {
            "a": "cats eat fish and mice",
            "b": "dogs can run at 45 km/h",
            "c": "a cat sleeps all day",
            "d": "greyhounds are the fastest dogs",
        },
        {"q1": {"a": 2, "c": 0}, "q2": {"b": 1, "d": 3}},
        {
            "bm25": {"q1": {"a": 9.0, "b": 8.0, "c": 7.0, "ghost": 6.5}, "q2": {"d": 1.0, "a": 0.5}},
            "dense": {"q1": {"c": 0.9, "d": 0.8}, "q2": {"b": 0.7, "c": 0.6}},
        },
    ).to_dir(tmp_path / "toy")
    return tmp_path / "toy"


def test_score_writes_the_scores_evaluate_ranks_by(tiny_cross_encoder_dir, toy_dir, tmp_path, capsys):
    output = tmp_path / "teacher.run"
    command = [
        "score",
        "--model",
        str(tiny_cross_encoder_dir),
        "--data",
        str(toy_dir),
        "--run",
        "bm25",
        "--depth",
        "4",
        "--precision",
        "fp32",
        "--quiet",
        "--output",
        str(output),
    ]
    assert main(command) == 0
    teacher = read_run(output)
    assert {qid: set(scores) for qid, scores in teacher.items()} == {"q1": {"a", "b", "c"}, "q2": {"d", "a"}}
    out = capsys.readouterr().out
    assert (
        f"wrote {output}: 5 scores (logits of {tiny_cross_encoder_dir}, CrossEncoder, float32) "
        "for 2 queries x the top-4 of toy/bm25" in out
    )
    assert "1 candidates have no passage text and are left out" in out
    assert (
        main(
            [
                "evaluate",
                "--model",
                str(tiny_cross_encoder_dir),
                "--data",
                str(toy_dir),
                "--run",
                "bm25",
                "--depth",
                "4",
                "--precision",
                "fp32",
                "--quiet",
                "--output",
                str(tmp_path / "eval"),
            ]
        )
        == 0
    )
    reranked = read_run(tmp_path / "eval" / "run.trec")
    assert {qid: {pid: reranked[qid][pid] for pid in scores} for qid, scores in teacher.items()} == teacher
    capsys.readouterr()
    assert main(command) == 2
    assert f"--output {output}: already exists; pass --overwrite" in capsys.readouterr().err
    assert main([*command, "--overwrite"]) == 0 and read_run(output) == teacher


def test_score_with_the_bundled_model_writes_its_cosines(toy_dir, tmp_path):
    from hf_rerank.models.bi_encoder import BiEncoder

    output = tmp_path / "minilm.run"
    assert (
        main(
            [
                "score",
                "--model",
                "sentence-transformers/all-MiniLM-L6-v2",
                "--data",
                str(toy_dir),
                "--run",
                "dense",
                "--depth",
                "2",
                "--precision",
                "fp32",
                "--quiet",
                "--output",
                str(output),
            ]
        )
        == 0
    )
    teacher = read_run(output)
    model = BiEncoder.from_pretrained("sentence-transformers/all-MiniLM-L6-v2", precision="fp32", device="cpu")
    queries = {"q1": "what do cats eat", "q2": "how fast do dogs run"}
    passages = {"b": "dogs can run at 45 km/h", "c": "a cat sleeps all day", "d": "greyhounds are the fastest dogs"}
    pairs = [("q1", "c"), ("q1", "d"), ("q2", "b"), ("q2", "c")]
    query_vectors = model.encode([queries[q] for q, _ in pairs], show_progress=False)
    passage_vectors = model.encode([passages[p] for _, p in pairs], show_progress=False)
    cosines = torch.nn.functional.cosine_similarity(query_vectors, passage_vectors).tolist()
    assert [teacher[q][p] for q, p in pairs] == pytest.approx(cosines, abs=1e-5)
    assert teacher["q2"]["b"] > teacher["q2"]["c"] and teacher["q1"]["c"] > teacher["q1"]["d"]


def test_fuse_writes_ranx_wsum_of_names_and_files(toy_dir, tmp_path, capsys):
    other = tmp_path / "other.run"
    write_run(other, {"q1": {"a": 1.0, "d": 0.0}, "q2": {"a": 3.0, "b": 1.0, "d": 2.0}})
    output = tmp_path / "fused.run"
    command = [
        "fuse",
        "--data",
        str(toy_dir),
        "--runs",
        "bm25",
        str(other),
        "--weights",
        "0.75",
        "0.25",
        "--output",
        str(output),
    ]
    assert main(command) == 0
    # min-max by hand: bm25 q1 (9, 8, 7, 6.5) -> 1, 0.6, 0.2, 0; q2 d 1, a 0; other q1 a 1, d 0; q2 a 1, d 0.5, b 0
    expected = {
        "q1": {"a": 1.0, "b": 0.75 * 0.6, "c": 0.75 * 0.2, "ghost": 0.0, "d": 0.0},
        "q2": {"d": 0.75 + 0.25 * 0.5, "a": 0.25, "b": 0.0},
    }
    fused = read_run(output)
    assert {qid: set(scores) for qid, scores in fused.items()} == {qid: set(s) for qid, s in expected.items()}
    assert all(fused[qid] == pytest.approx(scores, abs=1e-12) for qid, scores in expected.items())
    assert (
        f"wrote {output}: 8 fused scores for 2 queries (wsum with weights 0.75, 0.25 of bm25, {other}, "
        "min-max normalisation)"
    ) in capsys.readouterr().out
    assert main(command) == 2
    assert "already exists; pass --overwrite" in capsys.readouterr().err
    assert (
        main(
            [
                "fuse",
                "--runs",
                str(other),
                str(output),
                "--method",
                "rrf",
                "--norm",
                "none",
                "--rrf-k",
                "1",
                "--output",
                str(tmp_path / "rrf.run"),
            ]
        )
        == 0
    )
    assert "(rrf with k = 1 of" in capsys.readouterr().out
    assert main(["fuse", "--runs", "bm25", str(other), "--output", str(tmp_path / "x.run")]) == 2
    assert "--runs bm25: no such run file (a run name needs --data" in capsys.readouterr().err
    # one run: min-max per query only (other q2: a 3, d 2, b 1 -> 1, 0.5, 0)
    assert main(["fuse", "--runs", str(other), "--output", str(tmp_path / "norm.run")]) == 0
    assert read_run(tmp_path / "norm.run") == {"q1": {"a": 1.0, "d": 0.0}, "q2": {"a": 1.0, "d": 0.5, "b": 0.0}}
    assert f"({other}, min-max normalisation per query)" in capsys.readouterr().out
    assert main(["fuse", "--runs", str(other), "--weights", "1", "--output", str(tmp_path / "w.run")]) == 2
    assert "one run is only normalised" in capsys.readouterr().err


def test_mine_ce_with_a_teacher_run_file(toy_dir, tmp_path, capsys):
    teacher = tmp_path / "teacher.run"
    write_run(teacher, {"q1": {"a": 5.0, "b": 4.5, "c": 3.0, "d": 1.0}, "q2": {"d": 2.0, "a": 1.9, "b": 1.5, "c": 1.0}})
    output, negatives = tmp_path / "mined.run", tmp_path / "negatives.tsv"
    command = [
        "mine-ce",
        "--data",
        str(toy_dir),
        "--runs",
        "bm25",
        "dense",
        "--depth",
        "2",
        "--teacher-run",
        str(teacher),
        "--relative-margin",
        "0.2",
        "--output",
        str(output),
        "--negatives",
        str(negatives),
    ]
    assert main(command) == 0
    # q1: candidates a, b (bm25) + c, d (dense); positive a (5.0): threshold 5 - 5 x 0.2 = 4 drops b (4.5)
    # q2: candidates d, a + b, c; positives d (2.0, the reference) and b (judged); threshold 1.6 drops a (1.9)
    assert read_run(output) == {"q1": {"a": 5.0, "c": 3.0, "d": 1.0}, "q2": {"d": 2.0, "b": 1.5, "c": 1.0}}
    assert read_negatives(negatives) == {"q1": ["c", "d"], "q2": ["c"]}
    out = capsys.readouterr().out
    assert (
        f"wrote {output}: 6 teacher scores for 2 queries of toy (candidates: the union of the top-2 of bm25, dense; "
        f"teacher: {teacher}); kept negatives also in {negatives}"
    ) in out
    assert "3 negatives kept for 2 of 2 queries (filters: judged positives, relative margin 0.2)" in out
    assert "removed: 1 by judged, 2 by relative-margin" in out
    assert main(command) == 2
    assert f"--output {output}: already exists" in capsys.readouterr().err


def test_mine_ce_with_a_cross_encoder_teacher_and_dense_candidates(
    tiny_cross_encoder_dir, tiny_encoder_dir, tmp_path, capsys
):
    output = tmp_path / "mined.run"
    assert (
        main(
            [
                "mine-ce",
                "--data",
                "sample",
                "--model",
                str(tiny_cross_encoder_dir),
                "--retriever",
                str(tiny_encoder_dir),
                "--depth",
                "5",
                "--window",
                "1",
                "4",
                "--precision",
                "fp32",
                "--quiet",
                "--cache-dir",
                str(tmp_path / "cache"),
                "--output",
                str(output),
            ]
        )
        == 0
    )
    mined, sample = read_run(output), load_collection("sample")
    for qid, scores in mined.items():
        positives = {pid for pid, grade in sample.qrels.get(qid, {}).items() if grade >= 1 and pid in sample.corpus}
        assert positives <= set(scores) and len(set(scores) - positives) <= 4  # the window keeps at most 4 negatives
    assert "teacher: " + str(tiny_cross_encoder_dir) + " (CrossEncoder)" in capsys.readouterr().out
    assert len(list((tmp_path / "cache").glob("corpus-*.pt"))) == 1


@pytest.mark.parametrize(
    "arguments, problem",
    [
        (["--runs", "bm25"], "give the teacher as either --model or --teacher-run"),
        (
            ["--runs", "bm25", "--model", "m", "--teacher-run", "t.run"],
            "give the teacher as either --model or --teacher-run",
        ),
        (
            ["--runs", "bm25", "--teacher-run", "t.run", "--cache-dir", "c"],
            "--cache-dir caches --retriever's corpus embeddings",
        ),
        (
            ["--runs", "bm25", "--teacher-run", "t.run", "--window", "3", "2"],
            "--window must be two ranks 1 <= FIRST <= LAST",
        ),
        (["--runs", "bm25", "--teacher-run", "t.run", "--depth", "0"], "--depth must be >= 1"),
        (["--runs", "nope", "--teacher-run", "t.run"], "has no run 'nope'"),
    ],
)
def test_mine_ce_refuses_bad_arguments(arguments, problem, toy_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_run(tmp_path / "t.run", {"q1": {"a": 1.0}})
    assert main(["mine-ce", "--data", str(toy_dir), *arguments, "--output", "out.run"]) == 2
    assert problem in capsys.readouterr().err
    assert not (tmp_path / "out.run").exists()


@pytest.mark.parametrize("command", ["score", "fuse", "mine-ce"])
def test_teacher_commands_teach_with_examples(command, capsys):
    with pytest.raises(SystemExit) as exit_code:
        main([command, "--help"])
    assert exit_code.value.code == 0
    text = capsys.readouterr().out
    assert "examples:" in text and "--data data/trec-dl/dl20" in text and "output" in text
