"""Model cards: metadata round-trips through huggingface_hub, model-index equals metrics.json,
the body states the protocol and the training, optional inputs come and go, bad input is refused."""

import json
import re
import shutil

import pytest
from huggingface_hub import ModelCard
from markdown_it import MarkdownIt
from scipy import stats

from hf_rerank.hub.errors import CardError
from hf_rerank.hub.render import render_model_card, write_model_card
from hf_rerank.training.record import RecordError
from tests.hub.conftest import BASE_ID, CONVENTION, QIDS, per_query, write_json, write_png

#: What the cross-encoder fixture run used: the Lion/AdamW seed paper, Lion, MS MARCO, TREC DL 2019.
CITATIONS = ("2506.18297", "2302.06675", "1611.09268", "2003.07820")


def html_of(markdown: str) -> str:
    """The body as the Hub renders it (GitHub-flavoured tables) -- to check tables really are tables."""
    return MarkdownIt("commonmark").enable("table").render(markdown)


def results_by_dataset(card) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for result in card.data.eval_results:
        out.setdefault(result.dataset_name, {})[result.metric_type] = result.metric_value
    return out


def test_cross_encoder_metadata_round_trips_and_model_index_equals_metrics(cross_encoder_run):
    path = write_model_card(cross_encoder_run, kind="cross-encoder", model_id="alice/ce-run")
    card = ModelCard.load(path)
    data = card.data
    assert data.library_name == "transformers" and data.pipeline_tag == "text-ranking"
    assert data.tags == ["cross-encoder", "lion", "hf-rerank", "reranker"]
    assert data.base_model == "sentence-transformers/all-MiniLM-L6-v2"
    assert data.license == "apache-2.0"  # read from the bundled base model's own card
    assert data.language == ["en"] and data.datasets == ["sentence-transformers/msmarco"]
    metrics = json.loads((cross_encoder_run / "metrics.json").read_text())
    assert results_by_dataset(card) == {"dl19: reranking bm25 top-100": metrics["eval"]["dl19"]}  # exact floats
    assert {r.task_type for r in data.eval_results} == {"text-ranking"}
    assert {r.dataset_type for r in data.eval_results} == {"dl19"}  # a local path is not published
    # the metadata survives a second round trip unchanged
    again = ModelCard(str(card))
    assert again.data.to_dict() == data.to_dict()


def test_body_states_protocol_significance_training_and_citations(cross_encoder_run):
    text = write_model_card(cross_encoder_run, kind="cross-encoder", model_id="alice/ce-run").read_text()
    body = text.split("---", 2)[2]
    for expected in (
        "top-100 candidates of the `bm25` first-stage run",
        "8 judged queries",
        CONVENTION,
        "paired t-test and Fisher's randomisation test (10,000 sign flips)",
        "against the first stage and the base model; each p-value is for its own comparison, not corrected",
        "| Lion scaling | k = 3: the configured AdamW-style lr 0.0001 and weight decay 0.01 became lr / k = 3.333e-05 "
        "and weight decay × k = 0.03 |",
        "| Optimizer | Lion (lion-pytorch foreach): lr 3.333e-05, weight decay 0.03, β 0.9, 0.99 |",
        "| LR schedule | linear, warm-up 10% of the steps |",
        "| Batch | 4 per device × 1 process(es) = 4 examples per optimizer step |",
        "| Epochs and steps | 1 epoch(s), 4 optimizer steps |",
        "| Wall time (training) | 12.5 s |",
        "| Precision | fp32 |",
        "| Hardware | not recorded |",
        "| Peak memory | not recorded |",
        "![Training loss, learning rate and dl19_ndcg@10 against the optimizer step](training_dynamics.png)",
        'CrossEncoder.from_pretrained("alice/ce-run")',
        "## Framework versions",
        *CITATIONS,
    ):
        assert expected in body, expected
    for unused in ("2506.18535", "2102.07662"):  # the embedding seed paper, TREC DL 2020: not used by this run
        assert unused not in body, unused
    assert (cross_encoder_run / "training_dynamics.png").is_file()
    assert str(cross_encoder_run.parent) not in text  # local paths stay on this machine
    assert not re.search(r"\{\{ ?[a-z_][\w.]* ?\}\}|\{%", text)  # no template left unrendered


def test_significance_against_the_base_model_is_read_from_the_record(cross_encoder_run):
    text = write_model_card(cross_encoder_run, kind="cross-encoder", model_id="alice/ce-run").read_text()
    model, base = per_query(0.3)["ndcg@10"], per_query(0.25, jitter=0.03)["ndcg@10"]
    expected_p = stats.ttest_rel([model[q] for q in QIDS], [base[q] for q in QIDS]).pvalue
    row = next(line for line in text.splitlines() if line.startswith("| ndcg@10 |"))
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert cells[:4] == ["ndcg@10", "0.3750", "0.4250", "**0.4750**"]
    assert cells[4] == "+0.1000 ▲" and cells[5] == "0.0010 / 0.0020"  # vs first stage, from metrics.json
    assert cells[6] == "+0.0500 ▲"
    assert (
        "Base model: the untrained base model (`sentence-transformers/all-MiniLM-L6-v2`) on the same candidates, "
        "used as it is without fine-tuning (per-query scores)."
    ) in text
    p_t = cells[7].split(" / ")[0]
    assert p_t == ("< 0.0001" if expected_p < 1e-4 else f"{expected_p:.4f}")
    assert (
        f"**Result.** On dl19 it scores ndcg@10 0.4750, significantly better than the first stage (0.3750; Δ +0.1000, "
        f"paired t-test p 0.0010); significantly better than the base model (0.4250; Δ +0.0500, p {p_t})."
    ) in text


def test_without_a_base_comparison_the_step0_means_are_shown_untested(cross_encoder_run, caplog):
    write_model_card(cross_encoder_run, kind="cross-encoder")
    assert "--base-of" not in caplog.text  # the comparison with eval_dl19_base/ is stored: nothing to say
    metrics = json.loads((cross_encoder_run / "metrics.json").read_text())
    write_json(cross_encoder_run / "metrics.json", {k: v for k, v in metrics.items() if k != "base_comparison"})
    text = write_model_card(cross_encoder_run, kind="cross-encoder", model_id="alice/ce-run").read_text()
    # the base model's evaluation lies beside the run but its comparison is not stored: the user is told how
    assert f"{cross_encoder_run}/eval_dl19_base holds the base model's evaluation of 'dl19'" in caplog.text
    assert f"with --base-of {cross_encoder_run} (hf-rerank evaluate)" in caplog.text
    assert (
        "| metric | bm25 (first stage) | before fine-tuning | this model | Δ vs first stage | p t-test / rand. |"
        in text
    )
    assert "Δ vs base" not in text and "against the first stage;" in text
    assert "means only: no per-query scores, so no test" in text


def test_markdown_tables_render_as_html_tables(cross_encoder_run, embedding_run):
    ce = write_model_card(cross_encoder_run, kind="cross-encoder", model_id="alice/ce").read_text()
    emb = write_model_card(embedding_run, kind="embedding", model_id="alice/emb").read_text()
    # evaluation + training; evaluation x2 (rerank, dense) + embedding space + training + LoRA
    assert html_of(ce.split("---", 2)[2]).count("<table>") == 2
    assert html_of(emb.split("---", 2)[2]).count("<table>") == 5
    for text, run in ((ce, cross_encoder_run), (emb, embedding_run)):
        for image in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text):
            assert (run / image).is_file(), image


def test_embedding_card_with_lora_dense_retrieval_and_embedding_space(embedding_run, tmp_path):
    into = tmp_path / "card"
    card = ModelCard.load(write_model_card(embedding_run, kind="embedding", model_id="alice/emb", into=into))
    assert card.data.library_name == "sentence-transformers" and card.data.pipeline_tag == "sentence-similarity"
    assert card.data.tags == ["sentence-transformers", "adamw", "hf-rerank", "lora"]
    assert card.data.base_model == BASE_ID
    metrics = json.loads((embedding_run / "metrics.json").read_text())
    assert results_by_dataset(card) == {
        "dl19: reranking bm25 top-100": metrics["eval"]["dl19"],
        "dl19_dense: dense retrieval, top-100": metrics["eval"]["dl19_dense"],
    }
    assert {r.task_type for r in card.data.eval_results} == {"text-ranking", "text-retrieval"}
    body = card.text
    for expected in (
        "Mean pooling over the last hidden states, L2-normalised",
        "### LoRA",
        "| Rank r | 4 |",
        "| Target modules | `query`, `value` |",
        "`adapter/` holds the adapters alone",
        'PeftModel.from_pretrained(base, "alice/emb", subfolder="adapter")',
        f'AutoModel.from_pretrained("{BASE_ID}")',
        "## Embedding space",
        "Measured on the embeddings of 16 judged",
        "| anisotropy | 0.2100 |",
        "| effective rank | 17.5000 |",
        "over a corpus of 300 passages",
        "| Evaluations below the starting point | step 4 |",
        "| Loss | triplet (distance euclidean, margin 5) |",
        "negatives: mined (ranks 50-200 of the base model)",
        "![UMAP projections of query and passage embeddings](umap.png)",
    ):
        assert expected in body, expected
    assert sorted(p.name for p in into.iterdir()) == ["README.md", "training_dynamics.png", "umap.png"]


def test_embedding_card_leaves_out_what_the_run_did_not_record(embedding_run):
    metrics = json.loads((embedding_run / "metrics.json").read_text())
    for key in ("lora", "embedding_space", "regressed_at_steps", "optimizer", "train_seconds"):
        metrics.pop(key)
    write_json(embedding_run / "metrics.json", metrics)
    shutil.rmtree(embedding_run / "adapter")
    for name in ("umap.png", "log_history.json"):
        (embedding_run / name).unlink()
    body = render_model_card(embedding_run, kind="embedding", model_id="alice/emb").text
    for absent in ("### LoRA", "## Embedding space", "umap.png", "Training dynamics", "adapter/", "Evaluations below"):
        assert absent not in body, absent
    assert "| Optimizer | not recorded |" in body and "| Wall time (training) | not recorded |" in body
    assert "with an unrecorded optimizer on" in body


def test_the_base_model_comes_from_the_record_never_from_the_directories_around_the_run(embedding_run, tmp_path):
    root = tmp_path / "paper2"
    variant = root / "lora_hard"
    shutil.copytree(embedding_run, variant)
    (variant / "umap.png").unlink()
    # what the card used to read from recipes/paper2_variants.py's layout is ignored now
    write_png(root / "umap.png")
    write_json(
        root / "base" / "eval_dl19" / "metrics.json", {"metrics": {"ndcg@10": 0.4}, "per_query": per_query(0.25)}
    )
    write_json(
        root / "variants.json", [{"variant": "base", "embedding_space": {"anisotropy": 0.1, "effective_rank": 30.0}}]
    )
    body = ModelCard.load(write_model_card(variant, kind="embedding", model_id="alice/lora-hard")).text
    assert "Δ vs base" not in body and "| anisotropy | 0.2100 |" in body and "umap.png" not in body
    assert not (variant / "umap.png").exists()
    # ... and what the recipe puts into the run's own record and directory is shown
    metrics = json.loads((variant / "metrics.json").read_text())
    metrics["base_comparison"] = {
        "dl19": {
            "model": BASE_ID,
            "metrics": {"ndcg@10": 0.4},
            "significance": {"ndcg@10": {"delta": 0.1, "p_t_test": 0.01, "p_randomisation": 0.02}},
        }
    }
    metrics["base_embedding_space"] = {"anisotropy": 0.1, "effective_rank": 30.0}
    write_json(variant / "metrics.json", metrics)
    write_png(variant / "umap.png")
    body = ModelCard.load(write_model_card(variant, kind="embedding", model_id="alice/lora-hard")).text
    assert (
        "| metric | bm25 (first stage) | base model | this model | Δ vs first stage | p t-test / rand. | Δ vs base |"
        in body
    )
    assert (
        "| ndcg@10 | 0.3750 | 0.4000 | **0.5250** | +0.1500 ▲ | 0.0010 / 0.0020 | +0.1000 ▲ | 0.0100 / 0.0200 |" in body
    )
    assert "the untrained base model (`alice/tiny-encoder`)" in body
    assert "| anisotropy | 0.1000 | 0.2100 |" in body and "| isotropy | – | 0.4000 |" in body
    assert "![UMAP projections of query and passage embeddings](umap.png)" in body


def test_two_logit_heads_score_with_the_logit_difference(cross_encoder_run):
    config = json.loads((cross_encoder_run / "config.json").read_text())
    config["id2label"], config["label2id"] = {"0": "no", "1": "yes"}, {"no": 0, "yes": 1}
    write_json(cross_encoder_run / "config.json", config)
    body = render_model_card(cross_encoder_run, kind="cross-encoder", model_id="alice/ce").text
    assert body.count("scores = logits[:, 1] - logits[:, 0]") == 2 and "logit difference" in body


def test_efficiency_summary_fills_hardware_throughput_and_memory(cross_encoder_run):
    metrics = json.loads((cross_encoder_run / "metrics.json").read_text())
    efficiency = {
        "device_name": "NVIDIA H100 80GB HBM3",
        "tokens_per_second": 123456.7,
        "padding_ratio": 0.037,
        "mfu": 0.41,
        "peak_gpu_memory_allocated_mib": 2048.4,
        "peak_host_memory_mib": 3100.0,
    }
    reason = "auto: bf16, native on this cuda (CUDA: NVIDIA H100 80GB HBM3 (compute capability 9.0))"
    write_json(
        cross_encoder_run / "metrics.json",
        {**metrics, "efficiency": efficiency, "world_size": 2, "precision": "bf16", "precision_reason": reason},
    )
    text = render_model_card(cross_encoder_run, kind="cross-encoder").text
    assert "| Hardware | NVIDIA H100 80GB HBM3 × 2 |" in text
    assert f"| Precision | bf16 ({reason}) |" in text and "| Resumed |" not in text
    write_json(cross_encoder_run / "metrics.json", {**metrics, "resumed_from_step": 2, "train_loss_steps": "3-4"})
    assert (
        "| Resumed | from the checkpoint at step 2; wall time covers the whole run, final training loss steps 3-4 |"
        in render_model_card(cross_encoder_run, kind="cross-encoder").text
    )
    assert (
        "| Throughput | 2.50 examples/s (Trainer, whole run); 123,457 real tokens/s, padding 3.7%, MFU 41.0% |" in text
    )
    assert "| Peak memory | GPU (allocated) 2,048 MiB, host (resident) 3,100 MiB |" in text
    assert "| Batch | 4 per device × 2 process(es) = 8 examples per optimizer step |" in text


def test_recorded_framework_versions_are_used(cross_encoder_run):
    assert (
        "Versions of the environment that generated this card"
        in render_model_card(cross_encoder_run, kind="cross-encoder").text
    )
    metrics = json.loads((cross_encoder_run / "metrics.json").read_text())
    write_json(
        cross_encoder_run / "metrics.json", {**metrics, "framework_versions": {"torch": "2.9.1", "hf-rerank": "0.1.0"}}
    )
    text = render_model_card(cross_encoder_run, kind="cross-encoder").text
    assert "Versions recorded by the training run: torch 2.9.1, hf-rerank 0.1.0." in text


def test_license_can_be_given_and_is_left_out_when_unknown(cross_encoder_run):
    assert (
        render_model_card(cross_encoder_run, kind="cross-encoder", model_id="a/b", license="mit").data.license == "mit"
    )
    metrics = json.loads((cross_encoder_run / "metrics.json").read_text())
    write_json(cross_encoder_run / "metrics.json", {**metrics, "model": "someone/unknown-model"})
    card = render_model_card(cross_encoder_run, kind="cross-encoder", model_id="a/b")
    assert card.data.license is None and "licence: not determined, the base model's applies" in card.text
    assert card.data.base_model == "someone/unknown-model"


@pytest.mark.parametrize(
    "problem, error, message",
    [
        ("missing", CardError, "no metrics.json"),
        ("not json", RecordError, "metrics.json: not valid JSON"),
        ("no eval", RecordError, r'metrics.json: field "eval": expected an object \{name: \{metric: number\}\}'),
        ("text value", RecordError, r'metrics.json: field "eval": expected an object \{name: \{metric: number\}\}'),
    ],
)
def test_bad_run_directories_are_refused(cross_encoder_run, problem, error, message):
    path = cross_encoder_run / "metrics.json"
    if problem == "missing":
        path.unlink()
    elif problem == "not json":
        path.write_text("{oops")
    else:
        metrics = json.loads(path.read_text())
        metrics["eval"] = {} if problem == "no eval" else {"dl19": {"ndcg@10": "high"}}
        write_json(path, metrics)
    with pytest.raises(error, match=message):
        write_model_card(cross_encoder_run, kind="cross-encoder")
    assert not (cross_encoder_run / "README.md").exists() and not (cross_encoder_run / "training_dynamics.png").exists()


def test_unknown_kind_is_refused(cross_encoder_run):
    with pytest.raises(CardError, match="kind must be one of cross-encoder, embedding"):
        render_model_card(cross_encoder_run, kind="reranker")


def test_the_significance_level_is_defined_once():
    from hf_rerank.evaluation import report, significance
    from hf_rerank.hub import evaluation_sections, formatting

    assert significance.ALPHA == 0.05
    assert report.ALPHA is formatting.ALPHA is evaluation_sections.ALPHA is significance.ALPHA
    assert significance.compare.__defaults__[-1] is significance.ALPHA  # compare's default alpha


def citations(text: str) -> list[str]:
    """The arXiv ids a card's citation list names, in order (each also has its BibTeX entry)."""
    section = text.split("## Citations", 1)[1]
    listed = re.findall(r"^- .*arXiv:(\d{4}\.\d{5})$", section, flags=re.MULTILINE)
    assert len(re.findall(r"^@\w+\{", section, flags=re.MULTILINE)) == len(listed)  # one BibTeX entry each
    return listed


@pytest.mark.parametrize(
    "changes, expected",
    [
        ({}, ["2506.18535", "1611.09268", "2003.07820"]),  # AdamW, MS MARCO training, dl19 evaluation
        ({"optimizer": {"name": "lion"}}, ["2506.18535", "2302.06675", "1611.09268", "2003.07820"]),
        ({"train_data": "sample-train", "eval_data": "sample-test"}, ["2506.18535"]),
        (
            {"train_data": "sample-train", "eval_data": "msmarco-passage/trec-dl-2019/judged", "corpus": "../dl20"},
            ["2506.18535", "1611.09268", "2003.07820", "2102.07662"],
        ),
    ],
)
def test_a_card_cites_only_what_its_run_used(embedding_run, changes, expected):
    metrics = json.loads((embedding_run / "metrics.json").read_text())
    if "optimizer" in changes:
        metrics["optimizer"] = {**metrics["optimizer"], **changes["optimizer"]}
    if "train_data" in changes:
        metrics["train_data"] = changes["train_data"]
    for protocol in metrics["eval_protocol"].values():
        protocol["data"] = changes.get("eval_data", protocol["data"])
        if "corpus" in protocol:
            protocol["corpus"] = [protocol["data"], changes.get("corpus", protocol["data"])]
    write_json(embedding_run / "metrics.json", metrics)
    assert citations(render_model_card(embedding_run, kind="embedding", model_id="alice/emb").text) == expected
