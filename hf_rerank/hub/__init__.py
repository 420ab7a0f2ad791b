"""Model cards and publishing to the Hugging Face Hub.

from hf_rerank.hub import write_model_card, render_model_card   # README.md from a run directory
from hf_rerank.hub import publish, HubSettings, HubPushCallback  # push a run (and its checkpoints)
"""

from importlib import import_module

_EXPORTS = {
    "CardError": "hf_rerank.hub.card",
    "render_model_card": "hf_rerank.hub.card",
    "write_model_card": "hf_rerank.hub.card",
    "HubAuthError": "hf_rerank.hub.publisher",
    "HubPushCallback": "hf_rerank.hub.publisher",
    "HubSettings": "hf_rerank.hub.publisher",
    "PublishError": "hf_rerank.hub.publisher",
    "Retry": "hf_rerank.hub.publisher",
    "publish": "hf_rerank.hub.publisher",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'hf_rerank.hub' has no attribute {name!r}")
