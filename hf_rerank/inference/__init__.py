"""A model applied to a collection, no metrics: dense retrieval (:mod:`.dense`) and pair scoring (:mod:`.scoring`).

Evaluation (:mod:`hf_rerank.evaluation`) and mining (:mod:`hf_rerank.mining`) both build on these.
"""
