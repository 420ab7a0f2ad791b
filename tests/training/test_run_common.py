"""What both training runs share: the output directory is never mixed with another run's files."""

from types import SimpleNamespace

import pytest

from hf_rerank.training.run_common import prepare_output_dir


def run_args(output_dir, **fields):
    return SimpleNamespace(**{"output_dir": str(output_dir), "resume_from_checkpoint": None, "overwrite_output_dir": False,
                              "process_index": 0, **fields})


@pytest.fixture
def used(tmp_path):
    """An output directory an earlier run left: a checkpoint, a figure, a stray file."""
    out = tmp_path / "run"
    (out / "checkpoint-4").mkdir(parents=True)
    (out / "checkpoint-4" / "optimizer.pt").write_bytes(b"old")
    (out / "training_dynamics.png").write_bytes(b"png")
    (out / "notes.txt").write_text("x")
    return out


def test_a_used_output_dir_is_refused(used):
    with pytest.raises(FileExistsError, match=r"run: not empty \(checkpoint-4, notes.txt, training_dynamics.png\); "
                                              r"a new run would mix .* --overwrite_output_dir true"):
        prepare_output_dir(run_args(used))
    assert (used / "checkpoint-4" / "optimizer.pt").is_file()  # nothing touched


def test_overwrite_empties_it_and_resume_keeps_it(used):
    prepare_output_dir(run_args(used, resume_from_checkpoint="true"))
    assert (used / "checkpoint-4").is_dir()
    prepare_output_dir(run_args(used, overwrite_output_dir=True, process_index=1))  # only the main process removes
    assert (used / "notes.txt").is_file()
    prepare_output_dir(run_args(used, overwrite_output_dir=True))
    assert used.is_dir() and not any(used.iterdir())


def test_new_or_empty_directories_are_fine(tmp_path):
    prepare_output_dir(run_args(tmp_path / "new"))
    prepare_output_dir(run_args(tmp_path))
