"""A run record -> the training sections of its model card: the training-details rows (data, loss,
teacher, optimizer, schedule, batch, precision, hardware, time, throughput, memory), LoRA rows, the
embedding-space table, the library versions and the metric the dynamics figure follows.

Returns ``(label, value)`` rows and small dicts for the templates; absent facts say "not recorded".
"""

from __future__ import annotations

from pathlib import Path

from hf_rerank.hub.formatting import display_reference, display_train_data, duration, general, is_local_path, number
from hf_rerank.training.record import RunRecord, installed_versions


def framework_versions(record: RunRecord) -> tuple[list[tuple[str, str]], str]:
    """``([(package, version)], note)``: the versions the run recorded, else this environment's."""
    recorded = record.framework_versions
    if recorded:
        return list(recorded.items()), "recorded by the training run"
    return list(
        installed_versions().items()
    ), "of the environment that generated this card (the run did not record its own)"


def optimizer_rows(optimizer: dict) -> list[tuple[str, str]]:
    """The optimizer rows of the training-details table: name, implementation and hyperparameters,
    Lion scaling, weight-decay groups."""
    if not optimizer:
        return [("Optimizer", "not recorded")]
    name = {"lion": "Lion", "adamw": "AdamW"}.get(optimizer.get("name"), str(optimizer.get("name")))
    parts = [f"lr {general(optimizer.get('lr'))}", f"weight decay {general(optimizer.get('weight_decay'))}"]
    if optimizer.get("betas"):
        parts.append("β " + ", ".join(general(b) for b in optimizer["betas"]))
    if optimizer.get("eps") is not None:
        parts.append(f"ε {general(optimizer['eps'])}")
    rows = [
        ("Optimizer", f"{name} ({optimizer.get('implementation', 'implementation not recorded')}): " + ", ".join(parts))
    ]
    if optimizer.get("lion_scaling"):
        k = optimizer["lion_scaling"]
        rows.append(
            (
                "Lion scaling",
                f"k = {general(k)}: the configured AdamW-style lr {general(optimizer.get('adamw_lr'))} "
                f"and weight decay {general(optimizer.get('adamw_weight_decay'))} became lr / k = "
                f"{general(optimizer.get('lr'))} and weight decay × k = {general(optimizer.get('weight_decay'))}",
            )
        )
    if optimizer.get("n_params_decay") is not None:
        rows.append(
            (
                "Weight decay applies to",
                f"{optimizer['n_params_decay']} tensors ({optimizer.get('n_elements_decay', 0):,} weights); not to "
                f"{optimizer.get('n_params_no_decay')} bias and norm tensors "
                f"({optimizer.get('n_elements_no_decay', 0):,})",
            )
        )
    return rows


def teacher_rows(teacher: dict | None) -> list[tuple[str, str]]:
    """The "Teacher" row of a distilled run: which scored runs taught, over which candidates (none without)."""
    if not teacher:
        return []

    def shown(source: str) -> str:  # a run of the training data by name, a run file by its file name
        return (
            f"`{Path(source).name}` (run file)" if is_local_path(source) and Path(source).suffix else f"run `{source}`"
        )

    sources = "; ".join(
        f"{shown(source['source'])} ({source['queries']:,} queries, {source['passages']:,} scored passages)"
        for source in teacher.get("sources", [])
    )
    lists = (
        f"lists of up to {teacher['group_size']} (the teacher's best + a sample), "
        f"{teacher['groups_per_query']} per query"
        if teacher.get("group_size")
        else ""
    )
    return [
        (
            "Teacher",
            "distilled from "
            + sources
            + (f"; candidates: {teacher['candidates']}" if teacher.get("candidates") else "")
            + (f"; {lists}" if lists else ""),
        )
    ]


def training_rows(record: RunRecord, log_history: list | None) -> list[tuple[str, str]]:
    """``(label, value)`` rows of the training-details table; absent facts say "not recorded"."""
    recorded = "not recorded"
    data = display_train_data(record.train_data)
    if record.train_examples:
        data += f": {record.train_examples:,} training examples" + (
            f" ({record.example_type})" if record.example_type else ""
        )
    if record.negatives:
        window = record.mine_window
        data += f"; negatives: {record.negatives}" + (
            f" (ranks {window[0]}-{window[1]} of the base model)" if window else ""
        )
    loss = str(record.loss) if record.loss is not None else recorded
    if record.loss_options:
        loss += " (" + ", ".join(f"{k} {general(v)}" for k, v in record.loss_options.items()) + ")"
    warmup = record.warmup_steps
    schedule = record.lr_scheduler or recorded
    if warmup is not None:
        schedule += (
            f", warm-up {warmup:.0%} of the steps"
            if isinstance(warmup, float) and warmup < 1
            else f", warm-up {warmup} steps"
        )
    per_device, world = record.per_device_train_batch_size, record.world_size or 1
    accumulation = record.gradient_accumulation_steps or 1
    batch = (
        (
            f"{per_device} per device × {world} process(es)"
            + (f" × {accumulation} accumulation steps" if accumulation > 1 else "")
            + f" = {per_device * world * accumulation} examples per optimizer step"
        )
        if per_device
        else recorded
    )
    epochs = next(
        (entry["epoch"] for entry in reversed(log_history or []) if "epoch" in entry), record.num_train_epochs
    )
    steps = f"{general(epochs)} epoch(s)" if epochs is not None else "epochs not recorded"
    if record.global_steps is not None:
        steps += f", {record.global_steps:,} optimizer steps"
    efficiency = record.efficiency or {}
    throughput = (
        f"{record.train_samples_per_second:.2f} examples/s (Trainer, whole run)"
        if record.train_samples_per_second is not None
        else recorded
    )
    if efficiency.get("tokens_per_second") is not None:
        throughput += (
            f"; {efficiency['tokens_per_second']:,.0f} real tokens/s, padding {efficiency.get('padding_ratio', 0):.1%}"
        )
    if efficiency.get("mfu") is not None:
        throughput += f", MFU {efficiency['mfu']:.1%}"
    memory = [
        f"{label} {efficiency[key]:,.0f} MiB"
        for key, label in (
            ("peak_gpu_memory_allocated_mib", "GPU (allocated)"),
            ("peak_host_memory_mib", "host (resident)"),
        )
        if efficiency.get(key) is not None
    ]
    hardware = efficiency.get("device_name") or recorded
    rows = [
        ("Base model", display_reference(record.model)),
        ("Training data", data),
        ("Loss", loss),
        *teacher_rows(record.teacher),
        *optimizer_rows(record.optimizer or {}),
        ("LR schedule", schedule),
        ("Batch", batch),
        ("Length", f"{record.max_length} tokens" if record.max_length else recorded),
        ("Epochs and steps", steps),
        (
            "Precision",
            (record.precision or recorded) + (f" ({record.precision_reason})" if record.precision_reason else ""),
        ),
        ("Seed", str(record.seed) if record.seed is not None else recorded),
        ("Hardware", hardware + (f" × {world}" if world and world > 1 and hardware != recorded else "")),
        (
            "Wall time (training)",
            duration(record.train_seconds) if record.train_seconds is not None else recorded,
        ),
        ("Throughput", throughput),
        ("Peak memory", ", ".join(memory) or recorded),
        ("Final training loss", number(record.train_loss)),
    ]
    if record.resumed_from_step:
        covered = record.train_loss_steps
        rows.append(
            (
                "Resumed",
                f"from the checkpoint at step {record.resumed_from_step}; wall time covers the "
                f"whole run, final training loss steps {covered or 'after it'}",
            )
        )
    if record.trainable_parameters is not None:
        rows.append(("Trainable parameters", f"{record.trainable_parameters:,} of {record.total_parameters:,}"))
    if record.regressed_at_steps is not None:
        steps_below = record.regressed_at_steps
        rows.append(
            (
                "Evaluations below the starting point",
                ", ".join(f"step {s}" for s in steps_below) if steps_below else "none",
            )
        )
    return rows


def embedding_space_table(space: dict | None, base: dict | None) -> dict | None:
    """Header and rows of the embedding-space numbers: this model's, beside the base model's when known."""
    if not space:
        return None

    def cell(value) -> str:
        return "–" if value is None else f"{value:,}" if isinstance(value, int) else number(value)

    keys = [key for key, value in space.items() if isinstance(value, (int, float)) and key != "pairs"]
    label = {key: key.replace("_", " ") for key in keys}
    table = {"pairs": space.get("pairs")}
    if base:
        return {
            **table,
            "header": ["", "base model", "this model"],
            "rows": [[label[k], cell(base.get(k)), cell(space[k])] for k in keys],
        }
    return {**table, "header": ["", "this model"], "rows": [[label[k], cell(space[k])] for k in keys]}


def lora_rows(output_dir: Path, lora: dict | None) -> list[tuple[str, str]] | None:
    """The LoRA table rows (rank, alpha, dropout, targets, trainable parameters, file layout); None without LoRA."""
    if not lora:
        return None
    rows = [
        ("Rank r", str(lora.get("r"))),
        ("Alpha", f"{general(lora.get('alpha'))} (updates scaled by alpha / r)"),
        ("Dropout", general(lora.get("dropout"))),
        ("Target modules", ", ".join(f"`{m}`" for m in lora.get("target_modules", []))),
    ]
    if lora.get("trainable_parameters") is not None:
        rows.append(
            (
                "Trainable parameters",
                f"{lora['trainable_parameters']:,} of {lora['total_parameters']:,} "
                f"({lora.get('trainable_share', 0):.2%})",
            )
        )
    where = (
        (
            "this repository holds the adapters alone (`adapter_config.json`, `adapter_model.safetensors`); "
            "the base model is loaded and the adapters merged on load"
        )
        if (output_dir / "adapter_config.json").is_file()
        else "the root holds the merged model (no peft needed); `adapter/` holds the adapters alone"
        if (output_dir / "adapter").is_dir()
        else "the root holds the merged model"
    )
    rows.append(("Files", where))
    return rows


def dynamics_metric(log_history: list | None) -> str | None:
    """The evaluation metric the training-dynamics figure follows (without ``eval_``); None without evaluations."""
    from hf_rerank.analysis.training_dynamics import default_metric

    return default_metric(log_history).removeprefix("eval_") if log_history and default_metric(log_history) else None
