"""hf-rerank: fine-tune, evaluate and publish neural rerankers.

Public API (imported lazily, so ``hf-rerank --help`` stays fast)::

    from hf_rerank import IRCollection, load_collection          # data
    from hf_rerank import CrossEncoder, BiEncoder, load_reranker  # models
    from hf_rerank import evaluate_run, evaluate_reranking, METRIC_SETS  # evaluation
    from hf_rerank import dense_retrieve, evaluate_retrieval, mine_hard_negatives  # dense retrieval
    from hf_rerank import CrossEncoderTrainer, EmbeddingTrainer       # training
    from hf_rerank import train_cross_encoder, train_embedding        # whole runs (recipes, CLI)
    from hf_rerank import embedding_space_stats, umap_figure          # embedding-space analysis
"""

from importlib import import_module

__version__ = "0.1.0"

_EXPORTS = {
    "IRCollection": "hf_rerank.data.collection",
    "load_collection": "hf_rerank.data.sources",
    "CrossEncoder": "hf_rerank.models.cross_encoder",
    "BiEncoder": "hf_rerank.models.bi_encoder",
    "load_reranker": "hf_rerank.models.auto",
    "METRIC_SETS": "hf_rerank.evaluation.metrics",
    "evaluate_run": "hf_rerank.evaluation.metrics",
    "evaluate_reranking": "hf_rerank.evaluation.report",
    "dense_retrieve": "hf_rerank.inference.dense",
    "evaluate_retrieval": "hf_rerank.evaluation.retrieve",
    "mine_hard_negatives": "hf_rerank.mining.dense",
    "CrossEncoderTrainer": "hf_rerank.training.cross_encoder",
    "EmbeddingTrainer": "hf_rerank.training.embedding",
    "train_cross_encoder": "hf_rerank.training.run_cross_encoder",
    "train_embedding": "hf_rerank.training.run_embedding",
    "embedding_space_stats": "hf_rerank.analysis.embedding_space",
    "umap_figure": "hf_rerank.analysis.umap_figure",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'hf_rerank' has no attribute {name!r}")
