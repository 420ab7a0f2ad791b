"""Regenerate the model cards of this repository's offline recipes into ``model_cards/``.

    python recipes/render_model_cards.py                      # from the repository root
    python recipes/render_model_cards.py --configs recipes/configs --into model_cards --license apache-2.0

Reads every offline recipe config in ``--configs`` (``offline_*.yaml``, ``*_offline.yaml``); a config
names its run's ``output_dir`` (relative to where this runs), and a config with ``variants`` (as
``recipes/paper2_variants.py`` takes) one run per variant, ``OUTPUT_DIR/<variant>``. For each run
that has a ``metrics.json``, writes ``--into/<config name>[-<variant>]/`` with ``README.md`` and its
figures (:func:`hf_rerank.hub.render.write_model_card`, as ``hf-rerank card`` does for one run).
Runs not made yet are listed on stderr and make the exit status 1.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from hf_rerank.cli import add_card_options
from hf_rerank.hub.render import write_model_card
from hf_rerank.hub.run_dir import load_record


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--configs", type=Path, default=Path("recipes/configs"), help="the recipe configs (default: recipes/configs)"
    )
    parser.add_argument("--into", type=Path, default=Path("model_cards"), help="where to write (default: model_cards)")
    add_card_options(parser)
    return parser


def offline_runs(configs: Path) -> list[tuple[str, Path]]:
    """``[(card name, run directory)]`` of the offline recipe configs in ``configs`` (``offline_*.yaml``,
    ``*_offline.yaml``); a config with ``variants`` gives one run per variant (``OUTPUT_DIR/<variant>``)."""
    runs = []
    for path in sorted(configs.glob("*.yaml")):
        if not (path.stem.startswith("offline_") or path.stem.endswith("_offline")):
            continue
        config = yaml.safe_load(path.read_text()) or {}
        if "output_dir" not in config:
            raise SystemExit(f"{path}: no output_dir, so no run to make a card of")
        output_dir = Path(config["output_dir"])
        variants = config.get("variants") or {}
        runs += (
            [(f"{path.stem}-{name}", output_dir / name) for name in variants] if variants else [(path.stem, output_dir)]
        )
    if not runs:
        raise SystemExit(f"{configs}: no offline configs (offline_*.yaml, *_offline.yaml)")
    return runs


def main(argv: list[str] | None = None) -> int:
    """Write the cards (see the module docstring); returns the exit status: 0, or 1 when a run is missing."""
    args = make_parser().parse_args(argv)
    missing = []
    for name, output_dir in offline_runs(args.configs):
        if not (output_dir / "metrics.json").is_file():
            missing.append(f"{name}: {output_dir} has no metrics.json (run its recipe first)")
            continue
        kind = load_record(output_dir).kind if args.kind == "auto" else args.kind
        path = write_model_card(
            output_dir, kind=kind, license=args.license, language=args.language, into=args.into / name
        )
        print(f"wrote {path}")
    for line in missing:
        print(f"render_model_cards: skipped {line}", file=sys.stderr)
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
