"""The sample shipped inside the package: loads by name, string ids, graded qrels, one run."""

from hf_rerank.data.sources import load_collection


def test_sample_is_a_small_complete_collection():
    sample = load_collection("sample")
    assert sample.name == "sample"
    assert 20 <= len(sample.queries) <= 60 and 200 <= len(sample.corpus) <= 600
    assert list(sample.runs) == ["bm25"]
    assert any(not qid.isdigit() for qid in sample.queries)
    assert any(not pid.isdigit() for pid in sample.corpus)
    assert all(max(judged.values()) == 3 for judged in sample.qrels.values())
    assert {grade for judged in sample.qrels.values() for grade in judged.values()} == {0, 1, 2, 3}
    candidates = sample.candidates("bm25", depth=50)
    assert candidates.skipped == 0 and len(candidates.pairs) == 50 * len(sample.queries)


def test_sample_train_and_test_parts_are_disjoint():
    train, test = load_collection("sample-train"), load_collection("sample-test")
    assert (len(train.queries), len(test.queries)) == (20, 10)
    assert not set(train.queries) & set(test.queries)
    assert set(train.qrels) == set(train.queries) and set(test.runs["bm25"]) == set(test.queries)
    assert train.corpus == test.corpus
