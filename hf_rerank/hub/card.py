"""Model cards: what a training run wrote -> ``README.md`` with Hub metadata and a readable body.

Inputs, read from a run's output directory (what ``train_cross_encoder`` and ``train_embedding``
write):

- ``metrics.json`` (required), the run record read by :meth:`~hf_rerank.training.record.RunRecord.load`:
  ``eval`` ``{name: {metric: value}}``, ``first_stage``, ``significance``, ``eval_protocol`` (one
  per evaluation name), ``before_training``, ``optimizer`` (effective hyperparameters),
  ``train_seconds``, ... and, for embedding models, ``lora`` and ``embedding_space``; an
  ``efficiency`` summary when recorded;
- ``log_history.json``: drawn as ``training_dynamics.png`` (loss, lr, evaluation metric by step);
- ``eval_<name>/metrics.json``: the model's per-query scores; with the base model's beside them
  (``eval_<name>_base/metrics.json``, e.g. from ``hf-rerank evaluate --model BASE --output
  OUT/eval_<name>_base``, or ``../base/eval_<name>/`` as ``recipes/paper2_variants.py`` lays
  runs out) the card also tests the model against the base model;
- ``config.json``, ``modules.json`` + ``1_Pooling/`` (pooling), ``adapter_config.json`` or
  ``adapter/`` (LoRA adapters); for embedding models ``umap.png`` (in the run directory or the
  recipe's directory above it) and ``../variants.json`` (the base model's embedding-space numbers).

Output: a :class:`huggingface_hub.ModelCard` whose YAML metadata is a ``ModelCardData`` (with a
``model-index`` of one ``EvalResult`` per evaluation and metric, values exactly as in
``metrics.json``) and whose body is rendered from the Jinja templates in ``hf_rerank/hub/templates``.
Missing optional inputs leave their section out or say "not recorded"; nothing is invented.
The card never contains credentials: it is built from the files above only.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from pathlib import Path

from hf_rerank.data.formats import atomic_write
from hf_rerank.errors import HfRerankError
from hf_rerank.training.record import EvalProtocol, RunRecord, installed_versions

logger = logging.getLogger("hf_rerank")

KINDS = ("cross-encoder", "embedding")
TEMPLATES = Path(__file__).resolve().parent / "templates"
DYNAMICS_FIGURE = "training_dynamics.png"
UMAP_FIGURE = "umap.png"
ALPHA = 0.05
#: Hub dataset ids among hf-rerank's registered sources (the others are ir_datasets ids or local).
HUB_DATASETS = ("sentence-transformers/msmarco", "microsoft/ms_marco")
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


class CardError(HfRerankError, ValueError):
    """A run directory a card cannot be made from (the message says what is missing)."""


# ------------------------------------------------------------------------------ reading the run


def read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise CardError(f"{path}: not valid JSON ({error})") from None


def load_record(output_dir: Path) -> RunRecord:
    """The run record (``metrics.json``) of a run directory, validated by :meth:`RunRecord.load`."""
    path = output_dir / "metrics.json"
    if not path.is_file():
        raise CardError(f"{output_dir}: no metrics.json; a model card is made from a training run's output directory")
    return RunRecord.load(path)


def detect_kind(output_dir: Path) -> str:
    """``cross-encoder`` or ``embedding`` for a run directory (from its checkpoint files)."""
    from hf_rerank.models.auto import detect_model_type

    return "cross-encoder" if detect_model_type(Path(output_dir)) == "cross-encoder" else "embedding"


def is_local_path(reference: str) -> bool:
    return reference.startswith((".", "/", "~")) or Path(reference).expanduser().exists() or not HUB_ID.match(reference)


def hub_model_id(reference: str | None) -> str | None:
    """The Hub id a model reference names (``owner/name``, revision dropped), None for local paths."""
    from hf_rerank.models.resolve import BUNDLED_IDS

    if not reference:
        return None
    reference = reference.partition("@")[0]
    if reference in BUNDLED_IDS:
        return BUNDLED_IDS[0]
    return None if is_local_path(reference) else reference


def display_reference(reference: str | None) -> str:
    """How a model or data reference is shown: Hub ids and registered sources as they are, local
    paths by their last part (a card does not publish the layout of the machine it was made on)."""
    from hf_rerank.data.sources import SOURCES

    if not reference:
        return "not recorded"
    if reference in SOURCES or not is_local_path(reference.partition("@")[0]):
        return f"`{reference}`"
    return f"`{Path(reference).name}` (local directory)"


def base_model_license(reference: str | None) -> str | None:
    """The licence in the base model's own card, when that card is on this machine (no download)."""
    if not reference:
        return None
    from huggingface_hub import ModelCard, try_to_load_from_cache

    from hf_rerank.models.resolve import BUNDLED_IDS, bundled_model_path

    name, _, revision = reference.partition("@")
    if name in BUNDLED_IDS and bundled_model_path() is not None:
        readme = bundled_model_path() / "README.md"
    elif Path(name).expanduser().is_dir():
        readme = Path(name).expanduser() / "README.md"
    else:
        cached = try_to_load_from_cache(name, "README.md", revision=revision or None) if HUB_ID.match(name) else None
        readme = Path(cached) if isinstance(cached, str) else None
    if readme is None or not readme.is_file():
        return None
    return ModelCard.load(readme, ignore_metadata_errors=True).data.get("license")


def framework_versions(record: RunRecord) -> tuple[list[tuple[str, str]], str]:
    """``([(package, version)], note)``: the versions the run recorded, else this environment's."""
    recorded = record.framework_versions
    if recorded:
        return list(recorded.items()), "recorded by the training run"
    return list(
        installed_versions().items()
    ), "of the environment that generated this card (the run did not record its own)"


# ------------------------------------------------------------------------------ formatting


def number(value, digits: int = 4) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def p_value(value) -> str:
    return "–" if value is None else "< 0.0001" if value < 1e-4 else f"{value:.4f}"


def signed(value) -> str:
    return "–" if value is None else f"{value:+.4f}"


def general(value) -> str:
    """Hyperparameters as people write them: 3.333e-05, 0.03, 0.9."""
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def duration(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    text = f"{hours} h {minutes} min" if hours else f"{minutes} min {rest} s" if minutes else f"{rest} s"
    return f"{seconds:,.1f} s ({text})" if minutes or hours else f"{seconds:.1f} s"


def known(value) -> str:
    """A protocol's number as a card shows it, ``?`` when not recorded."""
    return "?" if value is None else str(value)


def mark(delta, p) -> str:
    return "" if p is None or p >= ALPHA else " ▲" if delta > 0 else " ▼"


# ------------------------------------------------------------------------------ evaluation


def base_evaluation(output_dir: Path, name: str) -> Path | None:
    """The base model's ``metrics.json`` for evaluation ``name``: ``eval_<name>_base/`` in the run
    directory, or ``../base/eval_<name>/`` beside it (the layout of ``recipes/paper2_variants.py``)."""
    for candidate in (output_dir / f"eval_{name}_base", output_dir.parent / "base" / f"eval_{name}"):
        if (candidate / "metrics.json").is_file() and candidate.resolve() != (output_dir / f"eval_{name}").resolve():
            return candidate / "metrics.json"
    return None


def base_comparison(output_dir: Path, name: str) -> tuple[dict, dict, str | None] | None:
    """``(base means, {metric: (delta, p_t, p_rand)}, base model name)`` from the base model's and this
    model's per-query scores (:func:`base_evaluation`, ``eval_<name>/``), or None when either is missing."""
    from hf_rerank.evaluation.significance import compare

    model_file, base_file = output_dir / f"eval_{name}" / "metrics.json", base_evaluation(output_dir, name)
    if base_file is None or not model_file.is_file():
        return None
    model, base = read_json(model_file), read_json(base_file)
    tests = {}
    for metric, scores in model.get("per_query", {}).items():
        if metric in base.get("per_query", {}):
            baseline = base["per_query"][metric]
            try:
                t_test = compare(baseline, {"model": scores}, test="t-test")["model"]
                randomised = compare(baseline, {"model": scores}, test="randomisation")["model"]
            except ValueError as error:
                raise CardError(f"{model_file} against {base_file}, {metric}: {error}") from None
            tests[metric] = (t_test.delta, t_test.p_value, randomised.p_value)
    return base.get("metrics", {}), tests, base.get("model")


def protocol_text(protocol: EvalProtocol, has_first_stage: bool, base_tested: bool) -> str:
    """One paragraph saying how an evaluation was run (first stage, depth, qrels, convention, tests)."""
    queries = f"{protocol.queries} judged queries" if protocol.queries else "its judged queries"
    data = display_reference(protocol.data)
    if protocol.run is not None:
        text = (
            f"Reranks the top-{known(protocol.depth)} candidates of the `{protocol.run}` first-stage run on "
            f"{data}, {queries}; candidates below rank {known(protocol.depth)} keep their first-stage order, "
            "so the reranked run holds the same passages as the first stage."
        )
    else:
        corpus = protocol.corpus_passages
        text = (
            f"Dense retrieval ({protocol.search or 'exact'} search) of the top-{known(protocol.k)} passages "
            f"for {queries} of {data}" + (f" over a corpus of {corpus:,} passages." if corpus else ".")
        )
    if protocol.metric_set:
        text += f" Metric set `{protocol.metric_set}`: {(protocol.convention or '').strip()}"
    tests = []
    if has_first_stage:
        tests.append("the first stage")
    if base_tested:
        tests.append("the base model")
    if tests:
        text += (
            " Significance: two-sided paired t-test and Fisher's randomisation test (10,000 sign flips) on "
            f"per-query scores, against {' and '.join(tests)}; each p-value is for its own comparison, not "
            f"corrected for the other metrics or models; ▲/▼ mark t-test p < {ALPHA}."
        )
    return text


def evaluation_sections(output_dir: Path, record: RunRecord) -> list[dict]:
    """One section per evaluation name: name, title, protocol paragraph, table header and rows, and
    where the base-model column comes from (``base_source``, ``base_label``)."""
    sections = []
    for name, values in record.eval.items():
        protocol = record.protocol(name)
        first = record.first_stage.get(name) or {}
        significance = record.significance.get(name) or {}
        before = record.before_training.get(name) or {}
        comparison = base_comparison(output_dir, name)
        base_means, base_tests, base_name = comparison if comparison else (before, {}, None)
        base_source = (
            "the untrained base model"
            + (f" ({display_reference(base_name)})" if base_name else "")
            + " on the same candidates, used as it is without fine-tuning (per-query scores)"
            if comparison
            else "the model at step 0, evaluated before any update (means only: no per-query scores, so no test)"
            if before
            else None
        )
        base_label = "base model" if comparison else "before fine-tuning"
        header = ["metric"]
        if first:
            header.append(f"{protocol.run or 'first stage'} (first stage)")
        if base_source:
            header.append(base_label)
        header.append("this model")
        if first:
            header += ["Δ vs first stage", "p t-test / rand."]
        if base_tests:
            header += ["Δ vs base", "p t-test / rand."]
        rows = []
        for metric, value in values.items():
            test = significance.get(metric) or {}
            row = [metric]
            if first:
                row.append(number(first.get(metric)))
            if base_source:
                row.append(number(base_means.get(metric)))
            row.append(f"**{number(value)}**")
            if first:
                row += [
                    signed(test.get("delta")) + mark(test.get("delta"), test.get("p_t_test")),
                    f"{p_value(test.get('p_t_test'))} / {p_value(test.get('p_randomisation'))}",
                ]
            if base_tests:
                delta, p_t, p_rand = base_tests.get(metric, (None, None, None))
                row += [signed(delta) + mark(delta, p_t), f"{p_value(p_t)} / {p_value(p_rand)}"]
            rows.append(row)
        sections.append(
            {
                "name": name,
                "title": f"{name}: "
                + (
                    f"reranking {protocol.run} top-{known(protocol.depth)}"
                    if protocol.run is not None
                    else f"dense retrieval, top-{known(protocol.k)}"
                    if protocol.k is not None
                    else "evaluation"
                ),
                "protocol": protocol_text(protocol, bool(first), bool(base_tests)),
                "header": header,
                "rows": rows,
                "base_source": base_source,
                "base_label": base_label,
                "base_test": {
                    metric: (base_means.get(metric), delta, p_t) for metric, (delta, p_t, _) in base_tests.items()
                },
            }
        )
    return sections


def verdict(delta: float, p: float) -> str:
    if p >= ALPHA:
        return "not significantly different from"
    return "significantly better than" if delta > 0 else "significantly worse than"


def headline(record: RunRecord, sections: list[dict]) -> str:
    """The first evaluation's first metric against the first stage and, when tested, the base model."""
    section = sections[0]
    name = section["name"]
    metric, value = next(iter(record.eval[name].items()))
    first = (record.first_stage.get(name) or {}).get(metric)
    test = (record.significance.get(name) or {}).get(metric)
    text = f"On {name} it scores {metric} {value:.4f}"
    if first is not None and test:
        text += (
            f", {verdict(test['delta'], test['p_t_test'])} the first stage ({first:.4f}; Δ {test['delta']:+.4f}, "
            f"paired t-test p {p_value(test['p_t_test'])})"
        )
    if section["base_test"].get(metric):
        base, delta, p_t = section["base_test"][metric]
        text += f"; {verdict(delta, p_t)} the base model ({base:.4f}; Δ {delta:+.4f}, p {p_value(p_t)})"
    return text + "."


# ------------------------------------------------------------------------------ training details


def optimizer_rows(optimizer: dict) -> list[tuple[str, str]]:
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


def display_train_data(train_data: str | None) -> str:
    """The training data as a card shows it: each of several datasets (recorded joined by `` + ``) by
    :func:`display_reference`."""
    if not train_data:
        return display_reference(None)
    return " + ".join(display_reference(part) for part in train_data.split(" + "))


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


def base_embedding_space(output_dir: Path) -> dict | None:
    """The base model's embedding-space numbers from ``../variants.json`` (``recipes/paper2_variants.py``)."""
    variants = output_dir.parent / "variants.json"
    if not variants.is_file():
        return None
    rows = read_json(variants)
    return next(
        (row.get("embedding_space") for row in rows if isinstance(row, dict) and row.get("variant") == "base"), None
    )


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


# ------------------------------------------------------------------------------ metadata


def card_data(
    record: RunRecord,
    sections: list[dict],
    *,
    kind: str,
    model_name: str,
    license: str | None,
    language: list[str],
    adapter_base: str | None,
):
    """The card's ``ModelCardData``: library, base model, datasets, tags, pipeline, ``model-index``."""
    from huggingface_hub import EvalResult, ModelCardData

    optimizer = (record.optimizer or {}).get("name")
    tags = [
        "cross-encoder" if kind == "cross-encoder" else "sentence-transformers",
        *([optimizer] if optimizer else []),
        "hf-rerank",
        *(["reranker"] if kind == "cross-encoder" else ["lora"] if record.lora else []),
    ]
    eval_data = [record.protocol(name).data for name in record.eval]
    datasets = list(dict.fromkeys(d for d in [record.train_data, *eval_data] if d in HUB_DATASETS))
    results = []
    for section, name in zip(sections, record.eval, strict=True):
        protocol = record.protocol(name)
        data = protocol.data or name
        dataset_type = data if not is_local_path(data) or data in HUB_DATASETS else Path(data).name
        for metric, value in record.eval[name].items():
            results.append(
                EvalResult(
                    task_type="text-ranking" if protocol.run is not None else "text-retrieval",
                    task_name="Reranking" if protocol.run is not None else "Retrieval",
                    dataset_type=dataset_type,
                    dataset_name=section["title"],
                    metric_type=metric,
                    metric_value=value,
                    metric_config=protocol.metric_set,
                )
            )
    return ModelCardData(
        language=language,
        license=license,
        library_name="transformers" if kind == "cross-encoder" else "sentence-transformers",
        base_model=hub_model_id(adapter_base) or hub_model_id(record.model),
        datasets=datasets or None,
        tags=tags,
        pipeline_tag="text-ranking" if kind == "cross-encoder" else "sentence-similarity",
        model_name=model_name,
        eval_results=results,
    )


# ------------------------------------------------------------------------------ rendering


def environment():
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )


def model_config(output_dir: Path) -> dict:
    from hf_rerank.models.lora import adapter_base, is_adapter_dir

    config = read_json(output_dir / "config.json") if (output_dir / "config.json").is_file() else {}
    return {
        "num_labels": len(config.get("id2label") or {}) or 1,
        "adapter_only": is_adapter_dir(output_dir),
        "adapter_dir": (output_dir / "adapter" / "adapter_config.json").is_file(),
        "adapter_base": adapter_base(output_dir)
        if is_adapter_dir(output_dir)
        else adapter_base(output_dir / "adapter")
        if (output_dir / "adapter" / "adapter_config.json").is_file()
        else None,
    }


def dynamics_metric(log_history: list | None) -> str | None:
    from hf_rerank.analysis.training_dynamics import default_metric

    return default_metric(log_history).removeprefix("eval_") if log_history and default_metric(log_history) else None


def render_model_card(
    output_dir: str | Path,
    *,
    kind: str,
    model_id: str | None = None,
    license: str | None = None,
    language: str | list[str] = "en",
    figures: dict[str, str] | None = None,
):
    """Render the card of a run directory (nothing is written).

    Args:
        output_dir: the run's output directory (see the module docstring).
        kind: ``cross-encoder`` or ``embedding``.
        model_id: the name the usage snippets load (a Hub repo id when publishing); default ``output_dir``.
        license: the licence to declare; default the base model's (from its card, when on this machine).
        language: language code(s) of the training data.
        figures: ``{"training_dynamics": file, "umap": file}`` as the card should link them;
            default: the files of those names in ``output_dir``.

    Returns:
        A :class:`huggingface_hub.ModelCard`.
    """
    from huggingface_hub import ModelCard

    from hf_rerank.models.bi_encoder import read_pooling

    if kind not in KINDS:
        raise CardError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    output_dir = Path(output_dir)
    record = load_record(output_dir)
    log_file = output_dir / "log_history.json"
    log_history = read_json(log_file) if log_file.is_file() else None
    model_id = model_id or str(output_dir)
    model_name = output_dir.resolve().name if is_local_path(model_id) else model_id
    config = model_config(output_dir)
    license = license or base_model_license(config["adapter_base"]) or base_model_license(record.model)
    sections = evaluation_sections(output_dir, record)
    if figures is None:
        figures = {
            key: name
            for key, name in (("training_dynamics", DYNAMICS_FIGURE), ("umap", UMAP_FIGURE))
            if (output_dir / name).is_file()
        }
    figures = {"training_dynamics": figures.get("training_dynamics"), "umap": figures.get("umap")}
    pooling, normalize = read_pooling(output_dir)
    versions, versions_note = framework_versions(record)
    data = card_data(
        record,
        sections,
        kind=kind,
        model_name=model_name,
        license=license,
        language=[language] if isinstance(language, str) else list(language),
        adapter_base=config["adapter_base"],
    )
    optimizer = {"lion": "Lion", "adamw": "AdamW"}.get((record.optimizer or {}).get("name"), "an unrecorded optimizer")
    context = {
        "card_data": data.to_yaml(),
        "kind": kind,
        "model_id": model_id,
        "model_name": model_name,
        "base_model": display_reference(record.model),
        "optimizer": optimizer,
        "train_data": display_train_data(record.train_data)
        + (" by distillation from a teacher's scores" if record.teacher else ""),
        "headline": headline(record, sections),
        "license": license,
        "evaluations": sections,
        "training": training_rows(record, log_history),
        "figures": figures,
        "dynamics_metric": dynamics_metric(log_history),
        "lora": lora_rows(output_dir, record.lora),
        "embedding_space": embedding_space_table(record.embedding_space, base_embedding_space(output_dir)),
        "max_length": record.max_length or 512,
        "pooling": pooling,
        "normalize": normalize,
        **config,
        "versions": versions,
        "versions_note": versions_note,
    }
    template = "cross_encoder.md.jinja" if kind == "cross-encoder" else "embedding.md.jinja"
    return ModelCard(environment().get_template(template).render(**context))


def write_model_card(
    output_dir: str | Path,
    *,
    kind: str = "cross-encoder",
    model_id: str | None = None,
    license: str | None = None,
    language: str | list[str] = "en",
    into: str | Path | None = None,
) -> Path:
    """Write ``README.md`` and its figures for a run directory; returns the README's path.

    Draws ``training_dynamics.png`` from ``log_history.json`` (when it logged a loss, an lr or an
    evaluation; a run too short to log any gets no figure), copies ``umap.png``
    (when present) and renders the card (:func:`render_model_card`), all into ``into`` (default:
    ``output_dir`` itself, i.e. next to the final model). Every file is written atomically.
    """
    from hf_rerank.analysis.training_dynamics import plot_training_dynamics

    output_dir = Path(output_dir)
    into = Path(into) if into is not None else output_dir
    load_record(output_dir)  # fail before drawing anything
    figures = {}
    log_file = output_dir / "log_history.json"
    history = read_json(log_file) if log_file.is_file() else []
    if any(
        "loss" in entry or "learning_rate" in entry or any(k.startswith("eval_") for k in entry) for entry in history
    ):
        plot_training_dynamics(
            history, into / DYNAMICS_FIGURE, title=f"{model_id or output_dir.resolve().name}: training dynamics"
        )
        figures["training_dynamics"] = DYNAMICS_FIGURE
    elif log_file.is_file():
        logger.info(
            "%s: nothing logged to plot (no loss, lr or evaluation entries); the card has no dynamics figure", log_file
        )
    umap = next((path for path in (output_dir / UMAP_FIGURE, output_dir.parent / UMAP_FIGURE) if path.is_file()), None)
    if kind == "embedding" and umap is not None:
        if umap.resolve() != (into / UMAP_FIGURE).resolve():
            with atomic_write(into / UMAP_FIGURE, "wb") as handle, umap.open("rb") as source:
                shutil.copyfileobj(source, handle)
        figures["umap"] = UMAP_FIGURE
    card = render_model_card(
        output_dir, kind=kind, model_id=model_id, license=license, language=language, figures=figures
    )
    with atomic_write(into / "README.md") as handle:
        handle.write(str(card))
    return into / "README.md"


def checkpoint_card(repo_id: str, step: int, *, kind: str) -> str:
    """The short ``README.md`` of a ``checkpoint-<step>`` branch: what it is, how to load or resume it."""
    from huggingface_hub import ModelCardData

    data = ModelCardData(
        library_name="transformers" if kind == "cross-encoder" else "sentence-transformers",
        tags=["hf-rerank", "checkpoint"],
    )
    return (
        environment()
        .get_template("checkpoint.md.jinja")
        .render(card_data=data.to_yaml(), repo_id=repo_id, step=step, kind=kind)
    )
