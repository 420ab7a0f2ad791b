"""CrossEncoderTrainer end to end on tiny random models (CPU, a few steps each).

A hand-built IRCollection (string ids, graded qrels, one run) gives PairExample / GroupExample
lists; models are 2-layer 32-dim BERTs from ``tiny_config`` (and one tiny ModernBERT).
"""

from __future__ import annotations

import copy
import math
from pathlib import Path

import pytest
import torch
from transformers import (
    AutoModelForSequenceClassification,
    ModernBertConfig,
    TrainerCallback,
)

from hf_rerank.data.collators import CrossEncoderCollator
from hf_rerank.data.collection import IRCollection
from hf_rerank.data.examples import GroupExample, PairExample, make_groups, make_pairs, make_teacher_groups
from hf_rerank.optim import (
    OptimizerSpec,
    SchedulerBindingError,
    assert_scheduler_bound,
    build_optimizer,
    build_scheduler,
)
from hf_rerank.training.arguments import CrossEncoderTrainingArguments
from hf_rerank.training.cross_encoder import CrossEncoderTrainer
from tests.conftest import tiny_config

MAX_LENGTH = 64


pytestmark = pytest.mark.usefixtures("one_thread")


# ------------------------------------------------------------------------------------ data

_TOPICS = {
    "q1": ("what do bees make", ["bees make honey from the nectar of flowers", "honey bees store honey in wax combs"]),
    "q2": (
        "how tall is mount everest",
        ["mount everest is 8849 metres tall", "everest is the highest mountain on earth"],
    ),
    "q3": (
        "who wrote hamlet",
        ["hamlet was written by william shakespeare", "shakespeare wrote the tragedy hamlet around 1600"],
    ),
    "q4": (
        "boiling point of water",
        ["water boils at 100 degrees celsius at sea level", "at high altitude water boils at a lower temperature"],
    ),
    "q5": ("capital city of france", ["paris is the capital of france", "the french capital paris lies on the seine"]),
    "q6": (
        "speed of light in vacuum",
        ["light travels at about 300000 km per second", "the speed of light in vacuum is a constant c"],
    ),
}
_DISTRACTORS = [
    "the stock market fell sharply on monday",
    "a recipe for chocolate cake with cream",
    "football season starts in august",
    "the train to london was delayed again",
    "cats sleep for most of the day",
    "new smartphones were released this week",
    "the museum opens at nine in the morning",
    "rain is expected over the weekend",
]


def _collection() -> IRCollection:
    """6 queries, 12 relevant passages (grades 3 and 2) and 8 distractors; one run per query."""
    queries = {qid: text for qid, (text, _) in _TOPICS.items()}
    corpus: dict[str, str] = {}
    qrels: dict[str, dict[str, int]] = {}
    for qid, (_, passages) in _TOPICS.items():
        for i, passage in enumerate(passages):
            pid = f"{qid}-p{i}"
            corpus[pid] = passage
            qrels.setdefault(qid, {})[pid] = 3 - i  # grades 3, 2
    for i, passage in enumerate(_DISTRACTORS):
        corpus[f"d{i}"] = passage
    # the other topics' passages and the distractors are judged 0 or 1 for some queries
    for n, qid in enumerate(_TOPICS):
        qrels[qid][f"d{n}"] = 0
        qrels[qid][f"d{n + 1}"] = 1  # "related": a negative at positive_grade=2
    run: dict[str, dict[str, float]] = {}
    for qid in _TOPICS:
        ranked = [pid for pid in corpus if pid.startswith(qid)] + [f"d{i}" for i in range(len(_DISTRACTORS))]
        run[qid] = {pid: float(len(ranked) - rank) for rank, pid in enumerate(ranked)}
    return IRCollection("tiny", queries, corpus, qrels, {"bm25": run})


@pytest.fixture(scope="module")
def collection() -> IRCollection:
    return _collection()


@pytest.fixture(scope="module")
def pairs(collection) -> list[PairExample]:
    # 2 positives + 2 negatives per query: 24 pairs, labels 0/1
    examples = make_pairs(collection, runs=["bm25"], negatives="any", negatives_per_query=2, seed=3)
    assert len(examples) == 24 and {e.label for e in examples} == {0.0, 1.0}
    return examples


@pytest.fixture(scope="module")
def groups(collection) -> list[GroupExample]:
    examples = make_groups(collection, runs=["bm25"], negatives="any", group_size=4, graded=True, seed=3)
    assert len(examples) == 12 and all(len(g.pids) == 4 for g in examples)
    return examples


@pytest.fixture(scope="module")
def teacher_groups(collection) -> list[GroupExample]:
    """Lists of 2 to 4 candidates (queries' teachers score 2, 3 or 4+ passages), teacher = the run's scores / 10."""
    teacher = {
        qid: {pid: score / 10 for pid, score in list(ranked.items())[: 2 + n % 3 * 4]}
        for n, (qid, ranked) in enumerate(collection.runs["bm25"].items())
    }
    examples = make_teacher_groups(collection, teacher, group_size=4, seed=3)
    assert sorted({len(g.pids) for g in examples}) == [2, 4]
    return examples


# ------------------------------------------------------------------------------------ helpers


def tiny_model(num_labels: int = 1, seed: int = 0, dropout: float = 0.0):
    torch.manual_seed(seed)
    config = tiny_config(num_labels=num_labels, hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout)
    return AutoModelForSequenceClassification.from_config(config)


def make_args(tmp_path: Path, name: str = "run", **overrides) -> CrossEncoderTrainingArguments:
    kwargs = dict(
        output_dir=str(tmp_path / name),
        per_device_train_batch_size=8,
        max_steps=4,
        learning_rate=1e-3,
        weight_decay=0.01,
        report_to="none",
        use_cpu=True,
        save_strategy="no",
        logging_steps=1,
        disable_tqdm=True,
        dataloader_num_workers=0,
        max_length=MAX_LENGTH,
        seed=7,
    )
    kwargs.update(overrides)
    return CrossEncoderTrainingArguments(**kwargs)


def make_trainer(model, args, examples, collection, tokenizer, collator=None, **kwargs) -> CrossEncoderTrainer:
    collator = collator or CrossEncoderCollator(tokenizer, collection.queries, collection.corpus, args.max_length)
    return CrossEncoderTrainer(
        model=model, args=args, train_dataset=examples, data_collator=collator, processing_class=tokenizer, **kwargs
    )


def train_losses(trainer) -> list[float]:
    return [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]


def lion_classes() -> tuple[type, ...]:
    from lion_pytorch import Lion

    classes = [Lion]
    try:
        from lion_pytorch.foreach import Lion as ForeachLionBase

        classes.append(ForeachLionBase)
    except ImportError:  # pragma: no cover
        pass
    return tuple(classes)


# ------------------------------------------------------------------- 1. training reduces the loss

LEARNING_RATES = {"adamw": 3e-3, "lion": 1e-3}


@pytest.mark.parametrize("optimizer", ["adamw", "lion"])
@pytest.mark.parametrize(
    "loss", ["bce", "listwise", "ranknet", "margin", "listnet", "lambdaloss", "kl", "margin_mse", "mse"]
)
def test_training_reduces_the_loss(tmp_path, tokenizer, collection, pairs, groups, teacher_groups, loss, optimizer):
    # One fixed batch (the whole small dataset) every step: the loss must go down. Distillation losses
    # learn from teacher lists of different lengths (padded and masked).
    examples = pairs[:8] if loss == "bce" else teacher_groups[:6] if loss in ("kl", "margin_mse", "mse") else groups[:4]
    args = make_args(
        tmp_path,
        loss=loss,
        group_size=4,
        optimizer=optimizer,
        learning_rate=LEARNING_RATES[optimizer],
        max_steps=30,
        per_device_train_batch_size=len(examples),
        lr_scheduler_type="constant",
    )
    trainer = make_trainer(tiny_model(), args, examples, collection, tokenizer)
    trainer.train()
    losses = train_losses(trainer)
    assert len(losses) == 30
    assert all(math.isfinite(x) for x in losses)
    assert losses[-1] < losses[0], losses
    assert sum(losses[-3:]) / 3 < 0.7 * sum(losses[:3]) / 3, losses


# ------------------------------------------------------------------- 2. the optimizer is hf-rerank's


def _is_no_decay_name(name: str) -> bool:
    return name.endswith(".bias") or "LayerNorm" in name


@pytest.mark.parametrize("optimizer", ["adamw", "lion"])
def test_optimizer_is_hf_rerank_factory(tmp_path, tokenizer, collection, pairs, optimizer):
    model = tiny_model()
    args = make_args(tmp_path, optimizer=optimizer, learning_rate=6e-4, weight_decay=0.05)
    trainer = make_trainer(model, args, pairs, collection, tokenizer)
    opt = trainer.create_optimizer()
    assert opt is trainer.optimizer
    if optimizer == "lion":
        assert isinstance(opt, lion_classes()), type(opt).__mro__
        assert type(opt).__module__.startswith(("lion_pytorch", "hf_rerank.optim"))
    else:
        assert type(opt) is torch.optim.AdamW

    decay, no_decay = opt.param_groups
    assert decay["weight_decay"] == pytest.approx(0.05) and no_decay["weight_decay"] == 0.0
    assert decay["lr"] == no_decay["lr"] == pytest.approx(6e-4)
    in_decay = {id(p) for p in decay["params"]}
    in_no_decay = {id(p) for p in no_decay["params"]}
    names = dict(model.named_parameters())
    assert in_decay.isdisjoint(in_no_decay)
    assert in_decay | in_no_decay == {id(p) for p in names.values()}
    for name, param in names.items():
        if _is_no_decay_name(name):
            assert id(param) in in_no_decay, name
        else:
            assert id(param) in in_decay, name
    # sanity: both groups are populated, e.g. the attention weights decay, LayerNorm does not
    assert id(names["bert.encoder.layer.0.attention.self.query.weight"]) in in_decay
    assert id(names["bert.embeddings.LayerNorm.weight"]) in in_no_decay

    hp = trainer.optimizer_hyperparameters
    assert hp["name"] == optimizer
    assert hp["lr"] == pytest.approx(6e-4) and hp["weight_decay"] == pytest.approx(0.05)
    assert hp["n_params_decay"] == len(decay["params"]) and hp["n_params_no_decay"] == len(no_decay["params"])
    assert trainer.create_optimizer() is opt  # built once


def test_lion_scaling_divides_lr_and_multiplies_weight_decay(tmp_path, tokenizer, collection, pairs):
    args = make_args(
        tmp_path,
        optimizer="lion",
        lion_scaling=3,
        learning_rate=3e-4,
        weight_decay=0.02,
        lion_beta1=0.95,
        lion_beta2=0.98,
    )
    trainer = make_trainer(tiny_model(), args, pairs, collection, tokenizer)
    opt = trainer.create_optimizer()
    assert isinstance(opt, lion_classes())
    decay, no_decay = opt.param_groups
    for group in (decay, no_decay):
        assert group["lr"] == pytest.approx(1e-4)
        assert tuple(group["betas"]) == pytest.approx((0.95, 0.98))
    assert decay["weight_decay"] == pytest.approx(0.06)
    assert no_decay["weight_decay"] == 0.0

    hp = trainer.optimizer_hyperparameters
    assert hp["lr"] == pytest.approx(1e-4) and hp["weight_decay"] == pytest.approx(0.06)
    assert hp["adamw_lr"] == pytest.approx(3e-4) and hp["adamw_weight_decay"] == pytest.approx(0.02)
    assert hp["lion_scaling"] == 3.0
    assert tuple(hp["betas"]) == pytest.approx((0.95, 0.98))


def test_lion_scaling_without_lion_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"lion_scaling=3(\.0)? is only valid with the Lion optimizer, not 'adamw'"):
        make_args(tmp_path, optimizer="adamw", lion_scaling=3, learning_rate=3e-4, weight_decay=0.02)


# ------------------------------------------------------------------- 3. scheduler binding


class _RecordLR(TrainerCallback):
    """Per optimizer step: the lr the inner optimizer stepped with (pre-hook) and the scheduler's lr after it."""

    def __init__(self):
        self.used: list[list[float]] = []
        self.scheduled: list[list[float]] = []
        self.in_groups: list[list[float]] = []
        self._hooked = None

    def on_train_begin(self, args, state, control, optimizer=None, **kwargs):
        inner = getattr(optimizer, "optimizer", optimizer)
        self._hooked = inner
        inner.register_step_pre_hook(lambda opt, a, k: self.used.append([g["lr"] for g in opt.param_groups]))

    def on_step_end(self, args, state, control, optimizer=None, lr_scheduler=None, **kwargs):
        self.scheduled.append(list(lr_scheduler.get_last_lr()))
        self.in_groups.append([g["lr"] for g in self._hooked.param_groups])


@pytest.mark.parametrize("optimizer", ["adamw", "lion"])
def test_scheduler_drives_the_training_optimizer(tmp_path, tokenizer, collection, pairs, optimizer):
    total, warmup, base = 8, 4, 1e-3
    args = make_args(
        tmp_path,
        optimizer=optimizer,
        learning_rate=base,
        max_steps=total,
        warmup_steps=warmup,
        lr_scheduler_type="linear",
        per_device_train_batch_size=4,
    )
    recorder = _RecordLR()
    trainer = make_trainer(tiny_model(), args, pairs, collection, tokenizer, callbacks=[recorder])
    trainer.train()

    inner = getattr(trainer.optimizer, "optimizer", trainer.optimizer)
    assert recorder._hooked is inner
    assert_scheduler_bound(trainer.lr_scheduler, trainer.optimizer)  # also through accelerate's wrappers

    def schedule(step: int) -> float:  # linear warmup then linear decay, as transformers defines it
        if step < warmup:
            return base * step / warmup
        return base * max(0.0, (total - step) / (total - warmup))

    assert len(recorder.used) == len(recorder.scheduled) == total
    for k in range(total):
        # step k+1 updates the weights with the lr of schedule(k), both groups alike
        assert recorder.used[k] == pytest.approx([schedule(k)] * 2, abs=1e-12), (k, recorder.used)
        assert recorder.scheduled[k] == pytest.approx([schedule(k + 1)] * 2, abs=1e-12)
        assert recorder.in_groups[k] == pytest.approx(recorder.scheduled[k], abs=1e-12)
    used = [lrs[0] for lrs in recorder.used]
    assert all(a != b for a, b in zip(used, used[1:])), used  # changes at every step
    assert trainer.lr_scheduler.get_last_lr() == pytest.approx([g["lr"] for g in inner.param_groups])
    logged = [entry["learning_rate"] for entry in trainer.state.log_history if "learning_rate" in entry]
    assert len(logged) == total and logged[1] != logged[0]


def test_scheduler_for_another_optimizer_is_refused(tmp_path, tokenizer, collection, pairs, monkeypatch):
    args = make_args(tmp_path, optimizer="lion", max_steps=4)
    trainer = make_trainer(tiny_model(), args, pairs, collection, tokenizer)
    trainer.create_optimizer()
    other = build_optimizer(tiny_model(seed=1), OptimizerSpec(name="lion", lr=1e-3))

    # the public check
    wrong = build_scheduler(other, "linear", num_warmup_steps=1, num_training_steps=4)
    with pytest.raises(SchedulerBindingError, match="drives"):
        assert_scheduler_bound(wrong, trainer.optimizer)
    assert_scheduler_bound(build_scheduler(trainer.optimizer, "linear", 1, 4), trainer.optimizer)

    # the trainer refuses to build its schedule for an optimizer other than the one that trains
    with pytest.raises(SchedulerBindingError):
        trainer.create_scheduler(num_training_steps=4, optimizer=other)
    trainer.lr_scheduler = None

    # ... and if the scheduler factory ever returned a schedule for another optimizer
    import hf_rerank.training.trainer as trainer_module

    monkeypatch.setattr(trainer_module, "build_scheduler", lambda optimizer, *a, **k: build_scheduler(other, *a, **k))
    with pytest.raises(SchedulerBindingError):
        trainer.create_scheduler(num_training_steps=4)
    trainer.lr_scheduler = None
    monkeypatch.undo()
    scheduler = trainer.create_scheduler(num_training_steps=4)
    assert scheduler.optimizer is trainer.optimizer


# ------------------------------------------------------------------- 4. resume exactness


class RecordingCollator(CrossEncoderCollator):
    """The collator, also recording which examples each batch held."""

    def __post_init__(self):
        super().__post_init__()
        self.batches: list[list] = []
        self.shapes: list[tuple[int, ...]] = []

    def __call__(self, examples):
        batch = super().__call__(examples)
        self.batches.append([(e.qid, getattr(e, "pid", None) or e.pids) for e in examples])
        self.shapes.append(tuple(batch["input_ids"].shape))
        return batch


def _resume_run(tmp_path, tokenizer, collection, examples, initial_state, name, dropout, **overrides):
    model = tiny_model(dropout=dropout)
    model.load_state_dict(initial_state)
    args = make_args(
        tmp_path,
        name,
        optimizer="lion",
        learning_rate=3e-4,
        weight_decay=0.01,
        max_steps=8,
        per_device_train_batch_size=4,
        warmup_steps=2,
        lr_scheduler_type="linear",
        length_bucketing=True,
        **overrides,
    )
    collator = RecordingCollator(tokenizer, collection.queries, collection.corpus, MAX_LENGTH)
    return make_trainer(model, args, examples, collection, tokenizer, collator=collator), collator


@pytest.mark.parametrize("dropout", [0.0, 0.1])
def test_resume_from_checkpoint_is_exact(tmp_path, tokenizer, collection, pairs, dropout):
    # 12 pairs, batch 4: 3 steps per epoch, so step 4 is one batch into the second epoch.
    examples = pairs[:12]
    torch.manual_seed(0)
    initial = copy.deepcopy(tiny_model(dropout=dropout).state_dict())

    straight, straight_batches = _resume_run(tmp_path, tokenizer, collection, examples, initial, "straight", dropout)
    straight.train()

    saving, saving_batches = _resume_run(
        tmp_path, tokenizer, collection, examples, initial, "saving", dropout, save_strategy="steps", save_steps=4
    )
    saving.train()
    checkpoint = Path(saving.args.output_dir) / "checkpoint-4"
    assert checkpoint.is_dir()
    state = torch.load(checkpoint / "optimizer.pt", map_location="cpu", weights_only=True)
    assert state["state"] and all("exp_avg" in s for s in state["state"].values())  # Lion's momentum
    assert len(state["param_groups"]) == 2

    resumed, resumed_batches = _resume_run(tmp_path, tokenizer, collection, examples, initial, "resumed", dropout)
    resumed.train(resume_from_checkpoint=str(checkpoint))
    assert resumed.state.global_step == 8

    # the same data in the same order
    assert saving_batches.batches == straight_batches.batches
    assert resumed_batches.batches == straight_batches.batches[4:]
    # the same lr at the end
    assert resumed.lr_scheduler.get_last_lr() == straight.lr_scheduler.get_last_lr()
    # identical weights
    reference = dict(straight.model.named_parameters())
    for trainer in (saving, resumed):
        differing = [name for name, p in trainer.model.named_parameters() if not torch.equal(p, reference[name])]
        assert not differing, f"{trainer.args.output_dir}: {len(differing)} tensors differ, e.g. {differing[:3]}"
    # and the Lion momentum too
    straight_state = straight.optimizer.state_dict()["state"]
    resumed_state = resumed.optimizer.state_dict()["state"]
    assert straight_state.keys() == resumed_state.keys()
    for key in straight_state:
        assert torch.equal(straight_state[key]["exp_avg"], resumed_state[key]["exp_avg"]), key


# ------------------------------------------------------------------- 5. ModernBERT at 8192 tokens


def test_modernbert_long_context_trains(tmp_path, tokenizer):
    config = ModernBertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        max_position_embeddings=8192,
        layer_types=["full_attention", "sliding_attention"],
        local_attention=128,
        pad_token_id=tokenizer.pad_token_id,
        cls_token_id=tokenizer.cls_token_id,
        sep_token_id=tokenizer.sep_token_id,
        bos_token_id=tokenizer.cls_token_id,
        eos_token_id=tokenizer.sep_token_id,
        num_labels=1,
    )
    config._attn_implementation = "sdpa"
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_config(config)
    assert type(model).__name__ == "ModernBertForSequenceClassification"

    words = "the river flows past old stone bridges and quiet green fields".split()
    corpus = {f"long{i}": " ".join(words[(i + j) % len(words)] for j in range(8300)) for i in range(2)}
    queries = {"lq": "where does the river flow"}
    examples = [PairExample("lq", "long0", 1.0), PairExample("lq", "long1", 0.0)]
    args = make_args(tmp_path, max_length=8192, max_steps=2, per_device_train_batch_size=1, learning_rate=1e-3)
    collator = RecordingCollator(tokenizer, queries, corpus, 8192)
    trainer = CrossEncoderTrainer(
        model=model, args=args, train_dataset=examples, data_collator=collator, processing_class=tokenizer
    )
    trainer.train()
    assert collator.shapes == [(1, 8192), (1, 8192)]
    losses = train_losses(trainer)
    assert len(losses) == 2 and all(math.isfinite(x) for x in losses)


# ------------------------------------------------------------------- 6. two-logit heads


def test_two_logit_head_trains_with_bce(tmp_path, tokenizer, collection, pairs):
    examples = pairs[:8]
    args = make_args(tmp_path, loss="bce", max_steps=25, per_device_train_batch_size=8, lr_scheduler_type="constant")
    model = tiny_model(num_labels=2)
    trainer = make_trainer(model, args, examples, collection, tokenizer)
    collator = trainer.data_collator
    batch = collator(examples)
    labels = batch.pop("labels")
    with torch.no_grad():
        logits = model(**batch).logits
        loss, outputs = trainer.compute_loss(model, {**batch, "labels": labels}, return_outputs=True)
    assert logits.shape == (8, 2)
    assert torch.allclose(outputs["scores"], logits[:, 1] - logits[:, 0])
    expected = torch.nn.functional.binary_cross_entropy_with_logits(logits[:, 1] - logits[:, 0], labels)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)

    trainer.train()
    losses = train_losses(trainer)
    assert all(math.isfinite(x) for x in losses)
    assert losses[-1] < losses[0]
    assert sum(losses[-3:]) / 3 < 0.7 * sum(losses[:3]) / 3, losses


# ------------------------------------------------------------------- 7. grouped loss needs groups


@pytest.mark.parametrize("loss", ["listwise", "ranknet", "margin"])
def test_grouped_loss_with_pairs_raises(tmp_path, tokenizer, collection, pairs, loss):
    args = make_args(tmp_path, loss=loss, max_steps=1, per_device_train_batch_size=4)
    trainer = make_trainer(tiny_model(), args, pairs, collection, tokenizer)
    batch = trainer.data_collator(pairs[:4])
    with pytest.raises(ValueError, match="needs groups"):
        trainer.compute_loss(trainer.model, batch)
    with pytest.raises(ValueError, match="needs groups"):
        trainer.train()
