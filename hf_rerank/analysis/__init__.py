"""Embedding-space diagnostics: numbers that make the "flattening" of a fine-tuned bi-encoder's
embedding space measurable (anisotropy, isotropy, effective rank, participation ratio,
alignment, uniformity in :mod:`hf_rerank.analysis.embedding_space`) and the side-by-side UMAP
figure of query and passage embeddings of several models (:mod:`hf_rerank.analysis.umap_figure`).
"""
