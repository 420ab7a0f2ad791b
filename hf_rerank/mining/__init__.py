"""Hard negatives mined with a model: from a bi-encoder's dense ranking (:mod:`.dense`), or candidates
scored by a teacher and cleaned of likely false negatives (:mod:`.teacher`). Output: ``{qid: [pid, ...]}``
or a teacher run, written with :mod:`hf_rerank.data.negatives` and :func:`hf_rerank.data.formats.write_run`.
"""
