"""How a card shows values and references: numbers, p-values, durations, hyperparameters, model and
data references (Hub ids as they are, local paths by their last part), significance marks."""

from __future__ import annotations

import re
from pathlib import Path

from hf_rerank.evaluation.significance import ALPHA

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def is_local_path(reference: str) -> bool:
    """Whether a model or data reference names a local path (anything not shaped as a Hub id ``owner/name``)."""
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


def display_train_data(train_data: str | None) -> str:
    """The training data as a card shows it: each of several datasets (recorded joined by `` + ``) by
    :func:`display_reference`."""
    if not train_data:
        return display_reference(None)
    return " + ".join(display_reference(part) for part in train_data.split(" + "))


def number(value, digits: int = 4) -> str:
    """``value`` with ``digits`` decimals; ``–`` when not recorded."""
    return "–" if value is None else f"{value:.{digits}f}"


def p_value(value) -> str:
    """A p-value with 4 decimals, ``< 0.0001`` below that; ``–`` when not recorded."""
    return "–" if value is None else "< 0.0001" if value < 1e-4 else f"{value:.4f}"


def signed(value) -> str:
    """A difference with its sign and 4 decimals; ``–`` when not recorded."""
    return "–" if value is None else f"{value:+.4f}"


def general(value) -> str:
    """Hyperparameters as people write them: 3.333e-05, 0.03, 0.9."""
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def duration(seconds: float) -> str:
    """Seconds as ``1,234.5 s (20 min 35 s)``; under a minute as ``12.5 s``."""
    minutes, rest = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    text = f"{hours} h {minutes} min" if hours else f"{minutes} min {rest} s" if minutes else f"{rest} s"
    return f"{seconds:,.1f} s ({text})" if minutes or hours else f"{seconds:.1f} s"


def known(value) -> str:
    """A protocol's number as a card shows it, ``?`` when not recorded."""
    return "?" if value is None else str(value)


def mark(delta, p) -> str:
    """`` ▲``/`` ▼`` after a difference significant at :data:`ALPHA` (up or down), else nothing."""
    return "" if p is None or p >= ALPHA else " ▲" if delta > 0 else " ▼"


def verdict(delta: float, p: float) -> str:
    """How a test reads in a sentence: significantly better/worse than, or not significantly different from."""
    if p >= ALPHA:
        return "not significantly different from"
    return "significantly better than" if delta > 0 else "significantly worse than"
