"""What a cross-encoder run and an embedding run share, from loading to their written artifacts.

Used by :func:`~hf_rerank.training.run_cross_encoder.train_cross_encoder` and
:func:`~hf_rerank.training.run_embedding.train_embedding`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from pathlib import Path

import torch

from hf_rerank.data.collection import IRCollection
from hf_rerank.data.formats import atomic_write
from hf_rerank.data.sources import load_collection
from hf_rerank.data.teacher import Teacher, load_teacher
from hf_rerank.errors import DiskSpaceError, OutputExistsError
from hf_rerank.hub.publish import publish
from hf_rerank.hub.push_callback import HubPushCallback
from hf_rerank.hub.render import write_model_card
from hf_rerank.models.lora import save_lora
from hf_rerank.models.resolve import resolve_model
from hf_rerank.training.callbacks import IREvaluationCallback
from hf_rerank.training.clock import TrainingClockCallback
from hf_rerank.training.record import RunRecord, installed_versions

logger = logging.getLogger("hf_rerank")


def prepare_output_dir(args) -> None:
    """Make sure a run cannot mix with another's files: a non-empty ``output_dir`` is refused
    unless the run resumes (``resume_from_checkpoint``) or ``overwrite_output_dir`` is set, in
    which case the main process empties it first (old checkpoints, figures and stray files would
    otherwise be published as part of this run)."""
    output_dir = Path(args.output_dir)
    entries = sorted(p.name for p in output_dir.iterdir()) if output_dir.is_dir() else []
    if not entries or args.resume_from_checkpoint:
        return
    if not args.overwrite_output_dir:
        shown = ", ".join(entries[:5]) + (f", ... ({len(entries) - 5} more)" if len(entries) > 5 else "")
        raise OutputExistsError(
            f"{output_dir}: not empty ({shown}); a new run would mix with what is there. Use "
            "--overwrite_output_dir true to replace it, --resume_from_checkpoint to continue it, "
            "or another --output_dir"
        )
    if args.process_index == 0:
        logger.warning("%s: --overwrite_output_dir: removing %d entries of an earlier run", output_dir, len(entries))
        for name in entries:
            path = output_dir / name
            remove(path)


def check_disk_space(args, model: torch.nn.Module) -> None:
    """Refuse to start a run whose outputs cannot fit on ``output_dir``'s disk: the final weights
    (every parameter at its stored size), plus, when checkpoints are saved, one checkpoint of
    weights and two optimizer moments per trainable weight (AdamW; Lion needs one), plus 10%.
    A disk that fills during the final save would otherwise lose the trained weights."""
    parameters = list(model.parameters())
    weights = sum(p.numel() * p.element_size() for p in parameters)
    moments = 2 * sum(p.numel() * 4 for p in parameters if p.requires_grad)
    saves_checkpoints = str(getattr(args.save_strategy, "value", args.save_strategy)) != "no"
    needed = 1.1 * (weights + (weights + moments if saves_checkpoints else 0))
    where = Path(args.output_dir).absolute()
    while not where.exists():
        where = where.parent
    free = shutil.disk_usage(where).free
    if free < needed:
        raise DiskSpaceError(
            f"{args.output_dir}: {free / 2**20:,.0f} MiB free on its disk, but the run needs about "
            f"{needed / 2**20:,.0f} MiB for its final weights{' and a checkpoint' if saves_checkpoints else ''}; "
            "free space or choose another --output_dir"
        )


def remove(path: Path) -> None:
    """Delete a file, a link or a directory tree."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


def save_final_model(output_dir: Path, save, is_main_process: bool) -> None:
    """Run ``save(directory)`` (the final model's files) into ``output_dir/.final-model.tmp``, then
    move what it wrote into ``output_dir``. If the save fails (a disk that filled up meanwhile),
    the staging directory is removed, so no half-written model is left beside the run's other
    files, and the error names the last complete checkpoint to resume from, if any."""
    staging = output_dir / ".final-model.tmp"
    try:
        save(staging)
    except OSError as error:
        if is_main_process:
            shutil.rmtree(staging, ignore_errors=True)
        checkpoints = sorted(
            (p for p in output_dir.glob("checkpoint-*") if (p / "trainer_state.json").is_file()),
            key=lambda p: int(p.name.rsplit("-", 1)[1]) if p.name.rsplit("-", 1)[1].isdigit() else -1,
        )
        where = (
            f"resume from the last complete checkpoint with --resume_from_checkpoint {checkpoints[-1]}"
            if checkpoints
            else "no checkpoint was saved, so the trained weights are lost"
        )
        raise OSError(
            f"{output_dir}: saving the final model failed ({error}); nothing of it was left there; {where}"
        ) from error
    if is_main_process:
        for path in staging.iterdir():
            target = output_dir / path.name
            if target.is_dir() and not target.is_symlink():
                remove(target)
            os.replace(path, target)
        staging.rmdir()


def save_trained_model(trainer, lora: dict | None, tokenizer, write_merged_extras=None) -> torch.nn.Module:
    """Log the final weights' fingerprint (every process: equal on all of them under DDP) and save the
    trained model into ``trainer.args.output_dir`` (:func:`save_final_model`): the Trainer's own save
    without LoRA (``lora`` None); with LoRA, the adapters in ``adapter/`` and the merged model beside them
    (:func:`~hf_rerank.models.lora.save_lora`), then ``write_merged_extras(directory, merged_model)`` on the
    main process when given (the embedding run's sentence-transformers modules). Returns the model to
    evaluate: the unwrapped trained model, or the merged one with LoRA."""
    logger.info("process %d: final weights sha256 %s", trainer.args.process_index, weights_fingerprint(trainer.model))
    final_model = trainer.accelerator.unwrap_model(trainer.model)
    is_main_process = trainer.is_world_process_zero()

    def save(directory: Path) -> None:
        nonlocal final_model
        if lora is None:
            trainer.save_model(str(directory))
            return
        final_model = save_lora(
            final_model, directory / "adapter", directory, tokenizer=tokenizer, is_main_process=is_main_process
        )
        if write_merged_extras is not None and is_main_process:
            write_merged_extras(directory, final_model)

    save_final_model(Path(trainer.args.output_dir), save, is_main_process)
    return final_model


def load_run_data(data_args) -> tuple[IRCollection, IRCollection, Teacher | None]:
    """What both runs load before their model: ``(train collection, eval collection, teacher)`` from
    ``data_args.train_data`` (:func:`load_train_collection`, ``train_limit``), ``eval_data``, and
    ``teacher`` (:func:`~hf_rerank.data.teacher.load_teacher` on the train collection; None without)."""
    train_collection = load_train_collection(data_args.train_data, data_args.train_limit)
    eval_collection = load_collection(data_args.eval_data)
    teacher = load_teacher(data_args.teacher, train_collection) if data_args.teacher else None
    return train_collection, eval_collection, teacher


def start_run(args) -> None:
    """What every run does first: log what it uses (:func:`log_run_start`), resolve a published
    resume branch to its local directory once (``args.resume_from_checkpoint`` is local from then
    on), and check the output directory (:func:`prepare_output_dir`)."""
    log_run_start(args)
    args.resume_from_checkpoint = resume_reference(args.resume_from_checkpoint)
    prepare_output_dir(args)


def log_run_start(args) -> None:
    """Log what a run is about to use: world size, process, and the precision with the reason for it."""
    logger.info("world size: %d (process %d)", args.world_size, args.process_index)
    logger.info("precision: %s", args.precision_choice.reason)


def weights_fingerprint(model: torch.nn.Module) -> str:
    """sha256 over every parameter's bytes (in name order): equal fingerprints, equal weights."""
    digest = hashlib.sha256()
    for name, parameter in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(parameter.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def load_train_collection(names: str | list[str], limit: int | None):
    """The training collection: one, or the union of several (:meth:`IRCollection.union`: query ids
    must be distinct); ``limit`` (triplets to read) applies to ``sentence-transformers/msmarco`` only."""
    names = [names] if isinstance(names, str) else list(names)
    collections = [
        load_collection(name, **({"limit": limit} if name == "sentence-transformers/msmarco" else {})) for name in names
    ]
    return collections[0] if len(collections) == 1 else IRCollection.union(*collections)


def teacher_examples(collection, teacher, data_args, args) -> list:
    """Both runs' distillation examples: lists of ``teacher``'s candidates
    (:func:`~hf_rerank.data.examples.make_teacher_groups`) as the data arguments (``groups_per_query``,
    ``teacher_depth``, ``positive_grade``, ``graded_labels``) and training arguments (``group_size``,
    ``seed``) say."""
    from hf_rerank.data.examples import make_teacher_groups

    return make_teacher_groups(
        collection,
        teacher.run,
        group_size=args.group_size,
        groups_per_query=data_args.groups_per_query,
        depth=data_args.teacher_depth,
        positive_grade=data_args.positive_grade,
        graded=data_args.graded_labels,
        seed=args.seed,
    )


def resume_reference(reference: str | None) -> str | None:
    """``resume_from_checkpoint`` as the Trainer takes it: a published branch (``owner/name@checkpoint-N``,
    also from the offline cache) becomes its local directory; a local path is kept."""
    if reference and "@" in reference and not Path(reference).is_dir():
        return str(resolve_model(reference))
    return reference


def run_callbacks(args, kind: str) -> list:
    """The callbacks every run has: the training clock (:mod:`hf_rerank.training.clock`), and
    :class:`HubPushCallback` when ``--push_to_hub`` (each saved checkpoint to its branch with
    ``--hub_strategy checkpoint``)."""
    clock = TrainingClockCallback(args.resume_from_checkpoint)
    return [clock, *([HubPushCallback(args.hub_settings, kind=kind)] if args.hub_settings is not None else [])]


def ir_evaluation_callback(collection: IRCollection, data_args, args) -> IREvaluationCallback:
    """Both runs' evaluation at each evaluation step: the model being trained reranks the top
    ``data_args.eval_depth`` of ``collection``'s run ``data_args.eval_run`` (``collection``: the loaded
    ``eval_data``), scored with the metric set ``eval_metrics`` and logged as ``eval_<eval_name>_<metric>``,
    ``args.per_device_eval_batch_size`` pairs per forward pass."""
    return IREvaluationCallback(
        collection,
        data_args.eval_run,
        name=data_args.eval_name,
        depth=data_args.eval_depth,
        metric_set=data_args.eval_metrics,
        batch_size=args.per_device_eval_batch_size,
    )


def scores_before_training(log_history: list[dict], eval_name: str) -> dict[str, float]:
    """``{metric: value}`` of evaluation ``eval_name`` logged at step 0 (``eval_on_start``); empty without one."""
    prefix = f"eval_{eval_name}_"
    return {
        key.removeprefix(prefix): value
        for entry in log_history
        if entry.get("step") == 0
        for key, value in entry.items()
        if key.startswith(prefix)
    }


def resumed_from_step(path: str | None) -> int:
    """The optimizer step of the checkpoint directory a run resumed from (its ``trainer_state.json``);
    0 for a fresh run."""
    state_file = Path(path) / "trainer_state.json" if path else None
    if state_file is None or not state_file.is_file():
        return 0
    return int(json.loads(state_file.read_text()).get("global_step") or 0)


def logged_loss_sum(log_history: list[dict], upto_step: int) -> float | None:
    """The sum of per-step training losses over steps 1..``upto_step`` from the Trainer's logged
    ``loss`` entries (each the mean over the steps since the previous one); None unless a log at
    exactly ``upto_step`` closes the sum."""
    total, previous = 0.0, 0
    for entry in sorted(
        (e for e in log_history if "loss" in e and e.get("step", 0) <= upto_step), key=lambda e: e["step"]
    ):
        total += entry["loss"] * (entry["step"] - previous)
        previous = entry["step"]
    return total if previous == upto_step else None


def training_summary(trainer, train_output, args) -> dict:
    """The :class:`~hf_rerank.training.record.RunRecord` fields every training run has (``{field: value}``):
    time, loss, steps, optimizer, schedule, batch, precision (and why it was chosen), seed, efficiency and
    library versions.

    After a resume, ``train_seconds`` is the whole run's (the seconds recorded in the checkpoint
    by :class:`~hf_rerank.training.clock.TrainingClockCallback` plus this session's), and so is
    ``train_loss``, the mean loss per optimizer step, where the earlier sessions' logged losses
    cover every step up to the checkpoint (the checkpoint's step was a logging step); otherwise
    it is this session's mean, the Trainer's own ``train_loss``. ``train_loss_steps`` says which
    steps it covers."""
    start = resumed_from_step(args.resume_from_checkpoint)
    steps = trainer.state.global_step
    loss = train_output.metrics.get("train_loss")
    covered = f"1-{steps}"
    if loss is not None and start and steps > start:
        earlier = logged_loss_sum(trainer.state.log_history, start)
        if earlier is not None:
            loss = (earlier + loss * (steps - start)) / steps
        else:
            covered = f"{start + 1}-{steps}"
    return {
        "train_seconds": train_output.metrics["train_runtime"]
        + sum(
            callback.prior_seconds
            for callback in trainer.callback_handler.callbacks
            if isinstance(callback, TrainingClockCallback)
        ),
        "train_samples_per_second": train_output.metrics["train_samples_per_second"],
        "train_loss": loss,
        "train_loss_steps": covered,
        "resumed_from_step": start or None,
        "global_steps": trainer.state.global_step,
        "optimizer": trainer.optimizer_hyperparameters,
        "num_train_epochs": args.num_train_epochs,
        "gradient_accumulation_steps": args.gradient_accumulation_steps,
        "framework_versions": installed_versions(),
        "efficiency": trainer.efficiency.summary if trainer.efficiency is not None else None,
        "lr_scheduler": args.lr_scheduler_type,
        "warmup_steps": args.warmup_steps,
        "per_device_train_batch_size": args.per_device_train_batch_size,
        "world_size": args.world_size,
        "max_length": args.max_length,
        "precision": args.compute_precision,
        "precision_reason": args.precision_choice.reason,
        "seed": args.seed,
    }


def write_run_outputs(output_dir: Path, log_history: list[dict], record: RunRecord, args) -> None:
    """Write ``log_history.json`` and ``metrics.json`` (``record``, checked and written atomically by
    :meth:`RunRecord.write`) and the model card into ``output_dir``; with ``--push_to_hub``, publish it."""
    with atomic_write(output_dir / "log_history.json") as handle:
        json.dump(log_history, handle, indent=2)
    record.write(output_dir / "metrics.json")
    write_model_card(output_dir, kind=record.kind)
    if args.hub_settings is not None:
        publish(
            output_dir,
            args.hub_settings.repo_id,
            private=args.hub_settings.private,
            allow_overwrite=args.hub_settings.allow_overwrite,
            kind=record.kind,
        )
