"""Arguments from a YAML config plus command-line overrides, through ``HfArgumentParser``.

``parse_args(parser, argv)``: if ``argv`` has ``--config FILE``, the YAML mapping in FILE gives
the defaults (keys are dataclass field names), and every other flag in ``argv`` overrides them:
``--config recipes/configs/offline_minilm_dl20_lion.yaml --max_steps 20 --seed 1``.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from transformers import HfArgumentParser

from hf_rerank.errors import UsageError


def config_to_argv(config: dict, source: str) -> list[str]:
    """``{"max_steps": 20, "precision": "auto", "train_runs": ["bm25"]}`` -> ``["--max_steps", "20", ...]``."""
    argv: list[str] = []
    for key, value in config.items():
        if value is None:
            continue
        if isinstance(value, dict):
            raise UsageError(f"{source}: {key!r} is a mapping; give nested options as a JSON string")
        argv.append(f"--{key}")
        argv.extend(str(item) for item in (value if isinstance(value, list) else [value]))
    return argv


def parse_args(parser: HfArgumentParser, argv: list[str]) -> tuple:
    """The parser's dataclasses from ``--config FILE`` (optional) and the other flags of ``argv``."""
    argv = list(argv)
    config_argv: list[str] = []
    if "--config" in argv:
        at = argv.index("--config")
        if at + 1 >= len(argv):
            raise SystemExit("--config needs a YAML file")
        path = Path(argv[at + 1])
        del argv[at : at + 2]
        if not path.is_file():
            raise SystemExit(f"--config {path}: no such file")
        config = yaml.safe_load(path.read_text()) or {}
        if not isinstance(config, dict):
            raise SystemExit(f"{path}: expected a mapping of argument names to values")
        known = {action.dest for action in parser._actions}
        unknown = sorted(set(config) - known)
        if unknown:
            raise SystemExit(f"{path}: unknown argument(s) {', '.join(unknown)}")
        config_argv = config_to_argv(config, str(path))
    try:
        return parser.parse_args_into_dataclasses(args=config_argv + argv)
    except ValueError as exc:  # an argument refused by validation (precision, hub token, ...), before anything loads
        raise SystemExit(f"error: {exc}") from None
