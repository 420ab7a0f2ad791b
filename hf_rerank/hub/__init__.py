"""Model cards and publishing to the Hugging Face Hub.

from hf_rerank.hub import write_model_card, render_model_card   # README.md from a run directory
from hf_rerank.hub import publish, HubSettings, HubPushCallback  # push a run (and its checkpoints)

One job per module:

- ``run_dir``: read a run directory (the record, config, adapters);
- ``evaluation_sections``, ``training_sections``: record -> card sections (values shown by ``formatting``);
- ``metadata``: ``ModelCardData`` with the model-index; ``license``: a base model's licence from its cached card;
- ``render``: templates -> card, figures, atomic writes;
- ``publish``: upload planning, the Hub repository, :func:`publish` (calls retried by ``retry``);
- ``push_callback``: the training callback;
- ``errors``: the errors of all of them.
"""

from importlib import import_module

_EXPORTS = {
    "CardError": "hf_rerank.hub.errors",
    "render_model_card": "hf_rerank.hub.render",
    "write_model_card": "hf_rerank.hub.render",
    "HubAuthError": "hf_rerank.hub.errors",
    "HubPushCallback": "hf_rerank.hub.push_callback",
    "HubSettings": "hf_rerank.hub.push_callback",
    "PublishError": "hf_rerank.hub.errors",
    "Retry": "hf_rerank.hub.retry",
    "publish": "hf_rerank.hub.publish",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'hf_rerank.hub' has no attribute {name!r}")
