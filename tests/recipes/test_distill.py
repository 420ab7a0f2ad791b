"""The offline distillation recipe: its config, and a tiny end-to-end run whose metrics.json and
model card name the teacher."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "recipes"))

import ce_lion  # noqa: E402

from hf_rerank.data.formats import write_run  # noqa: E402
from hf_rerank.data.sources import load_collection  # noqa: E402
from hf_rerank.training.config import parse_args  # noqa: E402

CONFIG = ROOT / "recipes" / "configs" / "offline_minilm_dl20_distill.yaml"


def test_config_distils_with_listwise_kl_and_never_trains_on_dl19():
    model, data, args = parse_args(ce_lion.make_parser(), ["--config", str(CONFIG)])
    assert (args.loss, args.loss_options(), args.group_size) == ("kl", {"temperature": 0.1}, 8)
    assert data.train_data == ["../shared/data/trec-dl/dl20", "../shared/data/trec-dl/dl22-unjudged"]
    assert data.teacher == ["outputs/distill-data/teacher-dl20.run", "outputs/distill-data/teacher-dl22.run"]
    assert (data.eval_data, data.eval_run, data.eval_depth) == ("../shared/data/trec-dl/dl19", "bm25", 100)
    assert not any("dl19" in reference for reference in data.train_data + data.teacher)


@pytest.mark.parametrize(
    ("name", "data_dir", "groups_per_query"),
    [
        ("offline_minilm_dl20_distill_msmarco.yaml", "outputs/distill-data", 2),
        ("offline_minilm_dl20_distill_msmarco_1430q.yaml", "outputs/distill-data-1430q", 2),
    ],
)
def test_msmarco_configs_differ_from_the_base_recipe_only_in_their_queries(name, data_dir, groups_per_query):
    def settings(part) -> dict:
        return {field.name: getattr(part, field.name) for field in dataclasses.fields(part)}

    base = [settings(part) for part in parse_args(ce_lion.make_parser(), ["--config", str(CONFIG)])]
    model, data, args = parse_args(ce_lion.make_parser(), ["--config", str(CONFIG.with_name(name))])
    assert data.train_data == base[1]["train_data"] + [f"{data_dir}/msmarco-dev-dense"]
    assert data.teacher == [
        f"{data_dir}/teacher-dl20.run",
        f"{data_dir}/teacher-dl22.run",
        f"{data_dir}/teacher-msmarco.run",
    ]
    assert data.groups_per_query == groups_per_query and base[1]["groups_per_query"] == 6
    assert not any("dl19" in reference for reference in data.train_data + data.teacher)
    changed = {"train_data", "teacher", "groups_per_query", "output_dir", "logging_dir", "run_name"}
    for part, before in zip((model, data, args), base):
        assert {key: value for key, value in settings(part).items() if key not in changed} == {
            key: value for key, value in before.items() if key not in changed
        }


def test_a_teacher_loss_without_a_teacher_is_refused(tmp_path):
    with pytest.raises(ValueError, match="loss 'kl' learns from a teacher's scores: give --teacher"):
        ce_lion.main(_without_teacher(tmp_path))


def _without_teacher(tmp_path: Path) -> list[str]:
    """The distillation config with the teacher dropped: written to a copy without the key."""
    import yaml

    config = yaml.safe_load(CONFIG.read_text())
    del config["teacher"]
    config.update(
        {
            "train_data": "sample-train",
            "eval_data": "sample-test",
            "output_dir": str(tmp_path / "run"),
            "max_steps": 1,
            "precision": "fp32",
        }
    )
    path = tmp_path / "no_teacher.yaml"
    path.write_text(yaml.safe_dump(config))
    return ["--config", str(path)]


def test_tiny_distillation_run_records_and_cards_its_teacher(tmp_path, tiny_encoder_dir):
    sample = load_collection("sample-train")
    # a teacher over each query's BM25 candidates, with 3 or more scored passages per query
    teacher = {
        qid: {pid: 1.0 / rank for rank, pid in enumerate(list(ranked)[:5], start=1)}
        for qid, ranked in sample.run("bm25").items()
    }
    write_run(tmp_path / "teacher.run", teacher)
    out = tmp_path / "run"
    summary = ce_lion.main(
        [
            "--config",
            str(CONFIG),
            "--model_name_or_path",
            str(tiny_encoder_dir),
            "--train_data",
            "sample-train",
            "--teacher",
            str(tmp_path / "teacher.run"),
            "--eval_data",
            "sample-test",
            "--eval_name",
            "sample",
            "--group_size",
            "4",
            "--groups_per_query",
            "1",
            "--max_steps",
            "3",
            "--precision",
            "fp32",
            "--max_length",
            "64",
            "--eval_depth",
            "20",
            "--output_dir",
            str(out),
        ]
    )
    saved = json.loads((out / "metrics.json").read_text())
    assert saved == json.loads(json.dumps(summary))
    assert saved["loss"] == "kl" and saved["loss_options"] == {"temperature": 0.1}
    assert saved["teacher"]["sources"] == [
        {"source": str(tmp_path / "teacher.run"), "queries": len(teacher), "passages": sum(map(len, teacher.values()))}
    ]
    assert saved["teacher"]["group_size"] == 4 and saved["example_type"] == "GroupExample"
    card = (out / "README.md").read_text()
    assert "| Teacher | distilled from `teacher.run` (run file)" in card
    assert "kl (temperature 0.1)" in card
    assert "on `sample-train` by distillation from a teacher's scores" in card
