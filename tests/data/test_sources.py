"""Collection sources: each conversion on a stand-in in the real record layout, the registry,
local directories, a missing library, and the offline error of the real loaders."""

import json
import logging
import os
import sys
from pathlib import Path

import pytest
from datasets import Dataset, Features, Sequence, Value
from ir_datasets.formats import GenericDoc, GenericQuery, GenericScoredDoc, TrecQrel

from hf_rerank.data import sources
from hf_rerank.data.collection import IRCollection
from hf_rerank.data.sources import (
    SOURCES,
    Source,
    collection_from_ir_datasets,
    collection_from_ms_marco_v11,
    collection_from_msmarco_triplets,
    load_collection,
)
from tests import processes

REPO_ROOT = Path(__file__).resolve().parents[2]

# microsoft/ms_marco v1.1, as declared in the dataset card's dataset_info.
MS_MARCO_FEATURES = Features(
    {
        "answers": Sequence(Value("string")),
        "passages": Sequence({"is_selected": Value("int32"), "passage_text": Value("string"), "url": Value("string")}),
        "query": Value("string"),
        "query_id": Value("int32"),
        "query_type": Value("string"),
        "wellFormedAnswers": Sequence(Value("string")),
    }
)


def ms_marco_record(query_id, query, passages, selected):
    return {
        "answers": ["an answer"],
        "passages": {
            "is_selected": selected,
            "passage_text": passages,
            "url": [f"http://x/{i}" for i in range(len(passages))],
        },
        "query": query,
        "query_id": query_id,
        "query_type": "description",
        "wellFormedAnswers": [],
    }


def test_ms_marco_v11_corpus_qrels_and_bing_run(caplog):
    records = Dataset.from_list(
        [
            ms_marco_record(19699, "what is rba", ["rba is a bank", "rba means", "other"], [0, 1, 0]),
            ms_marco_record(19700, "no answer here", ["a", "b"], [0, 0]),
            ms_marco_record(5, "two good", ["good one", " ", "good two"], [1, 0, 1]),
        ],
        features=MS_MARCO_FEATURES,
    )
    with caplog.at_level(logging.WARNING, logger="hf_rerank"):
        collection = collection_from_ms_marco_v11(records, name="msm")

    assert collection.name == "msm"
    assert collection.queries == {"19699": "what is rba", "19700": "no answer here", "5": "two good"}
    assert collection.corpus["19699-1"] == "rba means"
    assert "5-1" not in collection.corpus  # blank text: left out of the corpus, kept in run and qrels
    assert collection.qrels == {
        "19699": {"19699-0": 0, "19699-1": 1, "19699-2": 0},
        "5": {"5-0": 1, "5-1": 0, "5-2": 1},
    }
    bing = collection.run("bing")
    assert list(bing["19699"]) == ["19699-0", "19699-1", "19699-2"]
    assert list(bing["19699"].values()) == [3.0, 2.0, 1.0]
    assert list(bing["19700"]) == ["19700-0", "19700-1"]
    assert all(isinstance(key, str) for key in [*collection.queries, *collection.corpus, *bing])
    assert "1 of 3 queries have no selected passage" in caplog.text and "19700" in caplog.text


def test_ms_marco_v11_rejects_a_repeated_query_id():
    records = [ms_marco_record(7, "q", ["a"], [1]), ms_marco_record(7, "q again", ["b"], [1])]
    with pytest.raises(ValueError, match="query_id 7 appears twice"):
        collection_from_ms_marco_v11(records)


@pytest.fixture
def msmarco_subsets():
    """sentence-transformers/msmarco subsets triplets, queries and corpus (ids are strings on the Hub)."""
    string = Value("string")
    triplets = Dataset.from_list(
        [
            {"query_id": "571018", "positive_id": "7349777", "negative_id": "6948601"},
            {"query_id": "1", "positive_id": "10", "negative_id": "11"},
            {"query_id": "571018", "positive_id": "7349777", "negative_id": "12"},
            {"query_id": "1", "positive_id": "13", "negative_id": "10"},  # 10 is a positive of query 1 too
            {"query_id": "2", "positive_id": "20", "negative_id": "21"},
        ],
        features=Features({"query_id": string, "positive_id": string, "negative_id": string}),
    )
    queries = Dataset.from_list(
        [{"query_id": qid, "query": f"query {qid}"} for qid in ("1", "2", "3", "571018")],
        features=Features({"query_id": string, "query": string}),
    )
    corpus = Dataset.from_list(
        [
            {"passage_id": pid, "passage": f"passage {pid}"}
            for pid in ("10", "11", "12", "13", "20", "21", "99", "6948601")
        ],
        features=Features({"passage_id": string, "passage": string}),
    )
    return triplets, queries, corpus


def test_msmarco_triplets_become_qrels_and_a_triplets_run(msmarco_subsets, caplog):
    triplets, queries, corpus = msmarco_subsets
    with caplog.at_level(logging.WARNING, logger="hf_rerank"):
        collection = collection_from_msmarco_triplets(triplets, queries, corpus, limit=4)

    assert collection.queries == {"571018": "query 571018", "1": "query 1"}  # query 2 is past the limit
    assert collection.qrels == {"571018": {"7349777": 1}, "1": {"10": 1, "13": 1}}
    run = collection.run("triplets")
    assert run["571018"] == {"7349777": 1.0, "6948601": 0.0, "12": 0.0}
    assert list(run["1"].items()) == [("10", 1.0), ("13", 1.0), ("11", 0.0)]  # positives first; 10 never a negative
    assert set(collection.corpus) == {"6948601", "10", "11", "12", "13"}
    assert "1 of 6 passages have no text" in caplog.text and "7349777" in caplog.text


def test_msmarco_triplets_without_limit_and_bad_limit(msmarco_subsets):
    triplets, queries, corpus = msmarco_subsets
    assert set(collection_from_msmarco_triplets(triplets, queries, corpus).queries) == {"571018", "1", "2"}
    with pytest.raises(ValueError, match="limit must be >= 1"):
        collection_from_msmarco_triplets(triplets, queries, corpus, limit=0)


class FakeDocstore:
    def __init__(self, docs):
        self.docs, self.requested = docs, []

    def get_many(self, doc_ids):
        self.requested.extend(doc_ids)
        return {doc_id: self.docs[doc_id] for doc_id in doc_ids if doc_id in self.docs}


class FakeIrDataset:
    """The methods and record types of ``ir_datasets.load("msmarco-passage/...")``."""

    def __init__(self, queries, qrels, scoreddocs, docs):
        self.queries, self.qrels, self.scoreddocs = queries, qrels, scoreddocs
        self.store = FakeDocstore({doc.doc_id: doc for doc in docs})

    def queries_iter(self):
        return iter(self.queries)

    def qrels_iter(self):
        return iter(self.qrels)

    def scoreddocs_iter(self):
        return iter(self.scoreddocs)

    def docs_store(self):
        return self.store

    def docs_iter(self):
        raise AssertionError("the 8.8M-passage collection must not be iterated")


@pytest.fixture
def scored_dataset():
    return FakeIrDataset(
        queries=[GenericQuery("1037798", "who is robert gray"), GenericQuery("104861", "cost of interior concrete")],
        qrels=[
            TrecQrel("1037798", "p1", 3, "Q0"),
            TrecQrel("1037798", "p9", 0, "Q0"),
            TrecQrel("104861", "p4", 2, "Q0"),
        ],
        scoreddocs=[
            GenericScoredDoc("1037798", "p2", 10.5),
            GenericScoredDoc("1037798", "p1", 12.0),
            GenericScoredDoc("1037798", "p3", 10.5),
            GenericScoredDoc("104861", "p4", 3.0),
        ],
        docs=[GenericDoc(pid, f"text {pid}") for pid in ("p1", "p2", "p3", "p4", "p9", "unused")],
    )


def test_ir_datasets_run_qrels_and_only_needed_passages(scored_dataset):
    collection = collection_from_ir_datasets(scored_dataset, "msmarco-passage/trec-dl-2019/judged")

    assert collection.name == "msmarco-passage/trec-dl-2019/judged"
    assert collection.queries == {"1037798": "who is robert gray", "104861": "cost of interior concrete"}
    assert collection.qrels == {"1037798": {"p1": 3, "p9": 0}, "104861": {"p4": 2}}
    assert list(collection.run("bm25")["1037798"].items()) == [("p1", 12.0), ("p2", 10.5), ("p3", 10.5)]
    assert set(collection.corpus) == {"p1", "p2", "p3", "p4", "p9"}
    assert sorted(scored_dataset.store.requested) == ["p1", "p2", "p3", "p4", "p9"]


def test_ir_datasets_depth_cuts_the_run_and_the_corpus(scored_dataset, caplog):
    with caplog.at_level(logging.WARNING, logger="hf_rerank"):
        collection = collection_from_ir_datasets(scored_dataset, "dl19", depth=1)
    assert "no scores" not in caplog.text
    assert collection.run("bm25") == {"1037798": {"p1": 12.0}, "104861": {"p4": 3.0}}
    assert set(collection.corpus) == {"p1", "p4", "p9"}  # judged passages stay
    with pytest.raises(ValueError, match="depth must be >= 1"):
        collection_from_ir_datasets(scored_dataset, "dl19", depth=0)


def test_ir_datasets_unscored_official_run_refuses_a_depth_cut(caplog):
    """ir_datasets gives MS MARCO's official top-1000 as score 0 in random order."""
    unscored = FakeIrDataset(
        queries=[GenericQuery("1", "q")],
        qrels=[TrecQrel("1", "b", 1, "0")],
        scoreddocs=[GenericScoredDoc("1", pid, 0.0) for pid in ("c", "a", "b")],
        docs=[GenericDoc(pid, pid) for pid in "abc"],
    )
    with pytest.raises(ValueError, match="no order for query 1.*without depth"):
        collection_from_ir_datasets(unscored, "dev/small", depth=2)
    with caplog.at_level(logging.WARNING, logger="hf_rerank"):
        collection = collection_from_ir_datasets(unscored, "dev/small")
    assert list(collection.run("bm25")["1"]) == ["c", "a", "b"]
    assert "1 of 1 queries of run 'bm25' have no scores" in caplog.text


def test_registry_holds_the_sources():
    for name in (
        "sample",
        "sentence-transformers/msmarco",
        "microsoft/ms_marco",
        "msmarco-passage/trec-dl-2019/judged",
        "msmarco-passage/dev/small",
    ):
        source = SOURCES[name]
        assert isinstance(source, Source) and source.name == name and source.description and callable(source.loader)
    assert SOURCES["msmarco-passage/dev/small"].install_hint == 'pip install "hf-rerank[irds]"'
    assert "teacher" in SOURCES["sentence-transformers/msmarco"].description


def test_msmarco_options_are_named():
    with pytest.raises(TypeError, match=r"unknown option\(s\) depth \(options: limit, teacher\)"):
        load_collection("sentence-transformers/msmarco", depth=3)


def test_unknown_name_lists_the_sources_and_mentions_directories():
    with pytest.raises(ValueError) as error:
        load_collection("no-such-collection")
    message = str(error.value)
    assert "microsoft/ms_marco" in message and "msmarco-passage/dev/small" in message and "sample" in message
    assert "local directory" in message


def test_unknown_option_is_named():
    with pytest.raises(TypeError, match=r"unknown option\(s\) limit \(options: depth\)"):
        load_collection("msmarco-passage/dev/small", limit=3)


def tiny_collection(name="tiny"):
    return IRCollection(
        name, {"q1": "query one"}, {"p1": "passage one"}, {"q1": {"p1": 2}}, {"bm25": {"q1": {"p1": 1.5}}}
    )


def test_local_directory(tmp_path):
    directory = tiny_collection().to_dir(tmp_path / "mini")
    collection = load_collection(str(directory))
    assert (collection.name, collection.queries, collection.qrels) == ("mini", {"q1": "query one"}, {"q1": {"p1": 2}})
    assert load_collection(str(directory), name="label").name == "label"


def test_local_directory_wins_over_a_registered_name(tmp_path, monkeypatch):
    tiny_collection().to_dir(tmp_path / "sample")
    monkeypatch.setattr(sources, "SAMPLE_DIR", tmp_path / "elsewhere")
    monkeypatch.chdir(tmp_path)
    assert load_collection("sample").queries == {"q1": "query one"}


def test_sample_is_read_from_the_package(tmp_path, monkeypatch):
    assert sources.SAMPLE_DIR == Path(sources.__file__).parent / "sample"
    monkeypatch.setattr(sources, "SAMPLE_DIR", tiny_collection().to_dir(tmp_path / "packaged"))
    collection = load_collection("sample")
    assert collection.name == "sample" and collection.corpus == {"p1": "passage one"}


@pytest.mark.parametrize(
    ("name", "module", "hint"),
    [
        ("msmarco-passage/trec-dl-2019/judged", "ir_datasets", 'pip install "hf-rerank[irds]"'),
        ("microsoft/ms_marco", "datasets", "pip install datasets"),
        ("hf:sentence-transformers/msmarco:queries", "datasets", "pip install datasets"),
    ],
)
def test_missing_library_says_what_to_install(monkeypatch, name, module, hint):
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` fail
    with pytest.raises(ImportError) as error:
        load_collection(name)
    assert name in str(error.value) and hint in str(error.value)


def run_loaders(names, env, prelude=""):
    """Call load_collection(name) for each name in a fresh interpreter and return what each raised.

    A fresh interpreter, because huggingface_hub/datasets read HF_HUB_OFFLINE and ir_datasets reads
    IR_DATASETS_HOME when they are imported.
    """
    script = prelude + (
        "import json, sys\n"
        "from hf_rerank.data.sources import load_collection\n"
        "lazy = not {'datasets', 'ir_datasets'} & set(sys.modules)\n"
        "raised = {}\n"
        f"for name in {names!r}:\n"
        "    try:\n"
        "        load_collection(name)\n"
        "        raised[name] = None\n"
        "    except Exception as error:\n"
        "        raised[name] = [type(error).__name__, str(error)]\n"
        "print(json.dumps({'lazy': lazy, 'raised': raised}))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), **env}
    done = processes.run([sys.executable, "-c", script], timeout=120, env=env, cwd=REPO_ROOT)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_hugging_face_sources_offline_say_how_to_fix(tmp_path):
    token = "hf_NotARealTokenButLooksLikeOne"
    names = ["microsoft/ms_marco", "sentence-transformers/msmarco", "hf:sentence-transformers/msmarco:queries"]
    result = run_loaders(
        names,
        {
            "HF_HUB_OFFLINE": "1",
            "HF_DATASETS_OFFLINE": "1",
            "HF_TOKEN": token,
            "HF_HOME": str(tmp_path / "hf"),
            "HF_DATASETS_CACHE": str(tmp_path / "hf-datasets"),
        },
    )
    assert result["lazy"], "importing hf_rerank.data.sources must not import datasets or ir_datasets"
    for name in names:
        kind, message = result["raised"][name]
        assert kind == "SourceUnavailableError"
        assert message.startswith(f"{name}: could not be downloaded")
        assert f"HF_DATASETS_CACHE={tmp_path / 'hf-datasets'}" in message and "HF_HUB_OFFLINE" in message
        assert "network access" in message and "load_collection('DIR')" in message and "'sample'" in message
        assert "shared" not in message
        assert token not in message


# On a machine with network the real call would start downloading gigabytes, and where DNS works
# but traffic is dropped each file waits 15 s x 3 tries per mirror. So the download itself is
# replaced by ir_datasets' own failure: a requests ConnectionError from RequestsDownload.
NO_NETWORK = (
    "import requests, ir_datasets.util.download as download\n"
    "def refuse(self):\n"
    "    raise requests.exceptions.ConnectionError(f'network disabled by the test: {self.url}')\n"
    "    yield\n"
    "download.RequestsDownload.__iter__ = refuse\n"
)


def test_ir_datasets_source_offline_says_how_to_fix(tmp_path):
    home = tmp_path / "irds-home"
    names = ["msmarco-passage/trec-dl-2019/judged", "msmarco-passage/dev/small"]
    result = run_loaders(names, {"IR_DATASETS_HOME": str(home)}, prelude=NO_NETWORK)
    for name in names:
        kind, message = result["raised"][name]
        assert kind == "SourceUnavailableError"
        assert message.startswith(f"{name}: could not be downloaded") and "ConnectionError" in message
        assert f"IR_DATASETS_HOME={home}" in message and "network access" in message
        assert "queries.tsv, collection.tsv, qrels.txt" in message and "'sample'" in message
        assert "shared" not in message


def test_redact_hides_tokens():
    text = sources._redact("401 for https://x?token=abc123 with Authorization: Bearer hf_abcdefghijkl")
    assert "abc123" not in text and "hf_abcdefghijkl" not in text and "401 for" in text
