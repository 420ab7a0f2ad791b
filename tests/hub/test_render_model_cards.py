"""recipes/render_model_cards.py: the cards of every offline recipe config's run, regenerated into one directory."""

import importlib.util
import shutil
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("render_model_cards", ROOT / "recipes" / "render_model_cards.py")
render_model_cards = importlib.util.module_from_spec(spec)
spec.loader.exec_module(render_model_cards)
main = render_model_cards.main


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

    assert main(["--configs", "configs", "--into", "cards"]) == 1  # one run is missing
    captured = capsys.readouterr()
    skipped = "render_model_cards: skipped paper2_offline-full_random: outputs/paper2/full_random has no metrics.json"
    assert skipped in captured.err
    assert sorted(p.name for p in (tmp_path / "cards").iterdir()) == ["offline_ce", "paper2_offline-lora_hard"]
    assert sorted(p.name for p in (tmp_path / "cards" / "paper2_offline-lora_hard").iterdir()) == [
        "README.md",
        "training_dynamics.png",
        "umap.png",
    ]
    readme = (tmp_path / "cards" / "offline_ce" / "README.md").read_text()
    assert 'CrossEncoder.from_pretrained("outputs/offline_ce")' in readme  # where the recipe writes the model
    shutil.copytree(embedding_run, tmp_path / "outputs" / "paper2" / "full_random")
    assert main(["--configs", "configs", "--into", "cards"]) == 0


def test_a_directory_without_offline_configs_is_refused(tmp_path):
    (tmp_path / "paper_minilm_lion.yaml").write_text(yaml.safe_dump({"output_dir": "outputs/x"}))
    with pytest.raises(SystemExit, match="no offline configs"):
        main(["--configs", str(tmp_path)])
    (tmp_path / "offline_x.yaml").write_text(yaml.safe_dump({"model_name_or_path": "m"}))
    with pytest.raises(SystemExit, match="offline_x.yaml: no output_dir"):
        main(["--configs", str(tmp_path)])
