"""``EmbeddingTrainer``: train a bi-encoder (encoder + pooling + optional normalisation).

Batches come from :class:`~hf_rerank.data.collators.BiEncoderCollator`: ``{"chunks": [inputs,
...], "rows": {field: (n,)}, ...}``. Every chunk is encoded by the same encoder and pooled
(``mean``, ``cls`` or ``max``), the chunks' embeddings are concatenated and ``rows`` picks each
field's embeddings, L2-normalised when the model normalises (as all-MiniLM-L6-v2 does). The
loss is ``args.loss``:

- ``mnrl`` (triplet batches, ``rows`` ``query``/``positive``[/``negative``], ``(B, d)`` each):
  in-batch negatives InfoNCE: every other positive in the batch, and every example's negative,
  is a negative for each query; with ``gather_across_devices`` under DDP the passages of all
  processes are gathered (with gradients) and serve as negatives too;
- ``triplet`` (the same batches): ``max(0, d(q, p) - d(q, n) + margin)`` with Euclidean or
  cosine distance;
- a score loss of :mod:`hf_rerank.losses` (``kl``, ``margin_mse``, ``mse``, ``listnet``,
  ``lambdaloss``, ...; list batches: ``rows`` ``query`` ``(B,)`` and ``passages`` ``(R,)``, a
  ``mask``, ``labels`` and ``teacher_scores`` ``(B, G)``): the student's score for (query,
  passage) is the cosine similarity of their embeddings, the scores are put in their ``(B, G)``
  places (:func:`list_cosine_scores`) and the loss, built with the ``--loss_*`` options,
  compares them with the teacher's scores or the labels, whichever it learns from. With
  ``kl`` this is sentence-transformers' ``DistillKLDivLoss`` with ``pairwise_cos_sim``, with
  ``margin_mse`` its bi-encoder ``MarginMSELoss`` (column 0, the teacher's best, anchors the margins).

The model may be a ``peft`` LoRA model (only the adapters train). Checkpoints are saved with
sentence-transformers' module files (``modules.json``, ``1_Pooling/``, ``2_Normalize/``), so
``SentenceTransformer(checkpoint)`` loads them.
"""

from __future__ import annotations

import logging

import torch
import torch.distributed as dist
import torch.nn.functional as F

from hf_rerank.data.collators import BiEncoderCollator
from hf_rerank.data.examples import GroupExample, PairExample
from hf_rerank.data.samplers import LengthBucketSampler, NoDuplicateQuerySampler, example_lengths
from hf_rerank.errors import UsageError
from hf_rerank.losses import EMBEDDING_LOSSES, build_loss, in_batch_infonce, triplet_margin
from hf_rerank.models.bi_encoder import BiEncoder, pool, write_sentence_transformers_modules
from hf_rerank.training.arguments import EmbeddingTrainingArguments
from hf_rerank.training.trainer import RerankTrainer

logger = logging.getLogger("hf_rerank")


def gather_with_grad(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenate ``tensor`` ``(B, d)`` from every process in rank order; gradients flow back to each.

    The backward pass sums every process's gradient for a slice into the process that owns it;
    with DDP's gradient averaging, training equals one batch of ``world_size * B`` examples.
    """
    from torch.distributed.nn.functional import all_gather

    return torch.cat(all_gather(tensor))


def list_cosine_scores(queries: torch.Tensor, passages: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Cosine similarities of each list's query with its passages, in the lists' ``(B, G)`` places.

    Args:
        queries: ``(B, d)``, row b the query of list b (any scale: L2-normalised here).
        passages: ``(R, d)``, the lists' real passages in order, list after list (``R = mask.sum()``).
        mask: bool ``(B, G)``, the real candidates of each list.
    Returns:
        ``(B, G)``: ``cos(queries[b], passage at (b, j))`` at real positions, 0 at padded ones.
    """
    if passages.shape[0] != int(mask.sum()):
        raise ValueError(f"{passages.shape[0]} passages for a mask of {int(mask.sum())} real candidates")
    owners = mask.nonzero()[:, 0]
    cosines = (F.normalize(queries, dim=-1)[owners] * F.normalize(passages, dim=-1)).sum(dim=-1)
    return cosines.new_zeros(mask.shape).masked_scatter(mask, cosines)


class EmbeddingTrainer(RerankTrainer):
    """Trainer for bi-encoders (see module docstring).

    Args (beyond ``Trainer``'s):
        pooling: ``mean``, ``cls`` or ``max`` (read it from the checkpoint with
            :func:`~hf_rerank.models.bi_encoder.read_pooling`).
        normalize: whether the model L2-normalises its embeddings.
    """

    args: EmbeddingTrainingArguments

    def __init__(self, *args, pooling: str = "mean", normalize: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        self.pooling, self.normalize = pooling, normalize
        self.loss_fn = (
            None if self.args.loss in EMBEDDING_LOSSES else build_loss(self.args.loss, **self.args.loss_options())
        )

    def _get_train_sampler(self, train_dataset=None):
        dataset = self.train_dataset if train_dataset is None else train_dataset
        batch_size = self.args.per_device_train_batch_size
        lengths = self._lengths(dataset) if self.args.length_bucketing else None
        if self.args.loss == "mnrl" and self.args.no_duplicate_queries:
            sampler = NoDuplicateQuerySampler(
                [example.qid for example in dataset], batch_size, seed=self.args.seed, lengths=lengths
            )
            if sampler.dropped:
                logger.warning(
                    "batches of %d distinct queries leave out %d of %d examples each epoch (queries with "
                    "more examples than there are batches)",
                    batch_size,
                    sampler.dropped,
                    len(dataset),
                )
            return sampler
        if lengths is not None:
            return LengthBucketSampler(lengths, batch_size, seed=self.args.seed)
        return super()._get_train_sampler(train_dataset)

    def _lengths(self, dataset) -> list[int]:
        """Tokens of each example's query plus its longest passage (positive or negative; a list's longest)."""
        collator = self.data_collator
        if all(isinstance(example, GroupExample) for example in dataset):
            return example_lengths(dataset, collator.queries, collator.corpus, tokenizer=collator.tokenizer)
        pairs = [
            PairExample(
                example.qid,
                max(
                    (example.positive, example.negative or example.positive), key=lambda pid: len(collator.corpus[pid])
                ),
                0.0,
            )
            for example in dataset
        ]
        return example_lengths(pairs, collator.queries, collator.corpus, tokenizer=collator.tokenizer)

    def embed(self, model, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Pooled (and, if the model normalises, L2-normalised) float32 embeddings ``(B, d)``."""
        hidden = model(**inputs).last_hidden_state
        embeddings = pool(hidden.float(), inputs["attention_mask"], self.pooling)
        return F.normalize(embeddings, dim=-1) if self.normalize else embeddings

    def batch_samples(self, inputs) -> int:
        return BiEncoderCollator.examples_in(inputs)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        embeddings = torch.cat([self.embed(model, chunk) for chunk in inputs["chunks"]])
        rows = inputs["rows"]
        if self.loss_fn is not None:
            return self._list_loss(embeddings, inputs, return_outputs)
        if "mask" in inputs:
            raise UsageError(
                f"loss {self.args.loss!r} trains on triplets; the data gave lists (a teacher's): "
                "drop --teacher, or choose a score loss such as kl"
            )
        queries, positives = embeddings[rows["query"]], embeddings[rows["positive"]]
        negatives = embeddings[rows["negative"]] if "negative" in rows else None
        args = self.args
        if args.loss == "mnrl":
            offset = 0
            if (
                args.gather_across_devices
                and dist.is_available()
                and dist.is_initialized()
                and dist.get_world_size() > 1
            ):
                offset = dist.get_rank() * positives.shape[0]
                positives = gather_with_grad(positives)
                negatives = None if negatives is None else gather_with_grad(negatives)
            loss = in_batch_infonce(queries, positives, negatives, temperature=args.temperature, query_offset=offset)
        else:
            if negatives is None:
                raise UsageError("loss 'triplet' needs examples with negatives (random or mined); the data has none")
            loss = triplet_margin(queries, positives, negatives, distance=args.distance, margin=args.margin)
        return (loss, {"queries": queries, "positives": positives}) if return_outputs else loss

    def _list_loss(self, embeddings: torch.Tensor, inputs: dict, return_outputs: bool):
        """The score loss on the ``(B, G)`` cosine scores of a list batch (see the module docstring)."""
        name = self.args.loss
        if "mask" not in inputs:
            raise UsageError(
                f"loss {name!r} scores lists of candidates; the data gave triplets: give --teacher "
                "(a run of the training data or a run file) to train on lists of its candidates"
            )
        mask = inputs["mask"]
        targets = inputs.get("teacher_scores") if self.loss_fn.target == "teacher" else inputs["labels"]
        if targets is None:
            raise UsageError(f"loss {name!r} learns from a teacher's scores; the data has none (give --teacher)")
        scores = list_cosine_scores(embeddings[inputs["rows"]["query"]], embeddings[inputs["rows"]["passages"]], mask)
        loss = self.loss_fn(scores, targets.to(scores.dtype), mask)
        return (loss, {"scores": scores}) if return_outputs else loss

    def scorer(self, model) -> BiEncoder:
        return BiEncoder(
            model,
            self.processing_class,
            max_length=self.args.max_length,
            pooling=self.pooling,
            normalize=self.normalize,
            device=str(self.args.device),
            precision=self.args.compute_precision,
        )

    def _save(self, output_dir: str | None = None, state_dict=None):
        super()._save(output_dir, state_dict)
        model = self.accelerator.unwrap_model(self.model)
        write_sentence_transformers_modules(
            output_dir or self.args.output_dir,
            hidden_size=model.config.hidden_size,
            pooling=self.pooling,
            normalize=self.normalize,
            max_length=self.args.max_length,
        )
