"""Publishing during training: HubSettings from the Trainer's hub arguments, HubPushCallback pushing
each saved checkpoint to its branch, and training resumed exactly from a downloaded branch."""

from types import SimpleNamespace

import pytest
import torch
from huggingface_hub import HfApi, snapshot_download
from transformers import AutoModelForSequenceClassification
from transformers.trainer_utils import HubStrategy, SaveStrategy

from hf_rerank.data.collators import CrossEncoderCollator
from hf_rerank.data.collection import IRCollection
from hf_rerank.data.examples import make_pairs
from hf_rerank.hub.errors import PublishError
from hf_rerank.hub.push_callback import HubPushCallback, HubSettings
from hf_rerank.hub.retry import Retry
from hf_rerank.training.arguments import CrossEncoderTrainingArguments
from hf_rerank.training.cross_encoder import CrossEncoderTrainer
from tests.conftest import tiny_config

FAST = Retry(attempts=2, base_delay=0.01)
TOPICS = {
    "q1": ("what do bees make", ["bees make honey from nectar", "honey bees store honey in combs"]),
    "q2": ("who wrote hamlet", ["hamlet was written by shakespeare", "shakespeare wrote hamlet around 1600"]),
    "q3": ("boiling point of water", ["water boils at 100 degrees", "water boils lower at altitude"]),
}
DISTRACTORS = ["the stock market fell on monday", "a recipe for chocolate cake", "rain is expected this weekend"]


def tiny_collection() -> IRCollection:
    queries = {qid: text for qid, (text, _) in TOPICS.items()}
    corpus = {f"{qid}-p{i}": passage for qid, (_, passages) in TOPICS.items() for i, passage in enumerate(passages)}
    corpus.update({f"d{i}": text for i, text in enumerate(DISTRACTORS)})
    qrels = {qid: {f"{qid}-p0": 3, f"{qid}-p1": 2, "d0": 0} for qid in TOPICS}
    run = {
        qid: {pid: float(-rank) for rank, pid in enumerate([f"{qid}-p0", f"{qid}-p1", "d0", "d1", "d2"])}
        for qid in TOPICS
    }
    return IRCollection("tiny", queries, corpus, qrels, {"bm25": run})


def trainer(tmp_path, name, tokenizer, initial_state, callbacks=(), **overrides) -> CrossEncoderTrainer:
    collection = tiny_collection()
    model = AutoModelForSequenceClassification.from_config(tiny_config(num_labels=1))
    model.load_state_dict(initial_state)
    args = CrossEncoderTrainingArguments(
        output_dir=str(tmp_path / name),
        per_device_train_batch_size=4,
        max_steps=4,
        learning_rate=1e-3,
        optimizer="lion",
        report_to="none",
        use_cpu=True,
        logging_steps=1,
        disable_tqdm=True,
        max_length=64,
        seed=7,
        **overrides,
    )
    examples = make_pairs(collection, runs=["bm25"], negatives="any", negatives_per_query=2, seed=3)
    return CrossEncoderTrainer(
        model=model,
        args=args,
        train_dataset=examples,
        processing_class=tokenizer,
        data_collator=CrossEncoderCollator(tokenizer, collection.queries, collection.corpus, 64),
        callbacks=list(callbacks),
    )


@pytest.fixture
def initial_state():
    torch.manual_seed(0)
    return AutoModelForSequenceClassification.from_config(tiny_config(num_labels=1)).state_dict()


def test_checkpoints_go_to_their_branches_and_training_resumes_exactly_from_one(
    hub, tmp_path, tokenizer, initial_state
):
    straight = trainer(tmp_path, "straight", tokenizer, initial_state, save_strategy="no")
    straight.train()

    callback = HubPushCallback(HubSettings("alice/cb", strategy="checkpoint"), retry=FAST)
    pushing = trainer(tmp_path, "pushing", tokenizer, initial_state, [callback], save_strategy="steps", save_steps=2)
    pushing.train()
    assert callback.errors == []
    repo = hub.repos["alice/cb"]
    assert repo.private and set(repo.files("main")) == {".gitattributes"}  # main waits for the final model
    for step in (2, 4):
        files = repo.files(f"checkpoint-{step}")
        assert {
            "model.safetensors",
            "optimizer.pt",
            "scheduler.pt",
            "rng_state.pth",
            "trainer_state.json",
            "README.md",
        } <= set(files)
        assert "training_args.bin" not in files
        local = tmp_path / "pushing" / f"checkpoint-{step}"
        assert all(files[name].content == (local / name).read_bytes() for name in files if (local / name).is_file())
    assert not list((tmp_path / "pushing").glob(".hub-staging-*"))  # staging cleaned up

    resumed = trainer(tmp_path, "resumed", tokenizer, initial_state, save_strategy="no")
    resumed.train(resume_from_checkpoint=snapshot_download("alice/cb", revision="checkpoint-2"))
    assert resumed.state.global_step == 4
    reference = dict(straight.model.named_parameters())
    assert all(torch.equal(parameter, reference[name]) for name, parameter in resumed.model.named_parameters())


def test_a_refused_overwrite_stops_training_before_the_first_step(hub, tmp_path, tokenizer, initial_state):
    api = HfApi()
    api.create_repo("alice/taken")
    api.upload_file(path_or_fileobj=b"{}", path_in_repo="config.json", repo_id="alice/taken")
    callback = HubPushCallback(HubSettings("alice/taken", strategy="checkpoint"), retry=FAST)
    doomed = trainer(tmp_path, "doomed", tokenizer, initial_state, [callback], save_strategy="steps", save_steps=2)
    with pytest.raises(PublishError, match="pass --allow-overwrite"):
        doomed.train()
    assert doomed.state.global_step == 0


def hub_args(**fields):
    defaults = dict(
        push_to_hub=True,
        hub_model_id="alice/run",
        hub_strategy=HubStrategy("every_save"),
        hub_private_repo=None,
        hub_token=None,
        save_strategy=SaveStrategy("steps"),
    )
    return SimpleNamespace(**{**defaults, **fields})


def test_hub_settings_from_the_trainer_arguments(caplog):
    assert HubSettings.from_training_args(hub_args(push_to_hub=False)) is None
    assert HubSettings.from_training_args(hub_args()) == HubSettings("alice/run", private=True, strategy="end")
    settings = HubSettings.from_training_args(
        hub_args(hub_strategy=HubStrategy("checkpoint"), hub_private_repo=False, hub_allow_overwrite=True)
    )
    assert settings == HubSettings("alice/run", private=False, strategy="checkpoint", allow_overwrite=True)
    for push in (True, False):  # never saved, whether or not the run publishes
        with pytest.raises(ValueError, match="--hub_token is not accepted, with or without --push_to_hub"):
            HubSettings.from_training_args(hub_args(hub_token="hf_x", push_to_hub=push))
    with pytest.raises(ValueError, match="--push_to_hub needs --hub_model_id"):
        HubSettings.from_training_args(hub_args(hub_model_id=None))
    with caplog.at_level("WARNING", logger="hf_rerank"):
        HubSettings.from_training_args(
            hub_args(hub_strategy=HubStrategy("checkpoint"), save_strategy=SaveStrategy("no"))
        )
    assert "save_strategy is 'no': only the final model will be published" in caplog.text


def test_a_token_on_the_command_line_stops_the_run_before_anything_is_saved(tmp_path):
    from transformers import HfArgumentParser

    from hf_rerank.training.arguments import CrossEncoderTrainingArguments
    from hf_rerank.training.config import parse_args

    parser = HfArgumentParser(CrossEncoderTrainingArguments)
    with pytest.raises(SystemExit, match="error: --hub_token is not accepted") as stopped:
        parse_args(parser, ["--output_dir", str(tmp_path / "run"), "--hub_token", "hf_SecretTokenValue"])
    assert "hf_SecretTokenValue" not in str(stopped.value)
    assert not (tmp_path / "run").exists()
