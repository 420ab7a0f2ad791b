"""What ``hf-rerank`` does with an error: the user's (an HfRerankError) is one line and exit 2; a bug
keeps its traceback."""

import pytest

from hf_rerank import cli
from hf_rerank.cli import main


@pytest.mark.parametrize("bug", [ValueError("boom"), KeyError("boom"), FileNotFoundError("boom"), RuntimeError("boom")])
def test_a_bug_propagates_with_its_traceback(bug, monkeypatch, capsys):
    def broken(args):
        raise bug

    monkeypatch.setattr(cli, "run_evaluate", broken)
    with pytest.raises(type(bug)) as raised:
        main(["evaluate", "--data", "sample", "--run", "bm25"])
    assert raised.value is bug and raised.value.__traceback__ is not None
    assert "hf-rerank: error" not in capsys.readouterr().err


def collection_dir(root, run="1 Q0 a 1 1.0 x\n"):
    (root / "runs").mkdir(parents=True)
    (root / "queries.tsv").write_text("1\tcats\n")
    (root / "collection.tsv").write_text("a\tcats live long\n")
    (root / "qrels.txt").write_text("1 0 a 2\n")
    (root / "runs" / "bm25.run").write_text(run)
    return root


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("hf-rerank: error: ")]
    assert len(errors) == 1 and "Traceback" not in err, err
    return errors[0].removeprefix("hf-rerank: error: ")


def test_a_missing_file_of_the_data_dir_is_one_line(tmp_path, capsys):
    data = collection_dir(tmp_path / "data")
    (data / "collection.tsv").unlink()
    assert main(["evaluate", "--data", str(data), "--run", "bm25"]) == 2
    assert one_error_line(capsys).startswith(f"{data}: none of collection.tsv")


def test_a_missing_data_dir_is_one_line(tmp_path, capsys):
    assert main(["evaluate", "--data", str(tmp_path / "nowhere"), "--run", "bm25"]) == 2
    assert one_error_line(capsys).startswith(
        f"unknown collection '{tmp_path / 'nowhere'}': not a local file or directory"
    )


def test_a_malformed_run_line_is_one_line_naming_file_and_line(tmp_path, capsys):
    data = collection_dir(tmp_path / "data", run="1 Q0 a 1 1.0 x\n1 Q0 b first 0.5 x\n")
    assert main(["evaluate", "--data", str(data), "--run", "bm25"]) == 2
    assert one_error_line(capsys).startswith(f"{data / 'runs' / 'bm25.run'}:2: ")


def test_an_unknown_run_is_one_line_without_quotes_around_the_message(tmp_path, capsys):
    data = collection_dir(tmp_path / "data")
    assert main(["evaluate", "--data", str(data), "--run", "tasb"]) == 2
    assert one_error_line(capsys) == f"collection {data.name!r} has no run 'tasb' (runs: bm25)"


def test_a_bad_argument_combination_is_one_line(tmp_path, capsys):
    command = ["mine-ce", "--data", "sample", "--runs", "bm25", "--output", str(tmp_path / "out.run")]
    assert main(command) == 2
    assert one_error_line(capsys) == "give the teacher as either --model or --teacher-run (one of them)"
    assert main(["fuse", "--runs", str(tmp_path / "a.run"), "--output", str(tmp_path / "b.run")]) == 2
    assert one_error_line(capsys).startswith(f"--runs {tmp_path / 'a.run'}: no such run file")


def test_a_bad_training_config_is_one_line(tmp_path, capsys):
    config = tmp_path / "run.yaml"
    config.write_text("max_steps:\n  first: 2\n")
    assert main(["train", "--config", str(config)]) == 2
    assert one_error_line(capsys) == f"{config}: 'max_steps' is a mapping; give nested options as a JSON string"


def test_a_non_empty_output_dir_is_one_line(tmp_path, capsys):
    output = tmp_path / "run"
    output.mkdir()
    (output / "notes.txt").write_text("an earlier run")
    assert main(["train", "--train_data", "sample", "--output_dir", str(output), "--use_cpu", "true"]) == 2
    assert one_error_line(capsys).startswith(f"{output}: not empty (notes.txt); a new run would mix with")
    assert (output / "notes.txt").read_text() == "an earlier run"
