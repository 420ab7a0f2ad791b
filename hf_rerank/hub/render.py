"""Model cards: a training run's directory -> ``README.md`` with Hub metadata and a readable body.

:func:`render_model_card` reads the run (:mod:`~hf_rerank.hub.run_dir`), builds the sections
(:mod:`~hf_rerank.hub.evaluation_sections`, :mod:`~hf_rerank.hub.training_sections`) and the
metadata (:mod:`~hf_rerank.hub.metadata`) and renders the Jinja templates in
``hf_rerank/hub/templates`` into a :class:`huggingface_hub.ModelCard`;
:func:`write_model_card` also draws ``training_dynamics.png`` from ``log_history.json``, copies
``umap.png`` (from the run directory) and writes everything
atomically. Missing optional inputs leave their section out or say "not recorded"; nothing is
invented. The card never contains credentials: it is built from the run's files only.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from hf_rerank.data.formats import atomic_write
from hf_rerank.hub.errors import CardError
from hf_rerank.hub.evaluation_sections import evaluation_sections, headline
from hf_rerank.hub.formatting import display_reference, display_train_data, is_local_path
from hf_rerank.hub.license import base_model_license
from hf_rerank.hub.metadata import card_data
from hf_rerank.hub.references import references
from hf_rerank.hub.run_dir import load_record, model_config, read_json
from hf_rerank.hub.training_sections import (
    dynamics_metric,
    embedding_space_table,
    framework_versions,
    lora_rows,
    training_rows,
)
from hf_rerank.training.record import KINDS

logger = logging.getLogger("hf_rerank")

TEMPLATES = Path(__file__).resolve().parent / "templates"
DYNAMICS_FIGURE = "training_dynamics.png"
UMAP_FIGURE = "umap.png"


def environment():
    """The Jinja environment of the card templates (undefined variables are errors, no autoescaping)."""
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )


def warn_unstored_base_evaluations(output_dir: Path, record) -> None:
    """Log a warning for each ``eval_<name>_base/`` in ``output_dir`` whose comparison the record does not hold:
    cards before the record's schema read those directories; now the comparison is computed when the base
    model is evaluated (``hf-rerank evaluate ... --base-of OUTPUT_DIR``) and stored in ``metrics.json``."""
    for name in record.eval:
        stored = name in (record.base_comparison or {})
        if not stored and (output_dir / f"eval_{name}_base" / "metrics.json").is_file():
            logger.warning(
                "%s holds the base model's evaluation of %r, but %s/metrics.json holds no comparison with it: the card "
                "shows none. Store it by evaluating the base model again with --base-of %s (hf-rerank evaluate)",
                output_dir / f"eval_{name}_base",
                name,
                output_dir,
                output_dir,
            )


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
    sections = evaluation_sections(record)
    warn_unstored_base_evaluations(output_dir, record)
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
        "embedding_space": embedding_space_table(record.embedding_space, record.base_embedding_space),
        "max_length": record.max_length or 512,
        "pooling": pooling,
        "normalize": normalize,
        **config,
        "versions": versions,
        "versions_note": versions_note,
        "references": references(record),
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
    umap = output_dir / UMAP_FIGURE
    if kind == "embedding" and umap.is_file():
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
