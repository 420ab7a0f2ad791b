"""Model references: directories, the verified bundled model, Hub ids offline."""

import pytest

from hf_rerank.models import resolve
from hf_rerank.models.resolve import ModelUnavailableError, resolve_model


def test_directory_is_itself(tmp_path):
    assert resolve_model(tmp_path) == tmp_path


def test_bundled_id_resolves_to_verified_package_copy():
    path = resolve_model("sentence-transformers/all-MiniLM-L6-v2")
    assert (path / "model.safetensors").is_file()
    assert resolve.sha256_of(path / "model.safetensors") == resolve.BUNDLED_SHA256


def test_bundled_weights_with_wrong_hash_are_refused():
    with pytest.raises(ModelUnavailableError, match="does not match upstream all-MiniLM-L6-v2.*refusing"):
        resolve.bundled_model_path(expected_sha256="0" * 64)


def test_hub_id_offline_gives_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(
        ModelUnavailableError,
        match="could not fetch model 'someone/not-cached@checkpoint-500'.*local checkpoint directory",
    ):
        resolve_model("someone/not-cached@checkpoint-500")


def test_missing_local_path_is_not_sent_to_the_hub(tmp_path):
    with pytest.raises(ModelUnavailableError, match="not a model directory"):
        resolve_model(str(tmp_path / "no" / "such" / "dir"))
