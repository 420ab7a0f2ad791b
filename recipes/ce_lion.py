"""Fine-tune a cross-encoder reranker with Lion or AdamW: the first seed paper's system (arXiv 2506.18297).

    accelerate launch recipes/ce_lion.py                      # the paper's MiniLM-L12 + Lion on MS MARCO
    accelerate launch recipes/ce_lion.py --config recipes/configs/paper_modernbert_lion.yaml
    python recipes/ce_lion.py --config recipes/configs/offline_minilm_dl20_lion.yaml --max_steps 20

With no arguments it runs recipes/configs/paper_minilm_lion.yaml. Any argument of the config can
be overridden after --config. Writes the final checkpoint, log_history.json, eval_<name>/ and
metrics.json to --output_dir.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from transformers import HfArgumentParser

from hf_rerank.data.sources import SourceUnavailableError
from hf_rerank.training.arguments import CrossEncoderTrainingArguments
from hf_rerank.training.config import parse_args
from hf_rerank.training.run_cross_encoder import DataArguments, ModelArguments, train_cross_encoder

CONFIGS = Path(__file__).resolve().parent / "configs"
DEFAULT_CONFIG = CONFIGS / "paper_minilm_lion.yaml"
OFFLINE_CONFIG = CONFIGS / "offline_minilm_dl20_lion.yaml"


def make_parser() -> HfArgumentParser:
    return HfArgumentParser(
        (ModelArguments, DataArguments, CrossEncoderTrainingArguments),
        description=__doc__,
        epilog="Configs: " + ", ".join(sorted(p.name for p in CONFIGS.glob("*.yaml"))),
    )


def main(argv: list[str] | None = None) -> dict:
    argv = sys.argv[1:] if argv is None else argv
    if "--config" not in argv and not any(a in ("-h", "--help") for a in argv):
        argv = ["--config", str(DEFAULT_CONFIG), *argv]
    logging.basicConfig(level=logging.INFO, format="%(asctime)s hf_rerank: %(message)s")
    model_args, data_args, training_args = parse_args(make_parser(), argv)
    try:
        return train_cross_encoder(model_args, data_args, training_args)
    except SourceUnavailableError as error:
        offline_config = (
            OFFLINE_CONFIG.relative_to(Path.cwd()) if OFFLINE_CONFIG.is_relative_to(Path.cwd()) else OFFLINE_CONFIG
        )
        raise SystemExit(
            f"{error}\n\nMS MARCO cannot be reached from here. Train offline on TREC DL 2020 instead:\n"
            f"  accelerate launch recipes/ce_lion.py --config {offline_config}"
        ) from None


if __name__ == "__main__":
    main()
