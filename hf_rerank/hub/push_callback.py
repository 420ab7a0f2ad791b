"""Publishing during training: :class:`HubSettings` (from the Trainer's ``push_to_hub`` arguments) and
:class:`HubPushCallback`, which prepares the repository when training starts (so a refused overwrite
fails before hours of training, not after) and, with ``strategy="checkpoint"``, pushes each saved
checkpoint to its branch ``checkpoint-<step>`` in the background (:mod:`hf_rerank.hub.publish`).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from transformers import TrainerCallback

from hf_rerank.hub.publish import BranchUpload, HubRepo, checkpoint_upload
from hf_rerank.hub.retry import Retry

logger = logging.getLogger("hf_rerank")


@dataclass(frozen=True)
class HubSettings:
    """Where and how a training run is published (from the Trainer's ``push_to_hub`` arguments).

    ``strategy``: ``end`` (``main`` once, after training) or ``checkpoint`` (also every saved
    checkpoint, to its branch ``checkpoint-<step>``, as it is saved).
    """

    repo_id: str
    private: bool = True
    strategy: str = "end"
    allow_overwrite: bool = False

    @classmethod
    def from_training_args(cls, args) -> HubSettings | None:
        """Read ``push_to_hub``, ``hub_model_id``, ``hub_strategy``, ``hub_private_repo`` and
        ``hub_allow_overwrite`` (None without ``push_to_hub``).

        ``hub_strategy``: ``end`` and transformers' default ``every_save`` publish ``main`` once at
        the end (hf-rerank never replaces ``main`` mid-training); ``checkpoint`` and
        ``all_checkpoints`` also push each checkpoint to its branch. ``hub_private_repo``
        unset means private. ``hub_token`` is refused with or without ``push_to_hub``: the
        Trainer pickles its arguments into ``training_args.bin``, so a token there would be saved
        with every checkpoint.
        """
        if args.hub_token:
            raise ValueError(
                "--hub_token is not accepted, with or without --push_to_hub (it would be saved in "
                "training_args.bin with every checkpoint): set HF_TOKEN or run `hf auth login` instead"
            )
        if not args.push_to_hub:
            return None
        if not args.hub_model_id:
            raise ValueError("--push_to_hub needs --hub_model_id OWNER/NAME")
        strategy = str(getattr(args.hub_strategy, "value", args.hub_strategy))
        if strategy not in ("end", "every_save", "checkpoint", "all_checkpoints"):
            raise ValueError(f"hub_strategy must be end or checkpoint, got {strategy!r}")
        settings = cls(
            repo_id=args.hub_model_id,
            private=True if args.hub_private_repo is None else bool(args.hub_private_repo),
            strategy="checkpoint" if strategy in ("checkpoint", "all_checkpoints") else "end",
            allow_overwrite=bool(getattr(args, "hub_allow_overwrite", False)),
        )
        if settings.strategy == "checkpoint" and str(getattr(args.save_strategy, "value", args.save_strategy)) == "no":
            logger.warning(
                "hub_strategy %s pushes each saved checkpoint, but save_strategy is 'no': only the final "
                "model will be published",
                strategy,
            )
        return settings


class HubPushCallback(TrainerCallback):
    """Publishing hooks for a ``transformers.Trainer`` (on the main process only).

    - ``on_train_begin``: create the repository or check that it may be written (fails early);
    - ``on_save`` (``strategy="checkpoint"``): push ``checkpoint-<step>/`` to its branch in a
      background thread; the files are hard-linked (or copied) first, so a checkpoint rotated
      away by ``save_total_limit`` meanwhile still uploads whole;
    - ``on_train_end``: wait for the pushes; failures are logged and kept in ``errors``.

    The final model goes to ``main`` with :func:`publish` once the run has written its metrics
    and card.
    """

    def __init__(
        self,
        settings: HubSettings,
        *,
        kind: str = "cross-encoder",
        token: str | None = None,
        endpoint: str | None = None,
        retry: Retry = Retry(),
    ):
        self.settings, self.kind, self.token, self.endpoint, self.retry = settings, kind, token, endpoint, retry
        self.repo: HubRepo | None = None
        self.pending: list[tuple[int, Future]] = []
        self.errors: list[str] = []
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hf-rerank-hub")

    def on_train_begin(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            self.repo = HubRepo(
                self.settings.repo_id,
                private=self.settings.private,
                allow_overwrite=self.settings.allow_overwrite,
                token=self.token,
                endpoint=self.endpoint,
                retry=self.retry,
            )
            self.repo.prepare()

    def on_save(self, args, state, control, **kwargs):
        if not state.is_world_process_zero or self.settings.strategy != "checkpoint":
            return
        step = state.global_step
        staging = Path(tempfile.mkdtemp(prefix=".hub-staging-", dir=args.output_dir))
        snapshot = staging / "files"
        shutil.copytree(Path(args.output_dir) / f"checkpoint-{step}", snapshot, copy_function=link_or_copy)
        upload = checkpoint_upload(snapshot, step, self.repo.repo_id, self.kind, staging)
        self.pending.append((step, self.executor.submit(self._push, upload, staging)))

    def _push(self, upload: BranchUpload, staging: Path) -> str:
        try:
            return self.repo.push(upload)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def wait(self) -> list[str]:
        """Wait for every pending push; returns (and logs) the failures."""
        for step, future in self.pending:
            try:
                future.result()
            except Exception as error:
                self.errors.append(f"checkpoint-{step}: {error}")
                logger.error("pushing checkpoint-%d to %s failed: %s", step, self.settings.repo_id, error)
        self.pending = []
        return self.errors

    def on_train_end(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            self.wait()


def link_or_copy(source: str, destination: str) -> None:
    """Hard-link ``source`` to ``destination`` (same filesystem), else copy it."""
    try:
        os.link(source, destination)
    except OSError:
        shutil.copy2(source, destination)
