"""RanxIds: fixed-width passage codes, so that ranx compiles its dict builders for one width only."""

from __future__ import annotations

import math
import re

import pytest

from hf_rerank.evaluation.fusion import fuse_runs
from hf_rerank.evaluation.metrics import evaluate_run
from hf_rerank.evaluation.ranx_ids import WIDTH, RanxIds


def test_codes_have_one_width_keep_values_and_decode_back():
    ids = RanxIds()
    run = ids.encode({"q1": {"7": 2.0, "long-passage-id-123": 1.0}})
    qrels = ids.encode({"q1": {"long-passage-id-123": 3, "x": 1}})
    assert [len(code) for code in run["q1"]] == [WIDTH, WIDTH]
    assert list(run["q1"].values()) == [2.0, 1.0]
    codes = list(run["q1"])
    assert qrels["q1"] == {codes[1]: 3, "2".zfill(WIDTH): 1}  # a known id keeps its code, a new one is next
    assert [ids.decode(code) for code in run["q1"]] == ["7", "long-passage-id-123"]


def test_ranx_sees_one_id_width_whatever_the_collection_ids():
    from ranx.data_structures.common import create_and_sort

    for width in (1, 9):
        pid = "p" * (width - 1)
        qrels = {"q1": {pid + "1": 1, pid + "2": 0}}
        run = {"q1": {pid + "1": 0.5, pid + "2": 0.9, pid + "3": 0.1}}
        # the one relevant passage at rank 2: nDCG@10 = (1 / log2(3)) / 1
        assert evaluate_run(qrels, run, "trec-dl").means["ndcg@10"] == pytest.approx(1 / math.log2(3))
        fused = fuse_runs({"a": run, "b": run}, method="rrf", norm="none")
        assert list(fused["q1"]) == [pid + "2", pid + "1", pid + "3"]
    widths = {int(w) for sig in create_and_sort.signatures for w in re.findall(r"UnicodeCharSeq\((\d+)\)", str(sig))}
    assert widths == {WIDTH}
