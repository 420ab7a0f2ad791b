"""hf-rerank card / publish on the command line, and a published model used by other commands by Hub id."""

import json

import pytest

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


def test_card_needs_a_run_directory_with_metrics(cross_encoder_run, capsys):
    with pytest.raises(SystemExit) as raised:
        main(["card"])
    assert raised.value.code == 2 and "the following arguments are required: OUTPUT_DIR" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # regenerating model_cards/ is recipes/render_model_cards.py's job
        main(["card", "--all-offline"])
    (cross_encoder_run / "metrics.json").unlink()
    assert main(["card", str(cross_encoder_run)]) == 2
    assert "no metrics.json" in capsys.readouterr().err


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
