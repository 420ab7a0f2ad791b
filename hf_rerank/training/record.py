"""RunRecord: the one contract of a training run's ``metrics.json``, written by every run and read by
the model card, the publisher and the CLI.

A record is one JSON object (``indent=2``) with these fields (:class:`RunRecord` documents each):

- ``schema_version`` (:data:`SCHEMA_VERSION`) and ``kind`` (``cross-encoder`` or ``embedding``);
- evaluation: ``eval`` ``{name: {metric: number}}`` (required, non-empty), ``first_stage`` and
  ``before_training`` in the same shape, ``significance`` ``{name: {metric: {"delta", "p_t_test",
  "p_randomisation"}}}`` (against the first stage), ``eval_protocol`` ``{name: protocol}``: ONE
  :class:`EvalProtocol` per evaluation name, for both kinds of run; ``base_comparison`` (only when
  made, e.g. by ``recipes/paper2_variants.py``) ``{name: {"model": base model, "metrics": {metric:
  base's value}, "significance": {metric: {"delta", "p_t_test", "p_randomisation"}}}}``, the base
  model's scores and the tests of this model against them
  (:func:`~hf_rerank.evaluation.significance.compare_to_base`);
- training: time, loss, steps, optimizer, schedule, batch, precision, seed, efficiency, library versions
  (what :func:`~hf_rerank.training.run_common.training_summary` gathers), the base model, the loss and its
  options, the teacher, LoRA, the training data and examples;
- embedding runs only (written when ``kind`` is ``embedding``, absent otherwise): pooling,
  normalisation, negatives, parameter counts, regression steps, embedding-space numbers, inference times,
  and (only when recorded) the base model's embedding-space numbers ``base_embedding_space``.

Reading (:meth:`RunRecord.load`) validates every field and raises :class:`RecordError` naming the file
and the field. A ``metrics.json`` written before records were versioned (no ``schema_version``) is
upgraded in memory, mechanically: a flat ``eval_protocol`` (one protocol, as cross-encoder runs wrote
it) becomes that protocol under every evaluation name, and ``kind`` is ``embedding`` when the file has
``pooling`` (only embedding runs wrote it), else ``cross-encoder``.
"""

from __future__ import annotations

import dataclasses
import json
import platform
from dataclasses import dataclass, field
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

from hf_rerank.data.formats import atomic_write
from hf_rerank.errors import HfRerankError

SCHEMA_VERSION = 1
KINDS = ("cross-encoder", "embedding")
#: The fields every version-1 record has, with what they hold (for error messages).
REQUIRED = {"kind": "one of cross-encoder, embedding", "eval": "an object {name: {metric: number}}"}
#: The packages whose versions a run records (``framework_versions``), beside Python's.
FRAMEWORKS = ("hf-rerank", "torch", "transformers", "huggingface-hub", "sentence-transformers", "peft", "lion-pytorch")


class RecordError(HfRerankError, ValueError):
    """A ``metrics.json`` that is not a valid run record; the message names the file and the field."""


def installed_versions() -> dict[str, str]:
    """``{package: version}`` of Python and the installed :data:`FRAMEWORKS` (for ``framework_versions``)."""
    versions = {"python": platform.python_version()}
    for package in FRAMEWORKS:
        try:
            versions[package] = importlib_metadata.version(package)
        except importlib_metadata.PackageNotFoundError:
            continue
    return versions


# ------------------------------------------------------------------------------ value checks
# Each check returns None when ``value`` has the shape, else what was expected (for the error message).


def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_number(value) -> str | None:
    return None if is_number(value) else "a number"


def check_integer(value) -> str | None:
    return None if isinstance(value, int) and not isinstance(value, bool) else "an integer"


def check_text(value) -> str | None:
    return None if isinstance(value, str) else "a string"


def check_flag(value) -> str | None:
    return None if isinstance(value, bool) else "true or false"


def check_object(value) -> str | None:
    return None if isinstance(value, dict) else "an object"


def check_integers(value) -> str | None:
    ok = isinstance(value, list) and all(check_integer(v) is None for v in value)
    return None if ok else "a list of integers"


def check_metrics(value) -> str | None:
    ok = isinstance(value, dict) and all(isinstance(k, str) and is_number(v) for k, v in value.items())
    return None if ok else "an object {metric: number}"


def check_tables(value) -> str | None:
    ok = isinstance(value, dict) and all(check_metrics(v) is None for v in value.values())
    return None if ok else "an object {name: {metric: number}}"


def check_eval(value) -> str | None:
    ok = isinstance(value, dict) and value and all(check_metrics(v) is None and v for v in value.values())
    return None if ok else "an object {name: {metric: number}} with at least one evaluation"


def check_tests(value) -> str | None:
    ok = isinstance(value, dict) and all(
        isinstance(tests, dict) and all(isinstance(test, dict) for test in tests.values()) for tests in value.values()
    )
    return None if ok else 'an object {name: {metric: {"delta", "p_t_test", ...}}}'


def check_base_comparison(value) -> str | None:
    ok = isinstance(value, dict) and all(
        isinstance(comparison, dict)
        and set(comparison) == {"model", "metrics", "significance"}
        and (comparison["model"] is None or isinstance(comparison["model"], str))
        and check_metrics(comparison["metrics"]) is None
        and check_tests({"": comparison["significance"]}) is None
        for comparison in value.values()
    )
    return None if ok else 'an object {name: {"model", "metrics": {metric: number}, "significance": {metric: {...}}}}'


def check_versions(value) -> str | None:
    ok = isinstance(value, dict) and all(isinstance(v, str) for v in value.values())
    return None if ok else "an object {package: version}"


def check_seconds(value) -> str | None:
    return None if check_metrics(value) is None else "an object {step: seconds}"


def check_texts(value) -> str | None:
    ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
    return None if ok else "a list of strings"


# ------------------------------------------------------------------------------ the record


@dataclass(frozen=True)
class EvalProtocol:
    """How one evaluation was run. Reranking (``run`` set): the top-``depth`` of first-stage run ``run``
    on ``data``. Dense retrieval (``k`` set): the top-``k`` by ``search`` over ``corpus``
    (``corpus_passages`` passages). Both: the metric set, its convention and the number of judged queries.
    Absent facts are None and left out of the JSON."""

    data: str | None = field(default=None, metadata={"check": check_text})
    run: str | None = field(default=None, metadata={"check": check_text})
    depth: int | None = field(default=None, metadata={"check": check_integer})
    corpus: list[str] | None = field(default=None, metadata={"check": check_texts})
    corpus_passages: int | None = field(default=None, metadata={"check": check_integer})
    k: int | None = field(default=None, metadata={"check": check_integer})
    search: str | None = field(default=None, metadata={"check": check_text})
    metric_set: str | None = field(default=None, metadata={"check": check_text})
    convention: str | None = field(default=None, metadata={"check": check_text})
    queries: int | None = field(default=None, metadata={"check": check_integer})

    @classmethod
    def reranking(cls, report, *, data: str, run: str, depth: int) -> EvalProtocol:
        """The protocol of a reranking of the top-``depth`` of run ``run`` on ``data``, with the metric set,
        convention and number of queries of its :class:`~hf_rerank.evaluation.report.EvaluationReport`."""
        return cls(
            data=data,
            run=run,
            depth=depth,
            metric_set=report.metric_set,
            convention=report.convention,
            queries=report.queries,
        )

    def to_json(self) -> dict:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if getattr(self, f.name) is not None}


def embedding_only(check):
    """Field metadata of a field only embedding runs write."""
    return {"check": check, "kind": "embedding"}


@dataclass(frozen=True, kw_only=True)
class RunRecord:
    """A training run's ``metrics.json`` (see the module docstring); ``None`` means "not recorded"."""

    schema_version: int = field(default=SCHEMA_VERSION, metadata={"check": check_integer})
    kind: str = field(metadata={"check": check_text})
    eval: dict[str, dict[str, float]] = field(metadata={"check": check_eval})
    # evaluation, keyed by evaluation name like ``eval``
    first_stage: dict[str, dict[str, float]] = field(default_factory=dict, metadata={"check": check_tables})
    before_training: dict[str, dict[str, float]] = field(default_factory=dict, metadata={"check": check_tables})
    significance: dict[str, dict[str, dict]] = field(default_factory=dict, metadata={"check": check_tests})
    eval_protocol: dict[str, EvalProtocol] = field(default_factory=dict, metadata={"check": check_object})
    # against the untrained base model, computed when evaluating (recipes/paper2_variants.py)
    base_comparison: dict[str, dict[str, Any]] | None = field(
        default=None, metadata={"check": check_base_comparison, "omit_none": True}
    )
    # training (run_common.training_summary)
    train_seconds: float | None = field(default=None, metadata={"check": check_number})
    train_samples_per_second: float | None = field(default=None, metadata={"check": check_number})
    train_loss: float | None = field(default=None, metadata={"check": check_number})
    train_loss_steps: str | None = field(default=None, metadata={"check": check_text})
    resumed_from_step: int | None = field(default=None, metadata={"check": check_integer})
    global_steps: int | None = field(default=None, metadata={"check": check_integer})
    optimizer: dict[str, Any] | None = field(default=None, metadata={"check": check_object})
    num_train_epochs: float | None = field(default=None, metadata={"check": check_number})
    gradient_accumulation_steps: int | None = field(default=None, metadata={"check": check_integer})
    framework_versions: dict[str, str] | None = field(default=None, metadata={"check": check_versions})
    efficiency: dict[str, Any] | None = field(default=None, metadata={"check": check_object})
    lr_scheduler: str | None = field(default=None, metadata={"check": check_text})
    warmup_steps: float | None = field(default=None, metadata={"check": check_number})
    per_device_train_batch_size: int | None = field(default=None, metadata={"check": check_integer})
    world_size: int | None = field(default=None, metadata={"check": check_integer})
    max_length: int | None = field(default=None, metadata={"check": check_integer})
    precision: str | None = field(default=None, metadata={"check": check_text})
    precision_reason: str | None = field(default=None, metadata={"check": check_text})
    seed: int | None = field(default=None, metadata={"check": check_integer})
    # what was trained, on what
    model: str | None = field(default=None, metadata={"check": check_text})
    loss: str | None = field(default=None, metadata={"check": check_text})
    loss_options: dict[str, Any] | None = field(default=None, metadata={"check": check_object})
    teacher: dict[str, Any] | None = field(default=None, metadata={"check": check_object})
    lora: dict[str, Any] | None = field(default=None, metadata={"check": check_object})
    train_data: str | None = field(default=None, metadata={"check": check_text})
    train_examples: int | None = field(default=None, metadata={"check": check_integer})
    example_type: str | None = field(default=None, metadata={"check": check_text})
    # embedding runs only
    pooling: str | None = field(default=None, metadata=embedding_only(check_text))
    normalize: bool | None = field(default=None, metadata=embedding_only(check_flag))
    negatives: str | None = field(default=None, metadata=embedding_only(check_text))
    mine_window: list[int] | None = field(default=None, metadata=embedding_only(check_integers))
    trainable_parameters: int | None = field(default=None, metadata=embedding_only(check_integer))
    total_parameters: int | None = field(default=None, metadata=embedding_only(check_integer))
    regressed_at_steps: list[int] | None = field(default=None, metadata=embedding_only(check_integers))
    embedding_space: dict[str, float] | None = field(default=None, metadata=embedding_only(check_metrics))
    inference_seconds: dict[str, float] | None = field(default=None, metadata=embedding_only(check_seconds))
    base_embedding_space: dict[str, float] | None = field(
        default=None, metadata={**embedding_only(check_metrics), "omit_none": True}
    )

    def protocol(self, name: str) -> EvalProtocol:
        """The protocol of evaluation ``name`` (an empty one when the run did not record it)."""
        return self.eval_protocol.get(name) or EvalProtocol()

    def to_json(self) -> dict:
        """The ``metrics.json`` object: fields in declaration order, ``schema_version`` first; the
        embedding-only fields only in embedding records; the comparisons with the base model only when
        made; protocols without their unrecorded facts."""
        out: dict[str, Any] = {"schema_version": self.schema_version}
        for f in dataclasses.fields(self):
            if f.name == "schema_version" or (f.metadata.get("kind") and f.metadata["kind"] != self.kind):
                continue
            value = getattr(self, f.name)
            if value is None and f.metadata.get("omit_none"):
                continue
            out[f.name] = (
                {name: protocol.to_json() for name, protocol in value.items()} if f.name == "eval_protocol" else value
            )
        return out

    def write(self, path: str | Path) -> None:
        """Write :meth:`to_json` to ``path`` atomically, after checking it loads back (:meth:`from_json`):
        a run that assembled a field of the wrong shape fails here, naming the field, not in the card."""
        data = self.to_json()
        RunRecord.from_json(
            {**data, **{f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.metadata.get("kind")}},
            source=str(path),
        )
        with atomic_write(Path(path)) as handle:
            json.dump(data, handle, indent=2)

    @classmethod
    def load(cls, path: str | Path) -> RunRecord:
        """Read and validate ``path`` (an older ``metrics.json`` is upgraded, see the module docstring).

        Raises:
            RecordError: no such file, not JSON, or a field of the wrong shape (the message names both).
        """
        path = Path(path)
        if not path.is_file():
            raise RecordError(f"{path}: no such file; a run record is the metrics.json a training run writes")
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as error:
            raise RecordError(f"{path}: not valid JSON ({error})") from None
        return cls.from_json(data, source=str(path))

    @classmethod
    def from_json(cls, data, *, source: str = "metrics.json") -> RunRecord:
        """A record from a parsed ``metrics.json`` object; ``source`` names it in errors (:class:`RecordError`)."""
        if not isinstance(data, dict):
            raise RecordError(f"{source}: expected a JSON object, got {type(data).__name__}")
        data = upgrade(data)
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise RecordError(
                f'{source}: field "schema_version": this hf-rerank reads version {SCHEMA_VERSION}, the file has '
                f"{version!r}; read it with the hf-rerank that wrote it"
            )
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(fields))
        if unknown:
            raise RecordError(
                f'{source}: unknown field "{unknown[0]}"; a version {SCHEMA_VERSION} run record has '
                + ", ".join(fields)
            )
        for name in ("kind", "eval"):
            if name not in data:
                raise RecordError(f'{source}: field "{name}": missing; expected {REQUIRED[name]}')
        values = {}
        for name, value in data.items():
            if value is None:
                if name in ("eval", "kind", "schema_version"):
                    raise RecordError(f'{source}: field "{name}": missing value (null)')
                values[name] = value
                continue
            expected = fields[name].metadata["check"](value)
            if expected:
                raise RecordError(f'{source}: field "{name}": expected {expected}, got {short(value)}')
            values[name] = value
        if values["kind"] not in KINDS:
            raise RecordError(f'{source}: field "kind": expected {REQUIRED["kind"]}, got {short(values["kind"])}')
        for name in data:
            if fields[name].metadata.get("kind") not in (None, values["kind"]) and data[name] is not None:
                raise RecordError(
                    f'{source}: field "{name}": only embedding runs record it, but "kind" is {values["kind"]}'
                )
        values["eval_protocol"] = {
            name: protocol_from_json(protocol, f'{source}: field "eval_protocol.{name}"')
            for name, protocol in (values.get("eval_protocol") or {}).items()
        }
        for name in ("first_stage", "before_training", "significance"):
            if values.get(name) is None:
                values.pop(name, None)
        return cls(**values)


def protocol_from_json(data, where: str) -> EvalProtocol:
    if not isinstance(data, dict):
        raise RecordError(f"{where}: expected an object (one protocol), got {short(data)}")
    fields = {f.name: f for f in dataclasses.fields(EvalProtocol)}
    for name, value in data.items():
        if name not in fields:
            raise RecordError(f'{where}: unknown key "{name}"; a protocol has ' + ", ".join(fields))
        expected = None if value is None else fields[name].metadata["check"](value)
        if expected:
            raise RecordError(f'{where}: key "{name}": expected {expected}, got {short(value)}')
    return EvalProtocol(**data)


def upgrade(data: dict) -> dict:
    """A ``metrics.json`` object without ``schema_version`` (written before records were versioned) in
    the version-1 shape: a flat ``eval_protocol`` under every evaluation name, ``kind`` inferred from
    ``pooling``. Objects that have a ``schema_version`` are returned as they are."""
    if "schema_version" in data:
        return data
    upgraded = {"schema_version": SCHEMA_VERSION, "kind": "embedding" if "pooling" in data else "cross-encoder", **data}
    protocol = data.get("eval_protocol")
    if (
        isinstance(protocol, dict)
        and isinstance(data.get("eval"), dict)
        and any(not isinstance(value, dict) for value in protocol.values())
    ):
        upgraded["eval_protocol"] = {name: protocol for name in data["eval"]}
    return upgraded


def short(value) -> str:
    """``value`` as JSON, cut to 80 characters (for error messages)."""
    text = json.dumps(value)
    return text if len(text) <= 80 else text[:77] + "..."
