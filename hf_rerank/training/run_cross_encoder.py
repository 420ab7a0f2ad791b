"""Fine-tune a cross-encoder end to end: data -> examples -> collator -> trainer -> artifacts.

``train_cross_encoder(model_args, data_args, training_args)`` is what ``recipes/ce_lion.py`` and
``hf-rerank train`` run. It writes to ``training_args.output_dir``:

- the final checkpoint (model + tokenizer; loads with ``AutoModelForSequenceClassification``,
  ``sentence_transformers.CrossEncoder`` and ``hf_rerank.CrossEncoder``), and ``checkpoint-N/``
  directories as ``save_strategy`` asks; with ``--lora_r`` the final checkpoint is the merged model
  and ``adapter/`` holds the adapters with the fully trained head (:func:`~hf_rerank.models.lora.save_lora`);
- ``log_history.json``: the Trainer's log history (loss, lr, eval metrics by step);
- ``eval_<name>/metrics.json`` and ``eval_<name>/run.trec``: the final model reranking the
  evaluation run, exactly as ``hf-rerank evaluate`` writes them;
- ``metrics.json``, a :class:`~hf_rerank.training.record.RunRecord` of kind ``cross-encoder``:
  ``{"eval": {name: {metric: value}}, "first_stage": {name: {...}}, "eval_protocol": {name: {...}},
  "significance": {name: {...}}, "train_seconds", "train_samples_per_second", "train_loss",
  "optimizer": {effective hyperparameters}, "model", "loss", "lora" (None without LoRA), "train_examples",
  "world_size", ...}``.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from pathlib import Path

from transformers import AutoModelForSequenceClassification, AutoTokenizer, set_seed

from hf_rerank.data.collators import CrossEncoderCollator
from hf_rerank.data.examples import make_groups, make_judged_pairs, make_pairs
from hf_rerank.data.teacher import Teacher
from hf_rerank.errors import UsageError
from hf_rerank.evaluation.report import evaluate_reranking, write_report
from hf_rerank.losses import LOSSES
from hf_rerank.models.auto import detect_model_type
from hf_rerank.models.cross_encoder import CrossEncoder
from hf_rerank.models.lora import lora_from_args
from hf_rerank.models.resolve import resolve_model
from hf_rerank.training.arguments import CrossEncoderTrainingArguments, TeacherArguments
from hf_rerank.training.cross_encoder import CrossEncoderTrainer
from hf_rerank.training.eval_arguments import EvaluationArguments
from hf_rerank.training.record import EvalProtocol, RunRecord
from hf_rerank.training.run_common import (
    check_disk_space,
    ir_evaluation_callback,
    load_run_data,
    run_callbacks,
    save_trained_model,
    scores_before_training,
    start_run,
    teacher_examples,
    training_summary,
    write_run_outputs,
)
from hf_rerank.training.train_data_arguments import TrainDataArguments

logger = logging.getLogger("hf_rerank")


@dataclass
class ModelArguments:
    """Which checkpoint to start from."""

    model_name_or_path: str = field(
        default="microsoft/MiniLM-L12-H384-uncased",
        metadata={"help": "checkpoint directory, Hub id or id@revision; a fresh 1-logit head is added to encoders"},
    )
    trust_remote_code: bool = field(default=False, metadata={"help": "allow custom model code (needed for GTE)"})


@dataclass
class DataArguments(EvaluationArguments, TrainDataArguments, TeacherArguments):
    """Training data and evaluation data (the fields shared with the embedding run:
    :class:`~hf_rerank.training.eval_arguments.EvaluationArguments`,
    :class:`~hf_rerank.training.train_data_arguments.TrainDataArguments`)."""

    train_data: list[str] = field(
        default_factory=lambda: ["sentence-transformers/msmarco"],
        metadata={
            "help": "collection directories or registered sources; several are trained on as one (distinct query ids)"
        },
    )
    train_runs: list[str] | None = field(
        default=None, metadata={"help": "runs whose candidates give negatives (default: all)"}
    )
    judged_pairs: bool = field(
        default=False, metadata={"help": "train on every judged pair instead of positives + sampled negatives"}
    )
    negatives: str = field(default="any", metadata={"help": "judged (judged non-relevant), unjudged, or any"})
    negatives_per_query: int | None = field(
        default=None, metadata={"help": "negatives sampled per query for pairs (default: all)"}
    )
    negative_depth: int = field(
        default=100, metadata={"help": "candidates per query taken from each run for negatives"}
    )
    eval_holdout: int = field(
        default=10_000, metadata={"help": "training examples held out for the eval loss (paper: 10k pairs)"}
    )
    eval_depth: int = field(default=1000, metadata={"help": "candidates reranked per query (paper: BM25 top-1000)"})

    def __post_init__(self):
        super().__post_init__()
        # one dataset may be given as a plain string (Python callers, YAML scalars)
        self.train_data = [self.train_data] if isinstance(self.train_data, str) else list(self.train_data)


def build_examples(
    data_args: DataArguments, args: CrossEncoderTrainingArguments, collection, teacher: Teacher | None = None
) -> list:
    """Training examples from the train collection, as the loss needs them: with a teacher, lists of its
    candidates carrying its scores (:func:`make_teacher_groups`); else pairs or groups from qrels and runs."""
    loss = LOSSES[args.loss]
    if teacher is not None:
        if data_args.judged_pairs:
            raise UsageError(
                "judged_pairs and teacher exclude each other: a teacher's examples are lists of its candidates"
            )
        return teacher_examples(collection, teacher, data_args, args)
    if loss.target == "teacher":
        raise UsageError(
            f"loss {args.loss!r} learns from a teacher's scores: "
            "give --teacher (a run of the training data or a run file)"
        )
    common = dict(
        runs=data_args.train_runs,
        depth=data_args.negative_depth,
        positive_grade=data_args.positive_grade,
        negatives=data_args.negatives,
        graded=data_args.graded_labels,
        seed=args.seed,
    )
    if loss.grouped:
        if data_args.judged_pairs:
            raise UsageError(f"judged_pairs gives pairs; loss {args.loss!r} needs groups")
        return make_groups(collection, group_size=args.group_size, **common)
    if data_args.judged_pairs:
        return make_judged_pairs(collection, positive_grade=data_args.positive_grade, graded=data_args.graded_labels)
    return make_pairs(collection, negatives_per_query=data_args.negatives_per_query, **common)


def set_bce_max_grade(args: CrossEncoderTrainingArguments, data_args: DataArguments, examples: list) -> None:
    """With ``graded_labels`` and ``bce``, ``--loss_max_grade`` defaults to the highest grade of the
    training labels, so grades 1..3 stay distinct targets (1/3, 2/3, 1) instead of all becoming 1."""
    if args.loss != "bce" or not data_args.graded_labels or args.loss_max_grade is not None:
        return
    labels = [label for example in examples for label in getattr(example, "labels", (getattr(example, "label", 0.0),))]
    args.loss_max_grade = max(max(labels), 1.0)
    logger.info(
        "bce with graded labels: loss_max_grade = %s (the highest grade of the training labels)", args.loss_max_grade
    )


def split_holdout(examples: list, holdout: int, seed: int) -> tuple[list, list]:
    """Shuffle (seeded) and hold out ``holdout`` examples: ``(train, held_out)``."""
    if holdout >= len(examples):
        raise UsageError(f"eval_holdout={holdout} leaves nothing to train on ({len(examples)} examples)")
    shuffled = list(examples)
    random.Random(seed).shuffle(shuffled)
    return shuffled[holdout:], shuffled[:holdout]


def load_cross_encoder(model_args: ModelArguments):
    """``(model, tokenizer)``: a sequence-classification model with 1 logit (kept if it has 2)."""
    path = resolve_model(model_args.model_name_or_path)
    tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=model_args.trust_remote_code)
    keep_head = detect_model_type(path) == "cross-encoder"
    model = AutoModelForSequenceClassification.from_pretrained(
        path, trust_remote_code=model_args.trust_remote_code, **({} if keep_head else {"num_labels": 1})
    )
    return model, tokenizer


def train_cross_encoder(
    model_args: ModelArguments, data_args: DataArguments, args: CrossEncoderTrainingArguments
) -> dict:
    """Train, evaluate and save (see the module docstring); returns the ``metrics.json`` object."""
    start_run(args)
    set_seed(args.seed)
    train_collection, eval_collection, teacher = load_run_data(data_args)
    examples = build_examples(data_args, args, train_collection, teacher)
    set_bce_max_grade(args, data_args, examples)
    train_examples, held_out = split_holdout(examples, data_args.eval_holdout, args.seed)
    logger.info(
        "%d training examples (%s), %d held out for the eval loss",
        len(train_examples),
        type(examples[0]).__name__,
        len(held_out),
    )

    model, tokenizer = load_cross_encoder(model_args)
    model, lora = lora_from_args(model, args, task_type="SEQ_CLS", base_reference=model_args.model_name_or_path)
    check_disk_space(args, model)
    collator = CrossEncoderCollator(tokenizer, train_collection.queries, train_collection.corpus, args.max_length)
    trainer = CrossEncoderTrainer(
        model=model,
        args=args,
        train_dataset=train_examples,
        eval_dataset=held_out or None,
        data_collator=collator,
        processing_class=tokenizer,
        callbacks=[ir_evaluation_callback(eval_collection, data_args, args), *run_callbacks(args, "cross-encoder")],
    )
    train_output = trainer.train(resume_from_checkpoint=args.resume_from_checkpoint)
    final_model = save_trained_model(trainer, lora, tokenizer)

    summary: dict = {}
    if trainer.is_world_process_zero():
        output_dir = Path(args.output_dir)
        scorer = CrossEncoder(
            final_model,
            tokenizer,
            max_length=args.max_length,
            device=str(args.device),
            precision=args.compute_precision,
        )
        report, run = evaluate_reranking(
            eval_collection,
            data_args.eval_run,
            scorer,
            model_name=str(output_dir),
            depth=data_args.eval_depth,
            metric_set=data_args.eval_metrics,
            batch_size=args.per_device_eval_batch_size,
        )
        before = scores_before_training(trainer.state.log_history, data_args.eval_name)
        print(report.table())
        if before:
            print("  before fine-tuning (step 0): " + ", ".join(f"{k} {v:.4f}" for k, v in before.items()))
        write_report(report, run, output_dir / f"eval_{data_args.eval_name}")
        summary = {
            "eval": {data_args.eval_name: report.metrics},
            "first_stage": {data_args.eval_name: report.first_stage},
            "before_training": {data_args.eval_name: before} if before else {},
            "significance": {data_args.eval_name: report.significance},
            "eval_protocol": {
                data_args.eval_name: EvalProtocol.reranking(
                    report, data=data_args.eval_data, run=data_args.eval_run, depth=data_args.eval_depth
                )
            },
            **training_summary(trainer, train_output, args),
            "model": model_args.model_name_or_path,
            "loss": args.loss,
            "loss_options": trainer.loss_fn.options(),
            "teacher": None
            if teacher is None
            else teacher.record(
                depth=data_args.teacher_depth, group_size=args.group_size, groups_per_query=data_args.groups_per_query
            ),
            "lora": lora,
            "train_data": " + ".join(data_args.train_data),
            "train_examples": len(train_examples),
            "example_type": type(examples[0]).__name__,
        }
        record = RunRecord(kind="cross-encoder", **summary)
        write_run_outputs(output_dir, trainer.state.log_history, record, args)
        summary = record.to_json()
    trainer.accelerator.wait_for_everyone()
    return summary
