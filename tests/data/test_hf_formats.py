"""Training data in users' shapes: FlagEmbedding JSONL, column datasets (parquet, csv, json, JSONL,
save_to_disk), id rows with queries/corpus tables, the Hub (streamed) and sentence-transformers/msmarco's
teacher subsets, each on small local stand-ins in the real schemas."""

import hashlib
import json
import logging
import math

import datasets
import pytest
from datasets import Dataset, DatasetDict, Features, Value

from hf_rerank.data.collection import IRCollection
from hf_rerank.data.formats import DataFormatError
from hf_rerank.data.hf_formats import (
    KNOWN_LAYOUTS,
    collection_from_margin_rows,
    collection_from_rows,
    column_layout,
    dataset_rows,
    text_id,
)
from hf_rerank.data.sources import load_collection


def q(text):
    return text_id("q-", text)


def p(text):
    return text_id("p-", text)


def write_jsonl(path, objects, bom=False):
    lines = [obj if isinstance(obj, str) else json.dumps(obj) for obj in objects]
    path.write_text(("\ufeff" if bom else "") + "\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_text_ids_are_short_stable_hashes_of_the_stripped_text():
    assert q("  what is rba \n") == q("what is rba") == "q-" + hashlib.sha1(b"what is rba").hexdigest()[:16]
    assert p("what is rba") != q("what is rba") and len(p("x")) == 18


# --------------------------------------------------------------------------------------------
# FlagEmbedding JSONL
# --------------------------------------------------------------------------------------------


def test_flag_jsonl_with_teacher_scores(tmp_path, caplog):
    path = write_jsonl(
        tmp_path / "train.jsonl",
        [
            {
                "query": "what is rba",
                "pos": ["rba is a bank"],
                "neg": ["rba means", "shared passage"],
                "pos_scores": [9.5],
                "neg_scores": [1.0, 3.0],
                "prompt": "Represent this query: ",
                "type": "normal",
            },
            {
                "query": "who is gray",
                "pos": ["shared passage"],
                "neg": ["gray is a color"],
                "pos_scores": [7.0],
                "neg_scores": [-2.0],
            },
            {
                "query": " what is rba ",
                "pos": ["rba stands for"],
                "neg": ["rba is a bank"],
                "pos_scores": [8.0],
                "neg_scores": [0.5],
            },
        ],
        bom=True,
    )

    with caplog.at_level(logging.WARNING, logger="hf_rerank"):
        collection = load_collection(str(path))

    assert collection.name == "train"
    assert collection.queries == {q("what is rba"): "what is rba", q("who is gray"): "who is gray"}
    assert collection.corpus[p("shared passage")] == "shared passage" and len(collection.corpus) == 5
    assert collection.qrels == {
        q("what is rba"): {p("rba is a bank"): 1, p("rba stands for"): 1},
        q("who is gray"): {p("shared passage"): 1},
    }
    negatives = collection.run("negatives")
    # positives first (1.0), then negatives (0.0); "rba is a bank" is a positive, so never a negative
    assert list(negatives[q("what is rba")].items()) == [
        (p("rba is a bank"), 1.0),
        (p("rba stands for"), 1.0),
        (p("rba means"), 0.0),
        (p("shared passage"), 0.0),
    ]
    teacher = collection.run("teacher")
    assert list(teacher[q("what is rba")].items()) == [
        (p("rba is a bank"), 9.5),
        (p("rba stands for"), 8.0),
        (p("shared passage"), 3.0),
        (p("rba means"), 1.0),
    ]  # the repeated (query, "rba is a bank") keeps its first score
    assert "1 (query, passage) pairs are scored again with another score; the first score is kept" in caplog.text
    assert teacher[q("who is gray")] == {p("shared passage"): 7.0, p("gray is a color"): -2.0}
    assert collection.sources["run:teacher"] == str(path)


def test_flag_jsonl_without_scores_has_no_teacher_run_and_limit_reads_the_first_rows(tmp_path):
    path = write_jsonl(
        tmp_path / "flag.jsonl",
        [
            {"query": "a", "pos": ["pa"], "neg": []},
            {"query": "b", "pos": ["pb"], "neg": ["nb"]},
            "not even json: never read",
        ],
    )
    collection = load_collection(str(path), limit=2, name="flag")
    assert collection.name == "flag" and set(collection.runs) == {"negatives"}
    assert collection.run("negatives") == {q("a"): {p("pa"): 1.0}, q("b"): {p("pb"): 1.0, p("nb"): 0.0}}


def test_flag_rows_in_a_parquet_file(tmp_path):
    path = tmp_path / "flag.parquet"
    Dataset.from_list(
        [{"query": "a", "pos": ["pa"], "neg": ["na"], "pos_scores": [1.0], "neg_scores": [2.0]}]
    ).to_parquet(path)
    collection = load_collection(str(path))
    assert collection.qrels == {q("a"): {p("pa"): 1}}
    assert list(collection.run("teacher")[q("a")].items()) == [(p("na"), 2.0), (p("pa"), 1.0)]


GOOD_FLAG = {"query": "q0", "pos": ["a"], "neg": ["b"], "pos_scores": [1.0], "neg_scores": [0.0]}


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ('{"query": ', "invalid JSON: Expecting value"),
        ("[1, 2]", "expected a JSON object, found array"),
        (
            {"query": "q", "pos": ["a"]},
            "missing key 'neg' (FlagEmbedding rows need 'query', 'pos' and 'neg'; found 'query', 'pos')",
        ),
        ({"query": "  ", "pos": ["a"], "neg": []}, "'query' is empty"),
        ({"query": 5, "pos": ["a"], "neg": []}, "'query' must be a string, found number"),
        ({"query": "q", "pos": "a", "neg": []}, "'pos' must be a list of strings, found string"),
        ({"query": "q", "pos": ["a", 3], "neg": []}, "'pos'[1] must be a string, found number"),
        ({"query": "q", "pos": ["a"], "neg": [""]}, "'neg'[0] is empty"),
        ({"query": "q", "pos": [], "neg": ["b"]}, "'pos' is empty: every row needs a positive"),
        (
            {"query": "q", "pos": ["a"], "neg": ["b"], "pos_scores": [1.0], "neg_scores": [0.5, 0.1]},
            "'neg_scores' has 2 scores for 1 passages in 'neg'",
        ),
        (
            {"query": "q", "pos": ["a"], "neg": [], "pos_scores": ["high"], "neg_scores": []},
            "'pos_scores'[0] must be a finite number, found 'high'",
        ),
        (
            {"query": "q", "pos": ["a"], "neg": [], "pos_scores": 1.0, "neg_scores": []},
            "'pos_scores' must be a list of numbers, found number",
        ),
        (
            {"query": "q", "pos": ["a"], "neg": [], "pos_scores": [1.0]},
            "'pos_scores' without 'neg_scores': give both or neither",
        ),
        (
            {"query": "q", "pos": ["a"], "neg": []},
            "has no teacher scores (pos_scores, neg_scores) but line 1 has them: give them on every row or on none",
        ),
    ],
)
def test_flag_jsonl_bad_rows_name_file_and_line(tmp_path, line, problem):
    path = write_jsonl(tmp_path / "bad.jsonl", [GOOD_FLAG, line])
    with pytest.raises(DataFormatError) as error:
        load_collection(str(path))
    assert str(error.value) == f"{path}:2: {problem}"


def test_flag_rows_cannot_take_tables(tmp_path):
    path = write_jsonl(tmp_path / "flag.jsonl", [GOOD_FLAG])
    with pytest.raises(ValueError, match=r"FlagEmbedding rows hold their texts; queries= and corpus= do not apply"):
        load_collection(str(path), corpus=str(path))


# --------------------------------------------------------------------------------------------
# Column datasets
# --------------------------------------------------------------------------------------------


def test_column_triplets_from_parquet(tmp_path, caplog):
    path = tmp_path / "triplets.parquet"
    Dataset.from_list(
        [
            {"query": "what is rba", "positive": "rba is a bank", "negative": "rba means", "id": 1},
            {"query": "what is rba", "positive": "rba stands for", "negative": "rba is a bank", "id": 2},
            {"query": "who is gray", "positive": "gray was", "negative": "rba means", "id": 3},
        ]
    ).to_parquet(path)
    with caplog.at_level(logging.WARNING, logger="hf_rerank"):
        collection = load_collection(str(path))

    assert collection.name == "triplets" and set(collection.runs) == {"negatives"}
    assert collection.qrels == {
        q("what is rba"): {p("rba is a bank"): 1, p("rba stands for"): 1},
        q("who is gray"): {p("gray was"): 1},
    }
    assert list(collection.run("negatives")[q("what is rba")].items()) == [
        (p("rba is a bank"), 1.0),
        (p("rba stands for"), 1.0),
        (p("rba means"), 0.0),
    ]
    assert collection.corpus[p("rba means")] == "rba means" and len(collection.corpus) == 4
    assert f"{path}: columns id are not used" in caplog.text


def test_column_pairs_give_qrels_only(tmp_path):
    path = tmp_path / "pairs.json"
    Dataset.from_list([{"query": "a", "positive": "pa"}, {"query": "b", "positive": "pb"}]).to_json(path)
    collection = load_collection(str(path))
    assert collection.qrels == {q("a"): {p("pa"): 1}, q("b"): {p("pb"): 1}} and collection.runs == {}


def test_numbered_negatives_with_teacher_scores_from_a_saved_dataset(tmp_path):
    rows = Dataset.from_list(
        [
            {
                "query": "q",
                "negative_2": "n2",
                "positive": "pos",
                "negative_1": "n1",
                "negative_10": "n10",
                "positive_score": 5.0,
                "negative_1_score": 6.0,
                "negative_2_score": -1.0,
                "negative_10_score": 2,
            }
        ]
    )
    rows.save_to_disk(tmp_path / "saved")
    collection = load_collection(str(tmp_path / "saved"))

    assert collection.name == "saved"
    assert list(collection.run("negatives")[q("q")]) == [p("pos"), p("n1"), p("n2"), p("n10")]  # numeric order
    assert list(collection.run("teacher")[q("q")].items()) == [
        (p("n1"), 6.0),
        (p("pos"), 5.0),
        (p("n10"), 2.0),
        (p("n2"), -1.0),
    ]


def test_dataset_dict_split(tmp_path):
    DatasetDict(
        {
            "train": Dataset.from_list([{"query": "train q", "positive": "a"}]),
            "dev": Dataset.from_list([{"query": "dev q", "positive": "b"}]),
        }
    ).save_to_disk(tmp_path / "dict")
    assert list(load_collection(str(tmp_path / "dict")).queries.values()) == ["train q"]
    assert list(load_collection(str(tmp_path / "dict"), split="dev").queries.values()) == ["dev q"]
    with pytest.raises(ValueError, match=r"dict: no split 'test' \(splits: train, dev\)$"):
        load_collection(str(tmp_path / "dict"), split="test")


def test_pointwise_rows_from_csv(tmp_path):
    labeled = tmp_path / "labeled.csv"
    Dataset.from_list(
        [
            {"query": "q", "passage": "good", "label": 2, "score": 3.5},
            {"query": "q", "passage": "bad", "label": 0, "score": -1.0},
            {"query": "q", "passage": "fair", "label": 1, "score": 1.5},
        ]
    ).to_csv(labeled, index=False)
    collection = load_collection(str(labeled))
    assert collection.qrels == {q("q"): {p("good"): 2, p("fair"): 1}}
    assert collection.run("negatives") == {q("q"): {p("good"): 1.0, p("fair"): 1.0, p("bad"): 0.0}}
    assert list(collection.run("teacher")[q("q")].values()) == [3.5, 1.5, -1.0]

    scored = tmp_path / "scored.csv"
    Dataset.from_list([{"query": "q", "passage": "x", "score": 0.25}]).to_csv(scored, index=False)
    collection = load_collection(str(scored))
    assert collection.qrels == {} and collection.runs == {"teacher": {q("q"): {p("x"): 0.25}}}


def test_id_rows_with_msmarco_and_beir_tables(tmp_path, caplog):
    string = Value("string")
    Dataset.from_list(
        [
            {"query_id": "571018", "positive_id": "7349777", "negative_id": "6948601"},
            {"query_id": "1", "positive_id": "10", "negative_id": "11"},
        ],
        features=Features({"query_id": string, "positive_id": string, "negative_id": string}),
    ).to_parquet(tmp_path / "ids.parquet")
    Dataset.from_list([{"query_id": qid, "query": f"query {qid}"} for qid in ("1", "2", "571018")]).to_parquet(
        tmp_path / "queries.parquet"
    )
    write_jsonl(
        tmp_path / "corpus.jsonl",
        [
            {"_id": pid, "title": "Title" if pid == "10" else "", "text": f"passage {pid}"}
            for pid in ("10", "11", "6948601", "99")
        ],
    )
    with caplog.at_level(logging.WARNING, logger="hf_rerank"):
        collection = load_collection(
            str(tmp_path / "ids.parquet"),
            queries=str(tmp_path / "queries.parquet"),
            corpus=str(tmp_path / "corpus.jsonl"),
        )

    assert collection.queries == {"571018": "query 571018", "1": "query 1"}
    assert collection.corpus == {"10": "Title passage 10", "11": "passage 11", "6948601": "passage 6948601"}
    assert collection.qrels == {"571018": {"7349777": 1}, "1": {"10": 1}}
    assert collection.run("negatives")["1"] == {"10": 1.0, "11": 0.0}
    assert "1 of 4 passages have no text" in caplog.text and "7349777" in caplog.text

    (tmp_path / "queries.tsv").write_text("1\tquery one\n571018\tquery two\n", encoding="utf-8")
    collection = load_collection(
        str(tmp_path / "ids.parquet"), queries=str(tmp_path / "queries.tsv"), corpus=str(tmp_path / "corpus.jsonl")
    )
    assert collection.queries == {"571018": "query two", "1": "query one"}


@pytest.mark.parametrize(
    ("columns", "problem"),
    [
        (["question", "answer"], "no query or query_id column"),
        (["query", "positive", "passage", "label"], "both positive and passage columns; use one layout"),
        (["query", "text"], "no positive/positive_id or passage/passage_id column"),
        (
            ["query", "passage"],
            "(query, passage) rows need a label column (relevance grade) or a score column (teacher score)",
        ),
        (["query", "positive", "negative", "negative_1"], "both negative and negative_I columns; use one or the other"),
        (
            ["query", "positive", "negative_1", "negative_2_score"],
            "no negative_2/negative_2_id column for its score or id",
        ),
        (
            ["query", "positive", "negative_1", "negative_2", "positive_score", "negative_1_score"],
            "teacher scores need all of positive_score, negative_1_score, negative_2_score; missing negative_2_score",
        ),
        (
            ["query", "positive", "negative", "score"],
            "a score column beside positive is ambiguous (a margin positive - negative, or the positive's score?): "
            "name teacher scores positive_score and negative_score / negative_I_score, or drop the column",
        ),
    ],
)
def test_columns_that_fit_no_layout(columns, problem):
    with pytest.raises(ValueError) as error:
        column_layout(columns, "my/data")
    assert str(error.value) == f"my/data: columns {', '.join(columns)} fit no known layout: {problem} ({KNOWN_LAYOUTS})"


def test_unknown_layout_from_a_file_names_the_file_and_columns(tmp_path):
    path = tmp_path / "qa.parquet"
    Dataset.from_list([{"question": "q", "answer": "a"}]).to_parquet(path)
    with pytest.raises(
        ValueError, match=rf"^{path}: columns question, answer fit no known layout: no query or query_id column"
    ):
        load_collection(str(path))


@pytest.mark.parametrize(
    ("records", "problem"),
    [
        ([{"query": "q", "positive": "a"}, {"query": " ", "positive": "b"}], "ds row 1: 'query' is empty"),
        ([{"query": None, "positive": "a"}], "ds row 0: 'query' must be a string, found null"),
        ([{"query": "q", "positive": 3}], "ds row 0: 'positive' must be a string, found number"),
        ([{"query": "q", "passage": "a", "label": 0.5}], "ds row 0: 'label' must be a whole number >= 0, found 0.5"),
        ([{"query": "q", "passage": "a", "label": -1}], "ds row 0: 'label' must be a whole number >= 0, found -1"),
        ([{"query": "q", "passage": "a", "score": math.nan}], "ds row 0: 'score' must be a finite number, found nan"),
        ([{"query": "q", "positive": "a"}, {"query": "r"}], "ds row 1: missing column 'positive'"),
        (
            [{"query_id": "1", "query": "one", "positive": "a"}, {"query_id": "1", "query": "uno", "positive": "b"}],
            "ds row 1: query id '1' has another text on an earlier row: 'one' vs 'uno'",
        ),
        (
            [{"query_id": 1.5, "query": "one", "positive": "a"}],
            "ds row 0: 'query_id' must be a string or an integer, found number",
        ),
    ],
)
def test_bad_column_values(records, problem):
    with pytest.raises(DataFormatError) as error:
        collection_from_rows(dataset_rows(records, "ds"), name="ds", source="ds")
    assert str(error.value) == problem


def test_id_rows_need_their_tables_and_text_rows_refuse_them():
    with pytest.raises(
        ValueError, match=r"^ds: the rows name passage ids only; pass corpus= \(a table with their texts\)$"
    ):
        collection_from_rows(dataset_rows([{"query": "q", "positive_id": "1"}], "ds"), name="ds", source="ds")
    with pytest.raises(ValueError, match=r"^ds: the rows hold the query texts; queries= does not apply$"):
        collection_from_rows(
            dataset_rows([{"query": "q", "positive_id": "1"}], "ds"),
            name="ds",
            source="ds",
            queries=iter([]),
            corpus=iter([]),
        )
    with pytest.raises(ValueError, match=r"^ds: no rows$"):
        collection_from_rows(iter([]), name="ds", source="ds")


def test_files_options_and_types(tmp_path):
    path = write_jsonl(tmp_path / "flag.jsonl", [GOOD_FLAG])
    with pytest.raises(TypeError, match=r"unknown option\(s\) depth \(options: name, limit, split, queries, corpus\)"):
        load_collection(str(path), depth=3)
    with pytest.raises(ValueError, match=r"a file has no splits; split= does not apply"):
        load_collection(str(path), split="train")
    (tmp_path / "rows.xlsx").write_text("x")
    with pytest.raises(ValueError, match=r"rows.xlsx: unsupported file type '.xlsx'"):
        load_collection(str(tmp_path / "rows.xlsx"))
    with pytest.raises(FileNotFoundError, match=r"missing.parquet: no such file or directory"):
        load_collection(str(path), corpus=str(tmp_path / "missing.parquet"))


# --------------------------------------------------------------------------------------------
# The Hub, streamed
# --------------------------------------------------------------------------------------------


class Stream:
    """A stand-in for a streamed IterableDataset that counts the rows read from it."""

    def __init__(self, records):
        self.records, self.consumed = records, 0

    def __iter__(self):
        for record in self.records:
            self.consumed += 1
            yield record


MSMARCO = {
    "triplets": [
        {"query_id": "1", "positive_id": "10", "negative_id": "11"},
        {"query_id": "2", "positive_id": "20", "negative_id": "21"},
        {"query_id": "3", "positive_id": "30", "negative_id": "31"},
    ],
    "bert-ensemble-mse": [
        {"query_id": "1", "passage_id": "10", "score": 9.0},
        {"query_id": "2", "passage_id": "21", "score": 1.5},
        {"query_id": "1", "passage_id": "11", "score": 12.0},
        {"query_id": "3", "passage_id": "30", "score": 4.0},
    ],
    "bert-ensemble-margin-mse": [
        {"query_id": "1", "positive_id": "10", "negative_id": "11", "score": 4.028059},
        {"query_id": "1", "positive_id": "10", "negative_id": "12", "score": 10.5},
        {"query_id": "3", "positive_id": "30", "negative_id": "31", "score": 1.0},
    ],
    "queries": [{"query_id": qid, "query": f"query {qid}"} for qid in ("1", "2", "3")],
    "corpus": [
        {"passage_id": pid, "passage": f"passage {pid}"} for pid in ("10", "11", "12", "20", "21", "30", "31", "99")
    ],
}


@pytest.fixture
def hub(monkeypatch):
    """``datasets.load_dataset`` answering Hub requests from in-memory streams (local files still
    load); ``hub.calls`` lists the Hub requests."""
    local = datasets.load_dataset

    class Hub:
        calls: list[dict] = []
        streams: dict[str, Stream] = {}

    def load_dataset(path, name=None, *, split, streaming=False, **files):
        if files:
            return local(path, name, split=split, streaming=streaming, **files)
        Hub.calls.append({"path": path, "name": name, "split": split, "streaming": streaming})
        stream = Hub.streams[name] = Stream(MSMARCO[name])
        return stream if streaming else Dataset.from_list(MSMARCO[name])

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    return Hub


def test_msmarco_triplets_stream_only_the_limit(hub):
    collection = load_collection("sentence-transformers/msmarco", limit=2)

    assert {call["name"] for call in hub.calls} == {"triplets", "queries", "corpus"}
    assert all(
        call["streaming"] and call["split"] == "train" and call["path"] == "sentence-transformers/msmarco"
        for call in hub.calls
    )
    assert hub.streams["triplets"].consumed == 2
    assert hub.streams["queries"].consumed == 2  # stops once queries 1 and 2 are found
    assert hub.streams["corpus"].consumed == 5  # ... and passages 10, 11, 20, 21
    assert collection.name == "msmarco-triplets-2" and collection.qrels == {"1": {"10": 1}, "2": {"20": 1}}
    assert collection.run("triplets")["2"] == {"20": 1.0, "21": 0.0}


def test_msmarco_pointwise_teacher(hub):
    collection = load_collection("sentence-transformers/msmarco", limit=3, teacher="bert-ensemble-mse")

    assert hub.streams["bert-ensemble-mse"].consumed == 3 and "triplets" not in hub.streams
    assert all(call["streaming"] for call in hub.calls)
    assert collection.name == "msmarco-bert-ensemble-mse-3"
    assert collection.qrels == {} and set(collection.runs) == {"teacher"}
    assert list(collection.run("teacher")["1"].items()) == [("11", 12.0), ("10", 9.0)]
    assert collection.queries == {"1": "query 1", "2": "query 2"}
    assert set(collection.corpus) == {"10", "11", "21"}


def test_msmarco_margin_teacher(hub):
    collection = load_collection("sentence-transformers/msmarco", limit=2, teacher="bert-ensemble-margin-mse")

    assert hub.streams["bert-ensemble-margin-mse"].consumed == 2
    assert collection.qrels == {"1": {"10": 1}}
    assert collection.run("triplets") == {"1": {"10": 1.0, "11": 0.0, "12": 0.0}}
    assert list(collection.run("teacher_margin")["1"].items()) == [("10", 0.0), ("11", -4.028059), ("12", -10.5)]


def test_msmarco_unknown_teacher():
    with pytest.raises(
        ValueError, match=r"unknown teacher 'bert' \(teachers: bert-ensemble-mse, bert-ensemble-margin-mse\)"
    ):
        load_collection("sentence-transformers/msmarco", teacher="bert")


def test_hub_id_with_config_split_limit_and_tables(hub):
    collection = load_collection(
        "hf:sentence-transformers/msmarco:triplets",
        split="dev",
        limit=1,
        queries="hf:sentence-transformers/msmarco:queries",
        corpus="hf:sentence-transformers/msmarco:corpus",
    )

    assert hub.calls[0] == {
        "path": "sentence-transformers/msmarco",
        "name": "triplets",
        "split": "dev",
        "streaming": True,
    }
    assert all(call["streaming"] and call["split"] == "train" for call in hub.calls[1:])
    assert hub.streams["triplets"].consumed == 1
    assert collection.name == "sentence-transformers/msmarco:triplets"
    assert collection.queries == {"1": "query 1"} and collection.run("negatives") == {"1": {"10": 1.0, "11": 0.0}}
    assert collection.sources["qrels"] == "hf:sentence-transformers/msmarco:triplets"


def test_hub_id_without_limit_is_downloaded_not_streamed(hub):
    collection = load_collection(
        "hf:sentence-transformers/msmarco:bert-ensemble-mse",
        queries="hf:sentence-transformers/msmarco:queries",
        corpus="hf:sentence-transformers/msmarco:corpus",
    )
    assert [call["streaming"] for call in hub.calls] == [False, False, False]
    assert set(collection.run("teacher")) == {"1", "2", "3"}


# --------------------------------------------------------------------------------------------
# Margins
# --------------------------------------------------------------------------------------------


def test_margins_become_scores_relative_to_the_first_positive(caplog):
    rows = [
        # query a: p1 anchors at 0; n1 = -5, n2 = -2; p2 shares n1, so p2 = n1 + 4 = -1
        {"query_id": "a", "positive_id": "p1", "negative_id": "n1", "score": 5.0},
        {"query_id": "a", "positive_id": "p1", "negative_id": "n2", "score": 2.0},
        {"query_id": "a", "positive_id": "p2", "negative_id": "n1", "score": 4.0},
        # query b: the pair (p4, n4) shares nothing with the first positive's pairs
        {"query_id": "b", "positive_id": "p3", "negative_id": "n3", "score": 1.0},
        {"query_id": "b", "positive_id": "p4", "negative_id": "n4", "score": 3.0},
        # query c: the second margin contradicts the first
        {"query_id": "c", "positive_id": "p5", "negative_id": "n5", "score": 1.0},
        {"query_id": "c", "positive_id": "p5", "negative_id": "n5", "score": 2.0},
    ]
    queries = [{"query_id": qid, "query": qid} for qid in "abc"]
    corpus = [
        {"passage_id": pid, "passage": pid} for pid in ("p1", "p2", "n1", "n2", "p3", "n3", "p4", "n4", "p5", "n5")
    ]
    with caplog.at_level(logging.WARNING, logger="hf_rerank"):
        collection = collection_from_margin_rows(
            dataset_rows(rows, "m"), dataset_rows(queries, "mq"), dataset_rows(corpus, "mc"), name="m", source="m"
        )

    margin = collection.run("teacher_margin")
    assert list(margin["a"].items()) == [("p1", 0.0), ("p2", -1.0), ("n2", -2.0), ("n1", -5.0)]
    assert margin["b"] == {"p3": 0.0, "n3": -1.0}
    assert margin["c"] == {"p5": 0.0, "n5": -1.0}
    assert collection.qrels["b"] == {"p3": 1, "p4": 1}
    assert collection.run("negatives")["b"] == {"p3": 1.0, "p4": 1.0, "n3": 0.0, "n4": 0.0}
    assert "m: 1 of 7 pairs are not linked to their query's first positive" in caplog.text
    assert "m: 1 pairs have a margin that differs by more than 0.001" in caplog.text


# --------------------------------------------------------------------------------------------
# Several datasets in one run
# --------------------------------------------------------------------------------------------


def test_collections_of_different_formats_union(tmp_path, hub):
    flag = load_collection(
        str(
            write_jsonl(
                tmp_path / "flag.jsonl",
                [
                    {
                        "query": "what is rba",
                        "pos": ["rba is a bank"],
                        "neg": ["passage 10"],
                        "pos_scores": [2.0],
                        "neg_scores": [1.0],
                    },
                ],
            )
        )
    )
    path = tmp_path / "columns.parquet"
    Dataset.from_list([{"query": "who is gray", "positive": "rba is a bank", "negative": "gray is"}]).to_parquet(path)
    columns = load_collection(str(path))
    msmarco = load_collection("sentence-transformers/msmarco", limit=1)

    union = IRCollection.union(flag, columns, msmarco, name="mix")

    assert set(union.queries) == {q("what is rba"), q("who is gray"), "1"}
    assert union.corpus[p("rba is a bank")] == "rba is a bank"  # one passage, shared by two datasets
    assert set(union.runs) == {"negatives", "teacher", "triplets"}
    assert set(union.run("negatives")) == {q("what is rba"), q("who is gray")}
    assert union.sources["run:negatives"] == f"{tmp_path / 'flag.jsonl'} + {path}"

    same_query = load_collection(
        str(write_jsonl(tmp_path / "again.jsonl", [{"query": "who is gray", "pos": ["x"], "neg": []}]))
    )
    with pytest.raises(
        ValueError, match=rf"query '{q('who is gray')}' is in both 'columns' .* a union needs disjoint ids"
    ):
        IRCollection.union(columns, same_query)
