"""hf-rerank card / publish on the command line, and a published model used by other commands by Hub id."""

import json
import shutil

import yaml

from hf_rerank.cli import main
from hf_rerank.hub.publish import publish
from hf_rerank.hub.retry import Retry
from tests.hub.conftest import offline


def test_card_writes_the_readme_of_a_run(cross_encoder_run, tmp_path, capsys):
    assert main(["card", str(cross_encoder_run)]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {cross_encoder_run / 'README.md'}"
    assert "library_name: transformers" in (cross_encoder_run / "README.md").read_text()
    assert main(["card", str(cross_encoder_run), "--into", str(tmp_path / "elsewhere"), "--license", "mit"]) == 0
    assert "license: mit" in (tmp_path / "elsewhere" / "README.md").read_text()


def test_card_needs_a_run_or_all_offline(cross_encoder_run, capsys):
    assert main(["card"]) == 2
    assert "give either OUTPUT_DIR or --all-offline" in capsys.readouterr().err
    (cross_encoder_run / "metrics.json").unlink()
    assert main(["card", str(cross_encoder_run)]) == 2
    assert "no metrics.json" in capsys.readouterr().err


def test_all_offline_regenerates_every_offline_card(cross_encoder_run, embedding_run, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # configs name output directories relative to where the command runs
    shutil.copytree(cross_encoder_run, tmp_path / "outputs" / "offline_ce")
    shutil.copytree(embedding_run, tmp_path / "outputs" / "paper2" / "lora_hard")
    configs = tmp_path / "configs"
    configs.mkdir()
    (configs / "offline_ce.yaml").write_text(yaml.safe_dump({"output_dir": "outputs/offline_ce"}))
    (configs / "paper2_offline.yaml").write_text(
        yaml.safe_dump({"output_dir": "outputs/paper2", "variants": {"lora_hard": {"lora_r": 16}, "full_random": {}}})
    )
    (configs / "paper_minilm_lion.yaml").write_text(yaml.safe_dump({"output_dir": "outputs/not-offline"}))

    assert main(["card", "--all-offline", "--configs", "configs", "--into", "cards"]) == 1  # one run is missing
    captured = capsys.readouterr()
    assert "skipped paper2_offline-full_random: outputs/paper2/full_random has no metrics.json" in captured.err
    assert sorted(p.name for p in (tmp_path / "cards").iterdir()) == ["offline_ce", "paper2_offline-lora_hard"]
    assert sorted(p.name for p in (tmp_path / "cards" / "paper2_offline-lora_hard").iterdir()) == [
        "README.md",
        "training_dynamics.png",
        "umap.png",
    ]
    readme = (tmp_path / "cards" / "offline_ce" / "README.md").read_text()
    assert 'CrossEncoder.from_pretrained("outputs/offline_ce")' in readme  # where the recipe writes the model
    shutil.copytree(embedding_run, tmp_path / "outputs" / "paper2" / "full_random")
    assert main(["card", "--all-offline", "--configs", "configs", "--into", "cards"]) == 0


def test_publish_on_the_command_line(hub, cross_encoder_run, tmp_path, capsys):
    assert main(["publish", str(cross_encoder_run), "--repo-id", "alice/ce", "--dry-run", str(tmp_path / "dry")]) == 0
    assert "would push 11 files to main" in capsys.readouterr().out and hub.requests == []
    assert main(["publish", str(cross_encoder_run), "--repo-id", "alice/ce", "--checkpoints", "--public"]) == 0
    out = capsys.readouterr().out
    assert f"pushed 7 files to checkpoint-2: {hub.url}/alice/ce/tree/checkpoint-2" in out
    assert f"pushed 11 files to main: {hub.url}/alice/ce/tree/main" in out and not hub.repos["alice/ce"].private
    assert main(["publish", str(cross_encoder_run), "--repo-id", "alice/ce"]) == 2
    assert "pass --allow-overwrite" in capsys.readouterr().err


def test_a_published_model_and_checkpoint_branch_work_in_evaluate_also_offline(
    hub, cross_encoder_run, tmp_path, monkeypatch, capsys
):
    publish(cross_encoder_run, "alice/ce", checkpoints=True, retry=Retry(attempts=2, base_delay=0.01))
    local = tmp_path / "local"
    arguments = ["evaluate", "--data", "sample", "--run", "bm25", "--depth", "5", "--precision", "fp32", "--quiet"]
    assert main([*arguments, "--model", str(cross_encoder_run), "--output", str(local)]) == 0
    for reference in ("alice/ce", "alice/ce@checkpoint-2"):
        assert main([*arguments, "--model", reference, "--output", str(tmp_path / reference.replace("/", "_"))]) == 0
    offline(monkeypatch)
    assert main([*arguments, "--model", "alice/ce", "--output", str(tmp_path / "offline")]) == 0
    capsys.readouterr()
    expected = json.loads((local / "metrics.json").read_text())["metrics"]
    for name in ("alice_ce", "offline"):
        assert json.loads((tmp_path / name / "metrics.json").read_text())["metrics"] == expected
