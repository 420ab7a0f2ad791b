"""What both training runs share: the output directory is never mixed with another run's files."""

from types import SimpleNamespace

import pytest

from hf_rerank.training.run_common import prepare_output_dir


def run_args(output_dir, **fields):
    return SimpleNamespace(
        **{
            "output_dir": str(output_dir),
            "resume_from_checkpoint": None,
            "overwrite_output_dir": False,
            "process_index": 0,
            **fields,
        }
    )


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
    with pytest.raises(
        FileExistsError,
        match=r"run: not empty \(checkpoint-4, notes.txt, training_dynamics.png\); "
        r"a new run would mix .* --overwrite_output_dir true",
    ):
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


def test_a_resumed_run_reports_its_own_loss_and_the_step_it_resumed_from(tmp_path):
    from hf_rerank.training.clock import TrainingClockCallback
    from hf_rerank.training.run_common import training_summary

    checkpoint = tmp_path / "checkpoint-6"
    checkpoint.mkdir()
    (checkpoint / "trainer_state.json").write_text('{"global_step": 6}')
    (checkpoint / "hf_rerank_clock.json").write_text('{"train_seconds": 5.0, "global_step": 6}')  # the first session's
    # the Trainer's train_loss after resuming at step 6 of 10: this session's mean (4 steps at 0.5)
    clock = TrainingClockCallback(checkpoint)
    # logged before the checkpoint: steps 1-3 at 1.0, 4-6 at 0.7 (restored with the checkpoint's trainer state)
    history = [{"loss": 1.0, "step": 3}, {"loss": 0.7, "step": 6}, {"loss": 0.5, "step": 9}]
    trainer = SimpleNamespace(
        state=SimpleNamespace(global_step=10, log_history=history),
        optimizer_hyperparameters={},
        efficiency=None,
        callback_handler=SimpleNamespace(callbacks=[clock]),
    )
    output = SimpleNamespace(metrics={"train_runtime": 3.0, "train_samples_per_second": 1.0, "train_loss": 0.5})
    args = SimpleNamespace(
        resume_from_checkpoint=str(checkpoint),
        num_train_epochs=1,
        gradient_accumulation_steps=1,
        lr_scheduler_type="linear",
        warmup_steps=0,
        per_device_train_batch_size=2,
        world_size=1,
        max_length=32,
        compute_precision="fp32",
        precision_choice=SimpleNamespace(reason="r"),
        seed=1,
    )
    summary = training_summary(trainer, output, args)
    assert summary["resumed_from_step"] == 6 and summary["train_loss_steps"] == "1-10"
    assert summary["train_loss"] == pytest.approx((3 * 1.0 + 3 * 0.7 + 4 * 0.5) / 10)  # the whole run's mean
    assert summary["train_seconds"] == pytest.approx(5.0 + 3.0)  # both sessions
    history[:] = [{"loss": 1.0, "step": 5}, {"loss": 0.5, "step": 9}]  # no log at step 6: the session's mean only
    summary = training_summary(trainer, output, args)
    assert summary["train_loss"] == pytest.approx(0.5) and summary["train_loss_steps"] == "7-10"
    trainer.callback_handler.callbacks = [TrainingClockCallback(None)]
    fresh = training_summary(trainer, output, SimpleNamespace(**{**vars(args), "resume_from_checkpoint": None}))
    assert fresh["resumed_from_step"] is None and fresh["train_loss"] == pytest.approx(0.5)
    assert fresh["train_loss_steps"] == "1-10"
    assert fresh["train_seconds"] == pytest.approx(3.0)


def test_the_clock_is_written_into_each_checkpoint_and_read_back_on_resume(tmp_path):
    import json

    from hf_rerank.training.clock import TrainingClockCallback

    (tmp_path / "checkpoint-4").mkdir()
    state = SimpleNamespace(global_step=4, is_world_process_zero=True)
    args = SimpleNamespace(output_dir=str(tmp_path))
    clock = TrainingClockCallback(None)
    clock.on_train_begin(args, state, None)
    clock.on_save(args, state, None)
    saved = json.loads((tmp_path / "checkpoint-4" / "hf_rerank_clock.json").read_text())
    assert saved["global_step"] == 4 and 0 <= saved["train_seconds"] < 5
    resumed = TrainingClockCallback(tmp_path / "checkpoint-4")
    assert resumed.prior_seconds == saved["train_seconds"]
    resumed.on_train_begin(args, state, None)
    (tmp_path / "checkpoint-8").mkdir()
    resumed.on_save(args, SimpleNamespace(global_step=8, is_world_process_zero=True), None)
    assert (
        json.loads((tmp_path / "checkpoint-8" / "hf_rerank_clock.json").read_text())["train_seconds"]
        >= saved["train_seconds"]
    )


def test_a_disk_too_small_for_the_weights_is_refused_before_training(tmp_path, monkeypatch):
    import shutil

    import torch

    from hf_rerank.training import run_common

    model = torch.nn.Linear(1000, 1000)  # 1,001,000 float32 parameters: 3.8 MiB of weights
    args = SimpleNamespace(output_dir=str(tmp_path / "new" / "run"), save_strategy="no")
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(run_common.shutil, "disk_usage", lambda path: usage._replace(free=3 * 2**20))
    with pytest.raises(
        OSError, match=r"run: 3 MiB free on its disk, but the run needs about 4 MiB for its final weights;"
    ):
        run_common.check_disk_space(args, model)
    args.save_strategy = "steps"  # a checkpoint too: weights again plus two AdamW moments
    with pytest.raises(OSError, match="needs about 17 MiB for its final weights and a checkpoint"):
        run_common.check_disk_space(args, model)
    monkeypatch.setattr(run_common.shutil, "disk_usage", lambda path: usage._replace(free=2**30))
    run_common.check_disk_space(args, model)


def test_a_final_save_that_fails_leaves_nothing_half_written_and_names_the_checkpoint(tmp_path):
    import errno

    from hf_rerank.training.run_common import save_final_model

    out = tmp_path / "run"
    (out / "checkpoint-4").mkdir(parents=True)
    (out / "checkpoint-4" / "trainer_state.json").write_text('{"global_step": 4}')
    (out / "metrics.json").write_text("{}")

    def full_disk(directory):
        directory.mkdir()
        (directory / "config.json").write_text("{}")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(
        OSError,
        match=r"saving the final model failed .*No space left on device.*nothing of it was left "
        r"there; resume from the last complete checkpoint with --resume_from_checkpoint .*checkpoint-4",
    ):
        save_final_model(out, full_disk, is_main_process=True)
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint-4", "metrics.json"]  # no config.json without weights

    def complete(directory):
        (directory / "adapter").mkdir(parents=True)
        (directory / "adapter" / "adapter_model.safetensors").write_bytes(b"a")
        (directory / "model.safetensors").write_bytes(b"w")

    save_final_model(out, complete, is_main_process=True)
    assert sorted(p.name for p in out.iterdir()) == ["adapter", "checkpoint-4", "metrics.json", "model.safetensors"]
    assert (out / "adapter" / "adapter_model.safetensors").read_bytes() == b"a"
