"""Fast CPU dropout: the masks' distribution and reproducibility, the eager attention against
transformers' own (BERT and ModernBERT), and the trainers switching models to it."""

from __future__ import annotations

import copy
import json

import pytest
import torch
from peft import LoraConfig, get_peft_model
from transformers import (
    AutoModel,
    AutoModelForSequenceClassification,
    ModernBertConfig,
    ModernBertForSequenceClassification,
)

from hf_rerank.data.collators import CrossEncoderCollator
from hf_rerank.data.examples import PairExample
from hf_rerank.training.arguments import CrossEncoderTrainingArguments
from hf_rerank.training.cpu_dropout import (
    ATTENTION,
    FastDropout,
    dropout_scale,
    eager_attention,
    fast_dropout,
    keep_probability,
    use_fast_cpu_dropout,
)
from hf_rerank.training.cross_encoder import CrossEncoderTrainer
from tests.conftest import tiny_config

pytestmark = pytest.mark.usefixtures("one_thread")


def test_keep_probability_rounds_p_to_a_multiple_of_one_65536th():
    assert keep_probability(0.1) == 1 - 6554 / 65536
    assert keep_probability(0.5) == 0.5
    assert keep_probability(0.0) == 1.0


@pytest.mark.parametrize("p", [0.1, 0.5])
def test_masks_keep_each_element_with_probability_one_minus_p(p):
    torch.manual_seed(0)
    n = 1_000_000
    scale = dropout_scale(torch.Size([1000, 1000]), p, torch.float32, torch.device("cpu"))
    q = keep_probability(p)
    assert scale.unique().tolist() == [0.0, pytest.approx(1 / q)]
    kept = (scale > 0).float().mean().item()
    assert abs(kept - q) < 5 * (q * (1 - q) / n) ** 0.5  # five binomial standard deviations
    assert abs(scale.mean().item() - 1.0) < 5 * ((1 - q) / q / n) ** 0.5  # expectation preserved
    # no structure: neighbouring elements (same and adjacent 16-bit words) are independent
    flat = (scale > 0).float().flatten()
    both = (flat[:-1] * flat[1:]).mean().item()
    assert abs(both - q * q) < 5 * (q * q * (1 - q * q) / n) ** 0.5
    rows = (scale > 0).float().mean(dim=1)
    assert rows.std().item() < 2 * (q * (1 - q) / 1000) ** 0.5


def test_masks_follow_torchs_seed_and_differ_between_draws():
    shape = torch.Size([64, 64])
    torch.manual_seed(5)
    first, second = (dropout_scale(shape, 0.1, torch.bfloat16, torch.device("cpu")) for _ in range(2))
    torch.manual_seed(5)
    again = dropout_scale(shape, 0.1, torch.bfloat16, torch.device("cpu"))
    assert first.dtype == torch.bfloat16
    assert torch.equal(first, again)
    assert not torch.equal(first, second)


def test_fast_dropout_is_identity_in_eval_and_scales_gradients_by_its_mask():
    x = torch.randn(50, 40, requires_grad=True)
    assert fast_dropout(x, 0.1, training=False) is x
    assert fast_dropout(x, 0.0, training=True) is x
    assert torch.equal(fast_dropout(x, 1.0, training=True), torch.zeros_like(x))
    torch.manual_seed(1)
    y = fast_dropout(x, 0.3, training=True)
    torch.manual_seed(1)
    scale = dropout_scale(x.shape, 0.3, x.dtype, x.device)
    assert torch.equal(y, x * scale)
    y.sum().backward()
    assert torch.equal(x.grad, scale)
    module = FastDropout(0.3)
    assert isinstance(module, torch.nn.Dropout) and module.p == 0.3
    assert module.eval()(x) is x


def test_eager_attention_drops_whole_probabilities_in_training():
    torch.manual_seed(2)
    query, key, value = (torch.randn(2, 3, 7, 4) for _ in range(3))
    mask = torch.zeros(2, 1, 7, 7)
    mask[1, :, :, 5:] = torch.finfo(torch.float32).min  # the second sequence has 5 real tokens
    module = torch.nn.Module().eval()
    output, probabilities = eager_attention(module, query, key, value, mask, dropout=0.5)
    reference = torch.nn.functional.scaled_dot_product_attention(query, key, value, attn_mask=mask)
    torch.testing.assert_close(output, reference.transpose(1, 2))
    assert torch.all(probabilities[1, :, :, 5:] == 0)

    module.train()
    torch.manual_seed(3)
    _, dropped = eager_attention(module, query, key, value, mask, dropout=0.5)
    zeroed = (dropped[0] == 0).float().mean().item()
    assert 0.4 < zeroed < 0.6
    kept = dropped[0] != 0
    torch.testing.assert_close(dropped[0][kept], 2 * probabilities[0][kept])


def modernbert(**overrides):
    config = ModernBertConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=3,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=256,
        global_attn_every_n_layers=2,
        local_attention=4,
        num_labels=1,
        pad_token_id=0,
        **overrides,
    )
    return ModernBertForSequenceClassification(config)


@pytest.mark.parametrize(
    "build",
    [
        lambda: AutoModelForSequenceClassification.from_config(tiny_config(num_labels=1)),
        modernbert,
    ],
    ids=["bert", "modernbert-sliding-window"],
)
def test_models_switched_to_fast_dropout_compute_the_same_in_eval(build):
    torch.manual_seed(0)
    model = build().eval()
    reference = copy.deepcopy(model)
    changed = use_fast_cpu_dropout(model)
    assert changed["attention"] == ATTENTION and changed["previous_attention"] == reference.config._attn_implementation
    assert changed["dropout_modules"] > 0
    assert not any(type(m) is torch.nn.Dropout for m in model.modules())
    ids = torch.randint(5, 1000, (3, 12))
    mask = torch.ones(3, 12, dtype=torch.long)
    mask[1, 7:] = 0
    mask[2, 3:] = 0
    with torch.no_grad():
        torch.testing.assert_close(
            model(input_ids=ids, attention_mask=mask).logits,
            reference(input_ids=ids, attention_mask=mask).logits,
            rtol=1e-5,
            atol=1e-5,
        )
        with torch.autocast("cpu", dtype=torch.bfloat16):
            fast = model(input_ids=ids, attention_mask=mask).logits
            slow = reference(input_ids=ids, attention_mask=mask).logits
    torch.testing.assert_close(fast, slow, rtol=0.03, atol=0.03)
    assert use_fast_cpu_dropout(model)["dropout_modules"] == 0  # idempotent


def test_training_mode_gradients_match_torch_dropout_in_expectation_free_case():
    # with every dropout probability 0 the fast path must train exactly like transformers' sdpa
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_config(
        tiny_config(num_labels=1, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    ).train()
    reference = copy.deepcopy(model)
    use_fast_cpu_dropout(model)
    ids = torch.randint(5, 1000, (4, 10))
    mask = torch.ones(4, 10, dtype=torch.long)
    mask[0, 6:] = 0
    for m in (model, reference):
        m(input_ids=ids, attention_mask=mask).logits.sum().backward()
    for (name, p), q in zip(model.named_parameters(), reference.parameters()):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-4, atol=1e-6, msg=name)


def test_lora_models_and_saved_checkpoints(tmp_path):
    torch.manual_seed(0)
    encoder = AutoModel.from_config(tiny_config())
    lora = get_peft_model(encoder, LoraConfig(r=2, target_modules=["query", "value"], lora_dropout=0.1))
    changed = use_fast_cpu_dropout(lora)
    assert changed["attention"] == ATTENTION
    assert any(isinstance(m, FastDropout) for name, m in lora.named_modules() if "lora_dropout" in name)
    lora.base_model.model.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert ATTENTION not in json.dumps(config)  # the checkpoint names no hf-rerank attention
    assert AutoModel.from_pretrained(tmp_path).config._attn_implementation != ATTENTION


QUERIES = {"q1": "what is a cat", "q2": "how tall is a giraffe"}
CORPUS = {"p1": "a cat is a small animal", "p2": "rain falls", "p3": "giraffes are tall", "p4": "the sea is blue"}


@pytest.mark.parametrize("fast", [True, False])
def test_trainer_switches_cpu_models_unless_told_not_to(tmp_path, tokenizer, fast):
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_config(tiny_config(num_labels=1))
    args = CrossEncoderTrainingArguments(
        output_dir=str(tmp_path),
        per_device_train_batch_size=4,
        max_steps=3,
        learning_rate=1e-3,
        report_to="none",
        use_cpu=True,
        save_strategy="no",
        disable_tqdm=True,
        max_length=32,
        fast_cpu_dropout=fast,
    )
    pairs = [PairExample(q, p, float(p in ("p1", "p3"))) for q in QUERIES for p in CORPUS]
    trainer = CrossEncoderTrainer(
        model=model,
        args=args,
        train_dataset=pairs,
        processing_class=tokenizer,
        data_collator=CrossEncoderCollator(tokenizer, QUERIES, CORPUS, max_length=32),
    )
    assert (model.config._attn_implementation == ATTENTION) is fast
    assert any(isinstance(m, FastDropout) for m in model.modules()) is fast
    output = trainer.train()
    assert torch.isfinite(torch.tensor(output.training_loss))
