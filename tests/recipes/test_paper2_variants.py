"""recipes/paper2_variants.py: configs parse; a tiny two-variant run writes variants.json, variants.md and umap.png."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "recipes" / "configs"
spec = importlib.util.spec_from_file_location("paper2_variants", ROOT / "recipes" / "paper2_variants.py")
paper2 = importlib.util.module_from_spec(spec)
spec.loader.exec_module(paper2)


@pytest.mark.parametrize("name", ["paper2_offline.yaml", "paper2_msmarco.yaml"])
def test_configs_hold_the_papers_four_variants(name):
    shared, variants = paper2.load_config(CONFIGS / name)
    assert list(variants) == ["full_random", "full_hard", "lora_random", "lora_hard"]
    assert shared["loss"] == "triplet" and shared["distance"] == "euclidean" and shared["margin"] == 5.0
    assert shared["mine_window"] == [50, 200] and shared["mine_seed"] == 42
    for name in ("lora_random", "lora_hard"):
        assert variants[name]["lora_r"] == 16 and variants[name]["lora_alpha"] == 32
        assert variants[name]["lora_target_modules"] == ["query", "value"] and variants[name]["max_length"] == 512
    assert {variants[n]["negatives"] for n in variants} == {"random", "mined"}


def test_unknown_keys_and_base_are_refused(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"loss": "triplet", "variants": {"a": {"lr": 1}}}))
    with pytest.raises(SystemExit, match="variant 'a': unknown argument"):
        paper2.load_config(bad)
    bad.write_text(yaml.safe_dump({"variants": {"base": {}}}))
    with pytest.raises(SystemExit, match="'base' is the untrained model"):
        paper2.load_config(bad)


@pytest.mark.slow
def test_two_variants_on_the_sample(tmp_path, tiny_encoder_dir):
    config = tmp_path / "tiny.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "model_name_or_path": str(tiny_encoder_dir),
                "train_data": "sample-train",
                "positive_grade": 2,
                "eval_data": "sample-test",
                "eval_name": "sample",
                "eval_depth": 50,
                "retrieval_data": ["sample-train"],
                "retrieval_k": 100,
                "space_pairs": 20,
                "loss": "triplet",
                "learning_rate": 1e-3,
                "max_steps": 2,
                "per_device_train_batch_size": 4,
                "max_length": 48,
                "eval_strategy": "no",
                "save_strategy": "no",
                "report_to": "none",
                "use_cpu": True,
                "output_dir": str(tmp_path / "out"),
                "variants": {
                    "full_random": {"negatives": "random"},
                    "lora_random": {"negatives": "random", "lora_r": 2, "lora_alpha": 4},
                },
            }
        )
    )
    rows = paper2.main(["--config", str(config), "--seed", "1"])
    saved = json.loads((tmp_path / "out" / "variants.json").read_text())
    assert saved == json.loads(json.dumps(rows))
    assert [row["variant"] for row in saved] == ["base", "full_random", "lora_random"]
    for row in saved:
        assert set(row["eval"]) == {"sample", "sample_dense"} and "ndcg@10" in row["eval"]["sample"]
        assert {"train_seconds", "trainable_parameters", "embedding_space", "inference_seconds"} <= set(row)
    assert saved[0]["trainable_parameters"] == 0 and saved[0]["train_seconds"] == 0
    assert 0 < saved[2]["trainable_parameters"] < saved[1]["trainable_parameters"]
    assert saved[2]["lora"]["r"] == 2
    for row in saved[1:]:
        test = row["significance_vs_base"]["sample"]["ndcg@10"]
        assert 0 <= test["p_t_test"] <= test["p_holm"] <= 1
        assert test["delta"] == pytest.approx(
            row["eval"]["sample"]["ndcg@10"] - saved[0]["eval"]["sample"]["ndcg@10"], abs=1e-9
        )
    assert (tmp_path / "out" / "umap.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| lora_random |" in (tmp_path / "out" / "variants.md").read_text()
    from huggingface_hub import ModelCard

    card = ModelCard.load(tmp_path / "out" / "lora_random" / "README.md")  # every trained model gets its card
    assert card.data.pipeline_tag == "sentence-similarity" and "hf-rerank" in card.data.tags
    # each variant's own directory holds what its card says about the base model
    from hf_rerank.training.record import RunRecord

    for row in saved[1:]:
        variant = tmp_path / "out" / row["variant"]
        record = RunRecord.load(variant / "metrics.json")
        assert set(record.base_comparison) == {"sample", "sample_dense"}
        comparison = record.base_comparison["sample"]
        assert comparison["model"] == str(tiny_encoder_dir) and comparison["metrics"] == saved[0]["eval"]["sample"]
        test = comparison["significance"]["ndcg@10"]
        assert test["delta"] == pytest.approx(row["significance_vs_base"]["sample"]["ndcg@10"]["delta"], abs=1e-12)
        assert test["p_t_test"] == pytest.approx(row["significance_vs_base"]["sample"]["ndcg@10"]["p_t_test"])
        assert 0 <= test["p_randomisation"] <= 1
        assert record.base_embedding_space == saved[0]["embedding_space"]
        assert (variant / "umap.png").read_bytes() == (tmp_path / "out" / "umap.png").read_bytes()
        body = (variant / "README.md").read_text()
        assert "| Δ vs base |" in body and "](umap.png)" in body

    # an output written before metrics.json had a schema_version (no base comparison, no umap copy, no
    # kind) is brought back to the same record and the same card by --convert, without training
    for row in saved[1:]:
        variant = tmp_path / "out" / row["variant"]
        card_before, record_before = (variant / "README.md").read_text(), RunRecord.load(variant / "metrics.json")
        old = json.loads((variant / "metrics.json").read_text())
        for key in ("schema_version", "kind", "base_comparison", "base_embedding_space"):
            old.pop(key, None)
        (variant / "metrics.json").write_text(json.dumps(old))
        (variant / "umap.png").unlink()
        (variant / "README.md").unlink()
        assert RunRecord.load(variant / "metrics.json").base_comparison is None
        paper2.main(["--convert", str(tmp_path / "out")])
        assert RunRecord.load(variant / "metrics.json") == record_before
        assert (variant / "README.md").read_text() == card_before
    with pytest.raises(SystemExit, match="no variants.json"):
        paper2.main(["--convert", str(tmp_path)])
