"""The publisher against the fake Hub: what it receives, what comes back, and the rules it keeps
(private by default, no silent overwrite, retries, auth errors, the token never leaks)."""

import json
import logging

import numpy as np
import pytest
from huggingface_hub import HfApi, ModelCard, hf_hub_download

from hf_rerank.hub.errors import HubAuthError, PublishError
from hf_rerank.hub.publish import publish
from hf_rerank.hub.retry import Retry
from hf_rerank.models.bi_encoder import BiEncoder
from hf_rerank.models.cross_encoder import CrossEncoder
from tests.hub.conftest import BASE_ID, TOKEN, offline, tree

FAST = Retry(attempts=3, base_delay=0.01)
QUERIES = ["what do bees make", "what do bees make", "who wrote hamlet"]
PASSAGES = ["bees make honey from nectar", "the stock market fell on monday", "hamlet was written by shakespeare"]
CE_MAIN = {
    ".gitattributes",
    "README.md",
    "training_dynamics.png",
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "metrics.json",
    "log_history.json",
    "eval_dl19/metrics.json",
    "eval_dl19/run.trec",
    "eval_dl19_base/metrics.json",
}


def scores(cls, reference, **options):
    return cls.from_pretrained(reference, precision="fp32", **options).score_pairs(
        QUERIES, PASSAGES, show_progress=False
    )


def test_cross_encoder_published_with_checkpoints_comes_back_identical(hub, cross_encoder_run, monkeypatch):
    before = scores(CrossEncoder, cross_encoder_run)
    result = publish(cross_encoder_run, "alice/ce", checkpoints=True, retry=FAST)

    repo = hub.repos["alice/ce"]
    assert repo.private  # private by default
    main = repo.files("main")
    assert set(main) == CE_MAIN  # no training_args.bin, no checkpoint-2/ on main
    assert main["model.safetensors"].lfs and main["training_dynamics.png"].lfs and not main["config.json"].lfs
    assert main["model.safetensors"].content == (cross_encoder_run / "model.safetensors").read_bytes()
    assert [c.message for c in repo.history("main")] == [
        "hf-rerank: cross-encoder ce-run (dl19 ndcg@10 0.4750)",
        "initial commit",
    ]
    checkpoint = repo.files("checkpoint-2")
    assert set(checkpoint) == {
        ".gitattributes",
        "README.md",
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "optimizer.pt",
        "trainer_state.json",
    }
    assert [c.message for c in repo.history("checkpoint-2")][0] == "hf-rerank: checkpoint at step 2"
    assert result.commits == {"checkpoint-2": repo.branches["checkpoint-2"], "main": repo.branches["main"]}

    # the card as published: snippets load the repository, model-index equals metrics.json
    card = ModelCard.load(hf_hub_download("alice/ce", "README.md"))
    assert 'CrossEncoder.from_pretrained("alice/ce")' in card.text
    metrics = json.loads((cross_encoder_run / "metrics.json").read_text())
    assert {r.metric_type: r.metric_value for r in card.data.eval_results} == metrics["eval"]["dl19"]

    # downloaded back: the same scores, from main and from the checkpoint branch; then offline from the cache
    np.testing.assert_array_equal(scores(CrossEncoder, "alice/ce"), before)
    np.testing.assert_array_equal(
        scores(CrossEncoder, "alice/ce@checkpoint-2"), scores(CrossEncoder, cross_encoder_run / "checkpoint-2")
    )
    offline(monkeypatch)
    requests = len(hub.requests)
    np.testing.assert_array_equal(scores(CrossEncoder, "alice/ce"), before)
    np.testing.assert_array_equal(
        scores(CrossEncoder, "alice/ce@checkpoint-2"), scores(CrossEncoder, cross_encoder_run / "checkpoint-2")
    )
    assert len(hub.requests) == requests  # nothing asked of the Hub


def publish_base_encoder(tiny_encoder_dir) -> None:
    """Put the tiny encoder on the fake Hub as the adapters' base model."""
    api = HfApi()
    api.create_repo(BASE_ID)
    api.upload_folder(repo_id=BASE_ID, folder_path=str(tiny_encoder_dir), commit_message="tiny base encoder")


def test_lora_embedding_published_comes_back_identical(hub, embedding_run, tiny_encoder_dir):
    from peft import PeftModel
    from transformers import AutoModel

    publish_base_encoder(tiny_encoder_dir)
    before = scores(BiEncoder, embedding_run)
    publish(embedding_run, "alice/emb", retry=FAST)
    main = hub.repos["alice/emb"].files("main")
    assert {
        "modules.json",
        "1_Pooling/config.json",
        "2_Normalize",
        "adapter/adapter_config.json",
        "adapter/adapter_model.safetensors",
        "umap.png",
    } - {"2_Normalize"} <= set(main)
    np.testing.assert_array_equal(scores(BiEncoder, "alice/emb"), before)

    # the adapters alone, from the published subfolder, rebuild the merged model exactly
    base = AutoModel.from_pretrained(BASE_ID)  # from the fake Hub, as a user would
    merged = PeftModel.from_pretrained(base, "alice/emb", subfolder="adapter").merge_and_unload()
    merged_state, local_state = merged.state_dict(), AutoModel.from_pretrained(embedding_run).state_dict()
    assert merged_state.keys() == local_state.keys()
    for name, parameter in merged_state.items():
        assert np.array_equal(parameter.numpy(), local_state[name].numpy()), name


def test_lora_adapters_published_alone_load_their_base_from_the_hub(
    hub, embedding_run, tiny_encoder_dir, tokenizer, tmp_path
):
    from tests.hub.conftest import tiny_lora_encoder, write_json

    publish_base_encoder(tiny_encoder_dir)
    run = tmp_path / "adapter-run"
    encoder = tiny_lora_encoder(tiny_encoder_dir, tokenizer, BASE_ID)
    encoder.save_pretrained(run)  # a PeftModel saves its adapters only
    for name in ("metrics.json", "log_history.json"):
        (run / name).write_bytes((embedding_run / name).read_bytes())
    metrics = json.loads((run / "metrics.json").read_text())
    write_json(run / "metrics.json", metrics)
    assert (run / "adapter_config.json").is_file() and not (run / "model.safetensors").exists()
    before = encoder.score_pairs(QUERIES, PASSAGES, show_progress=False)
    publish(run, "alice/emb-adapter", retry=FAST)
    card = hf_hub_download("alice/emb-adapter", "README.md")
    assert f"LoRA adapters for `{BASE_ID}`" in open(card).read()
    np.testing.assert_allclose(scores(BiEncoder, "alice/emb-adapter"), before, rtol=0, atol=1e-6)


def test_an_existing_repository_is_not_replaced_without_allow_overwrite(hub, cross_encoder_run):
    publish(cross_encoder_run, "alice/ce", retry=FAST)
    head = hub.repos["alice/ce"].branches["main"]
    with pytest.raises(PublishError, match="already has 12 file\\(s\\) on branch 'main'; pass --allow-overwrite"):
        publish(cross_encoder_run, "alice/ce", retry=FAST)
    assert hub.repos["alice/ce"].branches["main"] == head

    # replacing: the stale base evaluation is deleted in the same, single commit
    for path in (cross_encoder_run / "eval_dl19_base").iterdir():
        path.unlink()
    (cross_encoder_run / "eval_dl19_base").rmdir()
    publish(cross_encoder_run, "alice/ce", allow_overwrite=True, retry=FAST)
    latest = hub.repos["alice/ce"].history("main")[0]
    assert latest.deleted == ["eval_dl19_base/metrics.json"]
    assert set(hub.repos["alice/ce"].files("main")) == CE_MAIN - {"eval_dl19_base/metrics.json"}


@pytest.mark.parametrize("damage", ["no trainer state", "unreadable trainer state", "other step", "no weights"])
def test_an_incomplete_checkpoint_is_never_pushed(hub, cross_encoder_run, damage):
    # a run killed while saving checkpoint-3: a truncated optimizer.pt and no trainer_state.json
    broken = cross_encoder_run / "checkpoint-3"
    broken.mkdir()
    (broken / "optimizer.pt").write_bytes(b"trunc")
    for name in ("config.json", "model.safetensors"):
        (broken / name).write_bytes((cross_encoder_run / "checkpoint-2" / name).read_bytes())
    if damage == "unreadable trainer state":
        (broken / "trainer_state.json").write_text('{"global_st')
    elif damage == "other step":
        (broken / "trainer_state.json").write_text('{"global_step": 2}')
    elif damage == "no weights":
        (broken / "trainer_state.json").write_text('{"global_step": 3}')
        (broken / "model.safetensors").unlink()
    message = {
        "other step": "global_step 2 does not match the directory's step 3",
        "no weights": "incomplete checkpoint \\(no weights",
    }.get(damage, "incomplete checkpoint \\(no readable trainer_state.json")
    with pytest.raises(PublishError, match=message):
        publish(cross_encoder_run, "alice/ce", checkpoints=True, retry=FAST)
    assert "alice/ce" not in hub.repos or not hub.repos["alice/ce"].branches.get("main")


def test_offline_mode_stops_at_once(hub, cross_encoder_run, monkeypatch):
    import time

    offline(monkeypatch)
    started = time.monotonic()
    with pytest.raises(PublishError, match="HF_HUB_OFFLINE is set, so nothing can be published"):
        publish(cross_encoder_run, "alice/ce", retry=Retry(attempts=5, base_delay=2.0))
    assert time.monotonic() - started < 2 and "alice/ce" not in hub.repos


def test_an_empty_existing_repository_is_written(hub, cross_encoder_run):
    HfApi().create_repo("alice/empty", private=False)
    publish(cross_encoder_run, "alice/empty", retry=FAST)
    assert not hub.repos["alice/empty"].private and "README.md" in hub.repos["alice/empty"].files("main")


def test_public_when_asked_and_namespace_from_the_token(hub, cross_encoder_run):
    result = publish(cross_encoder_run, "ce-public", private=False, retry=FAST)
    assert result.repo_id == "alice/ce-public" and not hub.repos["alice/ce-public"].private


def test_transient_errors_are_retried_with_backoff(hub, cross_encoder_run, caplog):
    hub.fail("POST", r"/api/models/alice/ce/commit/main$", 503, times=2)
    with caplog.at_level(logging.WARNING, logger="hf_rerank"):
        publish(cross_encoder_run, "alice/ce", retry=FAST)
    commits = [status for method, path, status in hub.requests if "/commit/" in path]
    assert commits == [503, 503, 200]
    assert "HTTP 503; retrying in 0.0 s (attempt 2 of 3)" in caplog.text
    assert len(hub.repos["alice/ce"].history("main")) == 2  # one commit, not three


def test_persistent_errors_stop_after_the_last_attempt(hub, cross_encoder_run):
    hub.fail("POST", r"/api/repos/create", 502, times=10)
    with pytest.raises(PublishError, match="creating alice/ce: still failing after 3 attempts \\(HTTP 502\\)"):
        publish(cross_encoder_run, "alice/ce", retry=FAST)
    assert "alice/ce" not in hub.repos


def test_a_refused_token_says_what_to_do_without_showing_it(hub, cross_encoder_run, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_wrongTOKEN123")
    with pytest.raises(HubAuthError) as error:
        publish(cross_encoder_run, "alice/ce", retry=FAST)
    assert (
        "401 Unauthorized" in str(error.value)
        and "HF_TOKEN" in str(error.value)
        and "hf auth login" in str(error.value)
    )
    assert "hf_wrongTOKEN123" not in str(error.value)


def test_no_token_and_no_write_access_are_auth_errors(hub, cross_encoder_run, monkeypatch):
    with pytest.raises(HubAuthError, match="403 Forbidden"):
        publish(cross_encoder_run, "bob/ce", retry=FAST)
    monkeypatch.delenv("HF_TOKEN")
    with pytest.raises(HubAuthError, match="no Hugging Face token found. Set HF_TOKEN .* or run `hf auth login`"):
        publish(cross_encoder_run, "alice/ce", retry=FAST)


def test_a_file_holding_the_token_is_never_uploaded(hub, cross_encoder_run):
    (cross_encoder_run / "notes.txt").write_text(f"export HF_TOKEN={TOKEN}\n")
    with pytest.raises(PublishError, match="notes.txt .* contains your Hugging Face token; refusing") as error:
        publish(cross_encoder_run, "alice/ce", retry=FAST)
    assert TOKEN not in str(error.value) and "alice/ce" not in hub.repos


def test_the_token_appears_nowhere_but_the_authorization_header(hub, cross_encoder_run, tmp_path, caplog, capsys):
    from hf_rerank.cli import main

    with caplog.at_level(logging.DEBUG):
        assert main(["-v", "publish", str(cross_encoder_run), "--repo-id", "alice/ce", "--checkpoints"]) == 0
        assert (
            main(["publish", str(cross_encoder_run), "--repo-id", "alice/ce", "--dry-run", str(tmp_path / "dry")]) == 0
        )
    out, err = capsys.readouterr()
    assert TOKEN not in caplog.text + out + err
    received = [
        stored.content
        for repo in hub.repos.values()
        for commit in repo.commits.values()
        for stored in commit.files.values()
    ]
    assert received and not any(TOKEN.encode() in content for content in received)
    assert not any(TOKEN.encode() in body for body in hub.bodies_seen)
    assert not any(TOKEN.encode() in content for content in tree(tmp_path / "dry").values())
    authorizations = {
        value for headers in hub.headers_seen for key, value in headers.items() if key.lower() == "authorization"
    }
    assert authorizations == {f"Bearer {TOKEN}"}


def test_dry_run_writes_exactly_what_is_then_pushed(hub, cross_encoder_run, tmp_path):
    dry = tmp_path / "dry"
    result = publish(cross_encoder_run, "alice/ce", checkpoints=True, dry_run=dry)
    assert hub.requests == [] and result.commits == {}
    commits = json.loads((dry / "commits.json").read_text())
    assert [c["revision"] for c in commits] == ["checkpoint-2", "main"]
    publish(cross_encoder_run, "alice/ce", checkpoints=True, retry=FAST)
    for revision in ("main", "checkpoint-2"):
        pushed = {
            name: stored.content
            for name, stored in hub.repos["alice/ce"].files(revision).items()
            if name != ".gitattributes"
        }
        assert tree(dry / revision) == pushed, revision
    assert not (cross_encoder_run / "README.md").exists()  # publishing does not modify the run directory
    with pytest.raises(PublishError, match="directory is not empty"):
        publish(cross_encoder_run, "alice/ce", dry_run=dry)
