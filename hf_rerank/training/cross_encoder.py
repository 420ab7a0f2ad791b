"""``CrossEncoderTrainer``: train an ``AutoModelForSequenceClassification`` as a reranker.

Batches come from :class:`~hf_rerank.data.collators.CrossEncoderCollator`: pairs give
``labels`` of shape (B,); groups give ``labels`` (B, G), a ``mask`` of the real positions and,
with a teacher, ``teacher_scores`` (B, G), the model inputs being the real pairs only, group after
group. The model's score for a pair is its logit (one-logit head) or ``logit[1] - logit[0]`` (two
logits), as :class:`~hf_rerank.models.cross_encoder.CrossEncoder` scores at inference; the scores
are put in their (B, G) places and the loss ``args.loss`` with the ``--loss_*`` options
(:func:`hf_rerank.losses.build_loss`) compares them with the labels or the teacher's scores,
whichever the loss learns from.
"""

from __future__ import annotations

from hf_rerank.data.samplers import LengthBucketSampler, example_lengths
from hf_rerank.errors import UsageError
from hf_rerank.losses import build_loss
from hf_rerank.models.cross_encoder import CrossEncoder, pair_scores
from hf_rerank.training.arguments import CrossEncoderTrainingArguments
from hf_rerank.training.trainer import RerankTrainer


class CrossEncoderTrainer(RerankTrainer):
    """Trainer for cross-encoder rerankers; the loss is ``args.loss``."""

    args: CrossEncoderTrainingArguments

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.loss_fn = build_loss(self.args.loss, **self.args.loss_options())

    def _get_train_sampler(self, train_dataset=None):
        dataset = self.train_dataset if train_dataset is None else train_dataset
        if not self.args.length_bucketing:
            return super()._get_train_sampler(train_dataset)
        collator = self.data_collator
        lengths = example_lengths(dataset, collator.queries, collator.corpus, tokenizer=collator.tokenizer)
        return LengthBucketSampler(lengths, self.args.per_device_train_batch_size, seed=self.args.seed)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        labels, mask, teacher = inputs.pop("labels"), inputs.pop("mask", None), inputs.pop("teacher_scores", None)
        if self.loss_fn.grouped and labels.dim() != 2:
            raise UsageError(
                f"loss {self.args.loss!r} needs groups (labels of shape (batch, group)); the data gave pairs"
            )
        targets = teacher if self.loss_fn.target == "teacher" else labels
        if targets is None:
            raise UsageError(
                f"loss {self.args.loss!r} learns from a teacher's scores; the data has none (give --teacher)"
            )
        row_scores = pair_scores(model(**inputs).logits.float())
        if mask is None:
            scores = row_scores.view(labels.shape)
        else:
            scores = row_scores.new_zeros(mask.shape).masked_scatter(mask, row_scores)
        loss = self.loss_fn(scores, targets.to(scores.dtype), mask)
        return (loss, {"scores": scores}) if return_outputs else loss

    def scorer(self, model) -> CrossEncoder:
        return CrossEncoder(
            model,
            self.processing_class,
            max_length=self.args.max_length,
            device=str(self.args.device),
            precision=self.args.compute_precision,
        )
