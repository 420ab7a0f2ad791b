"""``CrossEncoderTrainer``: train an ``AutoModelForSequenceClassification`` as a reranker.

Batches come from :class:`~hf_rerank.data.collators.CrossEncoderCollator`: pairs give
``labels`` of shape (B,), groups give (B, G) with the model inputs flattened row-major to B*G
pairs. The model's score for a pair is its logit (one-logit head) or ``logit[1] - logit[0]``
(two logits), as :class:`~hf_rerank.models.cross_encoder.CrossEncoder` scores at inference, and
the loss named by ``args.loss`` (:mod:`hf_rerank.losses`) is applied to the scores.
"""

from __future__ import annotations

from hf_rerank.data.samplers import LengthBucketSampler, example_lengths
from hf_rerank.losses import GROUPED_LOSSES, get_loss
from hf_rerank.models.cross_encoder import CrossEncoder, pair_scores
from hf_rerank.training.arguments import CrossEncoderTrainingArguments
from hf_rerank.training.trainer import RerankTrainer


class CrossEncoderTrainer(RerankTrainer):
    """Trainer for cross-encoder rerankers; the loss is ``args.loss``."""

    args: CrossEncoderTrainingArguments

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.loss_fn = get_loss(self.args.loss)

    def _get_train_sampler(self, train_dataset=None):
        dataset = self.train_dataset if train_dataset is None else train_dataset
        if not self.args.length_bucketing:
            return super()._get_train_sampler(train_dataset)
        collator = self.data_collator
        lengths = example_lengths(dataset, collator.queries, collator.corpus, tokenizer=collator.tokenizer)
        return LengthBucketSampler(lengths, self.args.per_device_train_batch_size, seed=self.args.seed)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        labels = inputs.pop("labels")
        if self.args.loss in GROUPED_LOSSES and labels.dim() != 2:
            raise ValueError(f"loss {self.args.loss!r} needs groups (labels of shape (batch, group)); the data gave pairs")
        logits = model(**inputs).logits.float()
        scores = pair_scores(logits).view(labels.shape)
        loss = self.loss_fn(scores, labels.to(scores.dtype))
        return (loss, {"scores": scores}) if return_outputs else loss

    def scorer(self, model) -> CrossEncoder:
        return CrossEncoder(model, self.processing_class, max_length=self.args.max_length,
                            device=str(self.args.device), precision=self.args.compute_precision)
