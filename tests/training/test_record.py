"""RunRecord, the contract of a run's metrics.json: round trips for both kinds of run, one protocol per
evaluation name, old (unversioned) files upgraded on load, and errors that name the file and the field.

``old_records/`` holds metrics.json files exactly as the runs wrote them before records were versioned
(the cross-encoder run of tests/recipes/test_ce_lion.py and the embedding run of
tests/training/test_embedding_trainer.py; only the tiny encoder's temporary path was shortened)."""

import dataclasses
import json
from pathlib import Path

import pytest

from hf_rerank.errors import HfRerankError
from hf_rerank.training.record import SCHEMA_VERSION, EvalProtocol, RecordError, RunRecord

OLD = Path(__file__).parent / "old_records"


def old(name: str) -> dict:
    return json.loads((OLD / f"{name}_metrics.json").read_text())


def test_an_old_cross_encoder_file_loads_with_its_flat_protocol_under_its_evaluation_name():
    data = old("cross_encoder")
    assert "schema_version" not in data and "data" in data["eval_protocol"]  # the old, flat shape
    record = RunRecord.load(OLD / "cross_encoder_metrics.json")
    assert record.schema_version == SCHEMA_VERSION and record.kind == "cross-encoder"
    assert record.eval_protocol == {"sample": EvalProtocol(**data["eval_protocol"])}
    assert record.protocol("sample").run == "bm25" and record.protocol("sample").depth == 50
    upgraded = record.to_json()
    assert upgraded["eval_protocol"] == {"sample": data["eval_protocol"]}
    # everything else the run wrote is kept, value for value
    assert {k: v for k, v in upgraded.items() if k not in ("schema_version", "kind", "eval_protocol")} == {
        k: v for k, v in data.items() if k != "eval_protocol"
    }
    assert record.optimizer["name"] == "lion" and record.train_data == "sample-train"


def test_an_old_embedding_file_loads_unchanged_apart_from_version_and_kind():
    data = old("embedding")
    record = RunRecord.load(OLD / "embedding_metrics.json")
    assert record.kind == "embedding" and set(record.eval_protocol) == {"sample", "sample_dense"}
    assert record.protocol("sample_dense").k == 100 and record.protocol("sample_dense").run is None
    assert record.to_json() == {"schema_version": SCHEMA_VERSION, "kind": "embedding", **data}
    assert record.protocol("unknown") == EvalProtocol()


@pytest.mark.parametrize("name", ["cross_encoder", "embedding"])
def test_a_record_round_trips_through_its_file(tmp_path, name):
    record = RunRecord.load(OLD / f"{name}_metrics.json")
    record.write(tmp_path / "metrics.json")
    assert RunRecord.load(tmp_path / "metrics.json") == record
    written = json.loads((tmp_path / "metrics.json").read_text())
    assert list(written)[:2] == ["schema_version", "kind"] and written == record.to_json()


def test_embedding_only_fields_are_absent_from_cross_encoder_records():
    record = RunRecord(kind="cross-encoder", eval={"dl19": {"ndcg@10": 0.5}})
    assert "pooling" not in record.to_json() and "negatives" not in record.to_json()
    embedding = RunRecord(kind="embedding", eval={"dl19": {"ndcg@10": 0.5}}, negatives=None)
    assert embedding.to_json()["negatives"] is None  # written, as the embedding run always did


def test_a_run_assembling_a_wrong_field_fails_before_writing(tmp_path):
    record = RunRecord(kind="cross-encoder", eval={"dl19": {"ndcg@10": 0.5}}, train_seconds="long")
    with pytest.raises(RecordError, match=r'metrics.json: field "train_seconds": expected a number, got "long"'):
        record.write(tmp_path / "metrics.json")
    mixed = RunRecord(kind="cross-encoder", eval={"dl19": {"ndcg@10": 0.5}}, pooling="mean")
    with pytest.raises(RecordError, match='field "pooling": only embedding runs record it'):
        mixed.write(tmp_path / "metrics.json")
    assert not (tmp_path / "metrics.json").exists()


VALID = {"schema_version": SCHEMA_VERSION, "kind": "cross-encoder", "eval": {"dl19": {"ndcg@10": 0.5}}}


@pytest.mark.parametrize(
    "content, message",
    [
        ("{oops", "not valid JSON"),
        ("[1, 2]", "expected a JSON object, got list"),
        (
            {**VALID, "eval": {"dl19": {"ndcg@10": "high"}}},
            r'field "eval": expected an object \{name: \{metric: number',
        ),
        ({**VALID, "eval": {}}, r'field "eval": expected an object \{name: \{metric: number\}\} with at least one'),
        ({k: v for k, v in VALID.items() if k != "eval"}, 'field "eval": missing'),
        ({k: v for k, v in VALID.items() if k != "kind"}, 'field "kind": missing'),
        ({**VALID, "kind": "reranker"}, 'field "kind": expected one of cross-encoder, embedding, got "reranker"'),
        ({**VALID, "schema_version": 2}, 'field "schema_version": this hf-rerank reads version 1, the file has 2'),
        ({**VALID, "first_stage": {"dl19": [0.3]}}, r'field "first_stage": expected an object \{name:'),
        ({**VALID, "seed": 1.5}, 'field "seed": expected an integer, got 1.5'),
        (
            {**VALID, "hardware": "H100"},
            'unknown field "hardware"; a version 1 run record has schema_version, kind, eval,',
        ),
        ({**VALID, "eval_protocol": {"dl19": {"depth": "100"}}}, r'field "eval_protocol.dl19": key "depth": expected'),
        ({**VALID, "eval_protocol": {"dl19": {"deep": 1}}}, r'field "eval_protocol.dl19": unknown key "deep"'),
        ({**VALID, "eval_protocol": {"data": "dl19"}}, r'field "eval_protocol.data": expected an object'),
        ({**VALID, "negatives": "mined"}, 'field "negatives": only embedding runs record it'),
        ({**VALID, "eval": None}, 'field "eval": missing value'),
    ],
)
def test_invalid_files_are_refused_naming_the_file_and_the_field(tmp_path, content, message):
    path = tmp_path / "run" / "metrics.json"
    path.parent.mkdir()
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    with pytest.raises(RecordError, match=message) as raised:
        RunRecord.load(path)
    assert str(raised.value).startswith(f"{path}: ")
    assert isinstance(raised.value, HfRerankError) and isinstance(raised.value, ValueError)


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(RecordError, match="metrics.json: no such file"):
        RunRecord.load(tmp_path / "metrics.json")


def test_an_old_file_is_upgraded_only_where_it_is_unversioned():
    flat = {"data": "dl19", "run": "bm25", "depth": 100}
    record = RunRecord.from_json({"eval": {"a": {"ndcg@10": 0.5}, "b": {"ndcg@10": 0.4}}, "eval_protocol": flat})
    assert (
        record.eval_protocol == {"a": EvalProtocol(**flat), "b": EvalProtocol(**flat)}
        and record.kind == "cross-encoder"
    )
    assert RunRecord.from_json({"eval": {"a": {"x": 1.0}}, "pooling": "mean"}).kind == "embedding"
    with pytest.raises(RecordError, match='field "eval_protocol.data"'):  # a versioned file is never guessed at
        RunRecord.from_json({**VALID, "eval_protocol": flat})


def test_the_base_comparison_is_written_only_when_made_and_checked_on_load(tmp_path):
    record = RunRecord.load(OLD / "embedding_metrics.json")
    assert record.base_comparison is None and "base_comparison" not in record.to_json()
    assert "base_embedding_space" not in record.to_json()
    comparison = {
        "sample": {
            "model": "tiny-encoder",
            "metrics": {"ndcg@10": 0.2},
            "significance": {"ndcg@10": {"delta": 0.1, "p_t_test": 0.04, "p_randomisation": 0.05}},
        }
    }
    compared = dataclasses.replace(record, base_comparison=comparison, base_embedding_space={"anisotropy": 0.5})
    compared.write(tmp_path / "metrics.json")
    assert RunRecord.load(tmp_path / "metrics.json") == compared
    broken = {**compared.to_json(), "base_comparison": {"sample": {"metrics": {"ndcg@10": 0.2}}}}
    (tmp_path / "metrics.json").write_text(json.dumps(broken))
    with pytest.raises(RecordError, match=r'field "base_comparison": expected an object \{name: \{"model"'):
        RunRecord.load(tmp_path / "metrics.json")
