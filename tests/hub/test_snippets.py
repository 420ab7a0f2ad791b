"""The usage snippets of published cards really run: each ```python block of the README that was
pushed to the fake Hub is executed, as a user would paste it, in a fresh Python process whose
huggingface_hub talks to the fake Hub (HF_ENDPOINT), and the libraries agree on the scores."""

import json
import re
import sys

import numpy as np
from huggingface_hub import hf_hub_download

from hf_rerank.hub.publish import publish
from hf_rerank.hub.retry import Retry
from hf_rerank.models.bi_encoder import BiEncoder
from hf_rerank.models.cross_encoder import CrossEncoder
from tests import processes
from tests.hub.test_publish import publish_base_encoder

# Runs each block in its own namespace and reports what it printed (stdout), as JSON on one line.
RUNNER = r"""
import contextlib, io, json, sys
printed = []
for block in json.load(sys.stdin):
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        exec(compile(block, "<card snippet>", "exec"), {"__name__": "__main__"})
    printed.append(buffer.getvalue())
print("SNIPPETS " + json.dumps(printed))
"""
# The query and passages every snippet scores (they are written into the templates).
QUERY = "how do lions hunt"
PASSAGES = [
    "Lions hunt in groups, stalking their prey before a short, fast charge.",
    "The stock market closed higher on Monday.",
]


def python_blocks(repo_id: str, revision: str = "main") -> list[str]:
    readme = open(hf_hub_download(repo_id, "README.md", revision=revision)).read()
    return re.findall(r"```python\n(.*?)```", readme, flags=re.DOTALL)


def run_blocks(blocks: list[str], environ: dict) -> list[str]:
    done = processes.run([sys.executable, "-c", RUNNER], timeout=600, input=json.dumps(blocks), env=environ)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.split("SNIPPETS ", 1)[1])


def numbers(printed: str) -> np.ndarray:
    return np.array([float(x) for x in re.findall(r"-?\d+\.\d+(?:e[-+]?\d+)?", printed)])


def test_cross_encoder_card_snippets_run_and_agree(hub, cross_encoder_run):
    publish(cross_encoder_run, "alice/ce", checkpoints=True, retry=Retry(attempts=2, base_delay=0.01))
    blocks = python_blocks("alice/ce")
    assert [("hf_rerank" in b, "from transformers import" in b, "sentence_transformers" in b) for b in blocks] == [
        (True, False, False),
        (False, True, False),
        (False, False, True),
    ]
    printed = run_blocks(blocks + python_blocks("alice/ce", "checkpoint-2"), hub.environ)
    expected = CrossEncoder.from_pretrained(cross_encoder_run, precision="fp32").score_pairs(
        [QUERY] * 2, PASSAGES, show_progress=False
    )
    hf_rerank, transformers, sentence_transformers = (numbers(p) for p in printed[:3])
    np.testing.assert_allclose(transformers, expected, rtol=0, atol=1e-4)  # printed to 4 decimals
    np.testing.assert_allclose(sentence_transformers, expected, rtol=0, atol=1e-4)  # printed to 4 decimals
    np.testing.assert_allclose(hf_rerank, expected, rtol=0, atol=0.05)  # bf16 where the CPU has it
    assert len(printed) == 5  # the checkpoint branch's two snippets ran too


def test_embedding_card_snippets_run_and_agree(hub, embedding_run, tiny_encoder_dir):
    publish_base_encoder(tiny_encoder_dir)  # the adapters' base, which the adapter snippet loads
    publish(embedding_run, "alice/emb", retry=Retry(attempts=2, base_delay=0.01))
    blocks = python_blocks("alice/emb")
    assert len(blocks) == 4 and 'subfolder="adapter"' in blocks[3]
    printed = run_blocks(blocks, hub.environ)
    expected = BiEncoder.from_pretrained(embedding_run, precision="fp32").score_pairs(
        [QUERY] * 2, PASSAGES, show_progress=False
    )
    hf_rerank, sentence_transformers, transformers = (numbers(p) for p in printed[:3])
    np.testing.assert_allclose(sentence_transformers, expected, rtol=0, atol=1e-4)  # printed to 4 decimals
    np.testing.assert_allclose(transformers, expected, rtol=0, atol=1e-4)  # printed to 4 decimals
    np.testing.assert_allclose(hf_rerank, expected, rtol=0, atol=0.05)
    lora = json.loads((embedding_run / "metrics.json").read_text())["lora"]
    assert printed[3].strip() == f"{lora['trainable_parameters']} adapter weights"
