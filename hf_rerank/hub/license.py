"""The licence of a base model, from its own card when that card is on this machine (no download)."""

from __future__ import annotations

from pathlib import Path

from hf_rerank.hub.formatting import HUB_ID


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
