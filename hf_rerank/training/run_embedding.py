"""Fine-tune an embedding model (bi-encoder), fully or with LoRA, end to end.

``train_embedding(model_args, data_args, training_args)`` is what ``recipes/paper2_variants.py``
and ``hf-rerank train-embedding`` run: data -> triplets (random, mined or no negatives; losses
``mnrl``, ``triplet``) or, with ``--teacher``, lists of the teacher's candidates with its scores
(:func:`~hf_rerank.data.examples.make_teacher_groups`; the score losses of :mod:`hf_rerank.losses`
on cosine scores, e.g. ``kl``, ``margin_mse``) -> :class:`~hf_rerank.data.collators.BiEncoderCollator`
-> :class:`~hf_rerank.training.embedding.EmbeddingTrainer` -> artifacts. :func:`evaluate_embedding_model`
is the evaluation both use, also for the untrained base model. It writes to ``training_args.output_dir``:

- the final model in sentence-transformers' layout (loads with ``SentenceTransformer``,
  ``hf_rerank.BiEncoder`` and ``transformers.AutoModel``); with LoRA it is the merged model and
  ``adapter/`` holds the adapters alone (loads the same way, with peft installed);
- ``negatives.tsv`` when negatives were mined; ``log_history.json``;
- ``eval_<name>/`` (reranking the evaluation run) and ``eval_<name>_dense/`` (dense retrieval over
  the retrieval corpus), each ``metrics.json`` + ``run.trec`` as ``hf-rerank evaluate`` writes them;
- ``space_embeddings.npz``: the final model's embeddings of the embedding-space pairs
  (``queries``, ``passages``: ``(n, d)`` float32), for UMAP figures;
- ``metrics.json``, a :class:`~hf_rerank.training.record.RunRecord` of kind ``embedding``:
  ``{"eval": {name: {...}, name_dense: {...}}, "first_stage", "significance",
  "eval_protocol", "embedding_space", "lora" (when used), "trainable_parameters",
  "total_parameters", "train_seconds", "inference_seconds", "optimizer", "loss", "loss_options",
  "teacher" (None without: ``{"sources", "candidates", "group_size", "groups_per_query"}`` as the
  cross-encoder run writes it), ...}``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from transformers import AutoModel, AutoTokenizer, set_seed

from hf_rerank.data.collators import BiEncoderCollator
from hf_rerank.data.collection import IRCollection
from hf_rerank.data.examples import make_triplets
from hf_rerank.data.formats import atomic_write
from hf_rerank.data.negatives import write_negatives
from hf_rerank.data.sources import load_collection
from hf_rerank.errors import UsageError
from hf_rerank.evaluation.metrics import evaluate_run, get_metric_set
from hf_rerank.evaluation.report import evaluate_reranking, write_report
from hf_rerank.evaluation.retrieve import RetrievalReport
from hf_rerank.inference.dense import EmbeddingScorer, dense_retrieve, encode_corpus
from hf_rerank.losses import EMBEDDING_LOSSES, LOSSES
from hf_rerank.mining.dense import mine_hard_negatives
from hf_rerank.models.bi_encoder import BiEncoder, read_pooling, write_sentence_transformers_modules
from hf_rerank.models.lora import lora_from_args
from hf_rerank.models.resolve import resolve_model
from hf_rerank.training.arguments import EmbeddingTrainingArguments, TeacherArguments
from hf_rerank.training.callbacks import EmbeddingSpaceCallback, IREvaluationCallback
from hf_rerank.training.embedding import EmbeddingTrainer
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

NEGATIVE_CHOICES = ("none", "random", "mined")


@dataclass
class EmbeddingModelArguments:
    """Which embedding model to start from."""

    model_name_or_path: str = field(
        default="sentence-transformers/all-MiniLM-L6-v2",
        metadata={"help": "checkpoint directory, Hub id or id@revision (all-MiniLM-L6-v2: the bundled copy)"},
    )
    trust_remote_code: bool = field(default=False, metadata={"help": "allow custom model code"})


@dataclass
class EmbeddingDataArguments(EvaluationArguments, TrainDataArguments, TeacherArguments):
    """Training data, negatives, and the evaluation protocol (the fields shared with the cross-encoder
    run: :class:`~hf_rerank.training.eval_arguments.EvaluationArguments`, whose ``eval_data`` is
    redeclared here because its queries also retrieve, and
    :class:`~hf_rerank.training.train_data_arguments.TrainDataArguments`)."""

    train_data: str = field(
        default="sentence-transformers/msmarco", metadata={"help": "collection directory or registered source"}
    )
    negatives: str = field(
        default="random",
        metadata={
            "help": "triplets: none (in-batch only), random (from the corpus) "
            "or mined (dense window of the base model); "
            "not used with --teacher, whose lists bring their own candidates"
        },
    )
    mine_window: list[int] = field(
        default_factory=lambda: [50, 200],
        metadata={"help": "mined: first and last rank (1-based, inclusive) to sample from"},
    )
    mine_seed: int = field(default=42, metadata={"help": "mined: sampling seed (arXiv 2506.18535: 42)"})
    eval_data: str = field(
        default="msmarco-passage/trec-dl-2019/judged",
        metadata={"help": "collection whose run is reranked and whose queries retrieve"},
    )
    eval_depth: int = field(default=100, metadata={"help": "candidates reranked per query"})
    retrieval_data: list[str] | None = field(
        default=None, metadata={"help": "collections whose corpora, with eval_data's, are searched by dense retrieval"}
    )
    retrieval_k: int = field(default=1000, metadata={"help": "passages retrieved per query"})
    space_pairs: int = field(
        default=1000,
        metadata={
            "help": "judged (query, positive) pairs of eval_data for embedding-space numbers and UMAP (paper: 1,000)"
        },
    )
    space_seed: int = field(
        default=42,
        metadata={
            "help": "sampling seed of the space_pairs (not the run's seed: runs with different seeds "
            "measure the same pairs)"
        },
    )
    embedding_cache_dir: str | None = field(
        default=None, metadata={"help": "cache corpus embeddings and mining here (keyed by model weights)"}
    )


def check_loss_and_data(args: EmbeddingTrainingArguments, data_args: EmbeddingDataArguments) -> None:
    """Refuse a loss the data cannot feed: the score losses (``kl``, ``listnet``, ...) train on lists of a
    teacher's candidates, so they need ``--teacher``; ``mnrl`` and ``triplet`` train on triplets, which a
    teacher does not give; mined negatives are for triplets only. Raises ``ValueError`` saying which flag to change."""
    if data_args.negatives not in NEGATIVE_CHOICES:
        raise UsageError(f"negatives must be one of {', '.join(NEGATIVE_CHOICES)}, got {data_args.negatives!r}")
    if args.loss in LOSSES and not data_args.teacher:
        learns = (
            "learns from a teacher's scores" if LOSSES[args.loss].target == "teacher" else "scores lists of candidates"
        )
        raise UsageError(
            f"loss {args.loss!r} {learns}: give --teacher (a run of the training data or a run file); "
            "embedding models train on lists of its candidates"
        )
    if args.loss in EMBEDDING_LOSSES and data_args.teacher:
        raise UsageError(
            f"loss {args.loss!r} trains on triplets, not on a teacher's lists: drop --teacher, or distill "
            "with a score loss (--loss kl, margin_mse, ...)"
        )
    if data_args.teacher and data_args.negatives == "mined":
        raise UsageError(
            "--negatives mined and --teacher exclude each other: a teacher's lists bring their own candidates"
        )


def space_pairs(collection: IRCollection, count: int, positive_grade: int, seed: int) -> list[tuple[str, str]]:
    """Up to ``count`` (query text, positive passage text) pairs judged ``>= positive_grade``, seeded sample."""
    pairs = [
        (collection.queries[qid], collection.corpus[pid])
        for qid, judged in collection.qrels.items()
        for pid, grade in judged.items()
        if grade >= positive_grade and qid in collection.queries and pid in collection.corpus
    ]
    if len(pairs) > count:
        chosen = np.random.default_rng(seed).choice(len(pairs), size=count, replace=False)
        pairs = [pairs[i] for i in sorted(chosen)]
    return pairs


def load_embedding_model(reference: str, trust_remote_code: bool = False):
    """``(model, tokenizer, pooling, normalize)`` for a checkpoint (pooling from its sentence-transformers files)."""
    path = resolve_model(reference)
    tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    model = AutoModel.from_pretrained(path, trust_remote_code=trust_remote_code)
    pooling, normalize = read_pooling(path)
    return model, tokenizer, pooling, normalize


def evaluate_embedding_model(
    encoder: BiEncoder,
    data_args: EmbeddingDataArguments,
    output_dir: Path,
    *,
    model_name: str,
    show_progress: bool = True,
) -> dict:
    """Evaluate ``encoder`` as the recipes do; write ``eval_<name>/``, ``eval_<name>_dense/``, ``space_embeddings.npz``.

    One encoding of the retrieval corpus (``eval_data`` plus ``retrieval_data``) serves both dense
    retrieval (eval_data's judged queries, top ``retrieval_k``) and reranking ``eval_run``'s
    top-``eval_depth``. Returns ``{"eval", "first_stage", "significance", "eval_protocol" ({name: EvalProtocol}),
    "embedding_space", "inference_seconds", "per_query"}`` (``per_query``: ``{name: {metric: {qid: value}}}``).
    """
    from hf_rerank.analysis.embedding_space import embedding_space_stats

    eval_collection = load_collection(data_args.eval_data)
    corpus_collections = [eval_collection, *(load_collection(name) for name in data_args.retrieval_data or [])]
    corpus = IRCollection.union(*corpus_collections).corpus if len(corpus_collections) > 1 else eval_collection.corpus
    name, dense_name = data_args.eval_name, f"{data_args.eval_name}_dense"
    started = time.perf_counter()
    embeddings = encode_corpus(encoder, corpus, cache_dir=data_args.embedding_cache_dir, show_progress=show_progress)
    encoded = time.perf_counter()
    report, run = evaluate_reranking(
        eval_collection,
        data_args.eval_run,
        EmbeddingScorer(encoder, corpus, embeddings),
        model_name=model_name,
        depth=data_args.eval_depth,
        metric_set=data_args.eval_metrics,
        show_progress=show_progress,
    )
    write_report(report, run, output_dir / f"eval_{name}")
    searched = time.perf_counter()
    queries = {qid: eval_collection.queries[qid] for qid in eval_collection.qrels if qid in eval_collection.queries}
    dense_run = dense_retrieve(encoder, queries, embeddings, k=data_args.retrieval_k, show_progress=show_progress)
    retrieved = time.perf_counter()
    metric_set = get_metric_set(data_args.eval_metrics)
    dense = evaluate_run(eval_collection.qrels, dense_run, metric_set)
    dense_report = RetrievalReport(
        metrics=dense.means,
        first_stage=dense.means,
        significance={},
        per_query=dense.per_query,
        model=model_name,
        run="dense",
        data=eval_collection.name,
        depth=data_args.retrieval_k,
        metric_set=metric_set.name,
        convention=metric_set.convention,
        queries=len(dense.queries),
        pairs=0,
        pairs_per_second=None,
        wall_seconds=retrieved - searched + encoded - started,
        warnings=list(dense.warnings),
        corpus=len(embeddings.pids),
        encode_seconds=encoded - started,
        search_seconds=retrieved - searched,
    )
    write_report(dense_report, dense_run, output_dir / f"eval_{dense_name}")
    print(report.table())
    print(dense_report.table())
    pairs = space_pairs(eval_collection, data_args.space_pairs, data_args.positive_grade, data_args.space_seed)
    space_queries = encoder.encode([q for q, _ in pairs], show_progress=False)
    space_passages = encoder.encode([p for _, p in pairs], show_progress=False)
    with atomic_write(output_dir / "space_embeddings.npz", "wb") as handle:
        np.savez(handle, queries=space_queries.numpy(), passages=space_passages.numpy())
    return {
        "eval": {name: report.metrics, dense_name: dense.means},
        "first_stage": {name: report.first_stage},
        "significance": {name: report.significance},
        "eval_protocol": {
            name: EvalProtocol.reranking(
                report, data=data_args.eval_data, run=data_args.eval_run, depth=data_args.eval_depth
            ),
            dense_name: EvalProtocol(
                data=data_args.eval_data,
                corpus=[data_args.eval_data, *(data_args.retrieval_data or [])],
                corpus_passages=len(embeddings.pids),
                k=data_args.retrieval_k,
                search="exact cosine",
                metric_set=metric_set.name,
                convention=metric_set.convention,
                queries=len(dense.queries),
            ),
        },
        "embedding_space": {**embedding_space_stats(space_queries, space_passages), "pairs": len(pairs)},
        "inference_seconds": {
            "encode_corpus": encoded - started,
            "rerank": searched - encoded,
            "dense_search": retrieved - searched,
        },
        "per_query": {name: report.per_query, dense_name: dense.per_query},
    }


def evaluation_callbacks(
    eval_collection: IRCollection, data_args: EmbeddingDataArguments, args: EmbeddingTrainingArguments
) -> tuple[IREvaluationCallback, EmbeddingSpaceCallback]:
    """The embedding run's evaluation callbacks: reranking ``eval_collection``
    (:func:`~hf_rerank.training.run_common.ir_evaluation_callback`), and the embedding space of
    ``space_pairs`` judged pairs of it (sampled with ``space_seed``), whose regression watch follows the
    metric set's headline metric (:attr:`IREvaluationCallback.headline`: ``ndcg@10`` under ``trec-dl``,
    ``mrr@10`` under ``msmarco-dev``)."""
    ir_callback = ir_evaluation_callback(eval_collection, data_args, args)
    space_callback = EmbeddingSpaceCallback(
        space_pairs(eval_collection, data_args.space_pairs, data_args.positive_grade, data_args.space_seed),
        watch=ir_callback.headline,
        batch_size=args.per_device_eval_batch_size,
    )
    return ir_callback, space_callback


def train_embedding(
    model_args: EmbeddingModelArguments, data_args: EmbeddingDataArguments, args: EmbeddingTrainingArguments
) -> dict:
    """Train, evaluate and save an embedding model (see the module docstring); returns the ``metrics.json`` object."""
    start_run(args)
    check_loss_and_data(args, data_args)
    set_seed(args.seed)
    output_dir = Path(args.output_dir)
    train_collection, eval_collection, teacher = load_run_data(data_args)
    model, tokenizer, pooling, normalize = load_embedding_model(
        model_args.model_name_or_path, model_args.trust_remote_code
    )

    negatives = {"none": None, "random": "random"}.get(data_args.negatives)
    if data_args.negatives == "mined":
        if len(data_args.mine_window) != 2:
            raise UsageError(f"mine_window must be two ranks (first last), got {data_args.mine_window}")
        miner = BiEncoder(
            model,
            tokenizer,
            max_length=args.max_length,
            pooling=pooling,
            normalize=normalize,
            device=str(args.device),
            precision=args.compute_precision,
        )
        negatives = mine_hard_negatives(
            miner,
            train_collection,
            window=tuple(data_args.mine_window),
            positive_grade=data_args.positive_grade,
            seed=data_args.mine_seed,
            cache_dir=data_args.embedding_cache_dir,
            show_progress=args.process_index == 0,
        )
        if args.process_index == 0:
            write_negatives(negatives, output_dir / "negatives.tsv")
        model.train()
    if teacher is None:
        examples = make_triplets(
            train_collection, negatives=negatives, positive_grade=data_args.positive_grade, seed=args.seed
        )
        logger.info("%d training examples (%s negatives)", len(examples), data_args.negatives)
    else:
        examples = teacher_examples(train_collection, teacher, data_args, args)
        logger.info("%d training examples (lists of the teacher's candidates)", len(examples))

    model, lora = lora_from_args(
        model, args, task_type="FEATURE_EXTRACTION", base_reference=model_args.model_name_or_path
    )
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    check_disk_space(args, model)

    ir_callback, space_callback = evaluation_callbacks(eval_collection, data_args, args)
    collator = BiEncoderCollator(
        tokenizer,
        train_collection.queries,
        train_collection.corpus,
        args.max_length,
        chunk_overhead_tokens=args.chunk_overhead_tokens,
    )
    trainer = EmbeddingTrainer(
        model=model,
        args=args,
        train_dataset=examples,
        data_collator=collator,
        processing_class=tokenizer,
        callbacks=[ir_callback, space_callback, *run_callbacks(args, "embedding")],
        pooling=pooling,
        normalize=normalize,
    )
    train_output = trainer.train(resume_from_checkpoint=args.resume_from_checkpoint)
    final_model = save_trained_model(
        trainer,
        lora,
        tokenizer,
        lambda directory, merged: write_sentence_transformers_modules(
            directory,
            hidden_size=merged.config.hidden_size,
            pooling=pooling,
            normalize=normalize,
            max_length=args.max_length,
        ),
    )

    summary: dict = {}
    if trainer.is_world_process_zero():
        encoder = BiEncoder(
            final_model,
            tokenizer,
            max_length=args.max_length,
            pooling=pooling,
            normalize=normalize,
            device=str(args.device),
            precision=args.compute_precision,
        )
        evaluation = evaluate_embedding_model(encoder, data_args, output_dir, model_name=str(output_dir))
        before = scores_before_training(trainer.state.log_history, data_args.eval_name)
        if trainer.loss_fn is not None:
            loss_options = trainer.loss_fn.options()
        else:
            loss_options = (
                {"temperature": args.temperature}
                if args.loss == "mnrl"
                else {"distance": args.distance, "margin": args.margin}
            )
        summary = {
            **{key: value for key, value in evaluation.items() if key != "per_query"},
            "before_training": {data_args.eval_name: before} if before else {},
            "regressed_at_steps": space_callback.regressed_at,
            "lora": lora,
            "trainable_parameters": trainable,
            "total_parameters": total,
            **training_summary(trainer, train_output, args),
            "model": model_args.model_name_or_path,
            "pooling": pooling,
            "normalize": normalize,
            "loss": args.loss,
            "loss_options": loss_options,
            "teacher": None
            if teacher is None
            else teacher.record(
                depth=data_args.teacher_depth, group_size=args.group_size, groups_per_query=data_args.groups_per_query
            ),
            "negatives": data_args.negatives if teacher is None else None,
            "mine_window": data_args.mine_window if data_args.negatives == "mined" else None,
            "train_data": data_args.train_data,
            "train_examples": len(examples),
            "example_type": type(examples[0]).__name__,
        }
        record = RunRecord(kind="embedding", **summary)
        write_run_outputs(output_dir, trainer.state.log_history, record, args)
        summary = record.to_json()
    trainer.accelerator.wait_for_everyone()
    return summary
