"""Publish a training run to the Hugging Face Hub: model, card and figures in one commit per branch.

``publish(output_dir, repo_id)`` pushes what :func:`plan_upload` lists:

- ``main``: every file of the run directory except ``checkpoint-*/`` (they get branches),
  ``training_args.bin`` (a pickle of the training arguments, which can hold a Hub token), ``runs/``
  (TensorBoard) and hidden files; ``README.md`` and its figures are rendered afresh
  (:func:`~hf_rerank.hub.render.write_model_card`) so that the usage snippets load ``repo_id``;
- with ``checkpoints=True``, each ``checkpoint-<step>/`` (model, tokenizer and trainer state,
  without ``training_args.bin``) to its own branch ``checkpoint-<step>``, with a short README.

Rules it keeps:

- the repository is created private unless ``private=False``; an existing repository whose
  ``main`` (or a ``checkpoint-<step>`` branch) already holds files is refused unless
  ``allow_overwrite=True``, and then that branch's files are replaced: stale ones are deleted in
  the same commit;
- each branch gets exactly one commit; calls that fail with a transient error (HTTP 408, 429, 5xx,
  connection errors, timeouts) are retried with exponential backoff (:class:`Retry`);
- the token comes from ``HF_TOKEN`` or huggingface_hub's login (``hf auth login``) and is handed to
  huggingface_hub only: never logged, printed, put in an error message or written into a card;
  no file containing it is uploaded. A 401/403 becomes a :class:`HubAuthError` saying what to do;
- ``dry_run=DIR`` writes the exact trees that would be pushed to ``DIR/<branch>/`` and the commit
  messages to ``DIR/commits.json``, without a token or the network.

:class:`~hf_rerank.hub.push_callback.HubPushCallback` does the same during training, with :class:`HubRepo`.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from hf_rerank.data.formats import atomic_write
from hf_rerank.hub.errors import HubAuthError, PublishError
from hf_rerank.hub.render import checkpoint_card, write_model_card
from hf_rerank.hub.retry import Retry, http_status
from hf_rerank.hub.run_dir import load_record

logger = logging.getLogger("hf_rerank")


CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
REPO_ID = re.compile(r"^(?:[A-Za-z0-9][\w.-]*/)?[A-Za-z0-9][\w.-]*$")
#: Files never uploaded: the pickled training arguments (may hold a token) and TensorBoard logs.
EXCLUDED = ("training_args.bin", "runs")
#: Files of an empty, just-created repository.
INITIAL_FILES = {".gitattributes"}
#: Files scanned for the token before upload (larger ones are weights: they cannot hold it as text).
SCAN_LIMIT = 64 * 1024 * 1024
NO_TOKEN = (
    "no Hugging Face token found. Set HF_TOKEN to a token with write access "
    "(https://huggingface.co/settings/tokens) or run `hf auth login`, then publish again"
)


@dataclass
class BranchUpload:
    """One commit: ``files`` (``{path in repo: local file}``) become the whole tree of ``revision``."""

    revision: str
    message: str
    files: dict[str, Path] = field(default_factory=dict)


def directory_files(directory: Path, *, skip_checkpoints: bool) -> dict[str, Path]:
    """``{posix path: file}`` under ``directory``, minus :data:`EXCLUDED`, hidden files and (optionally) checkpoints."""
    files = {}
    for path in sorted(directory.rglob("*")):
        relative = path.relative_to(directory)
        parts = relative.parts
        if (
            not path.is_file()
            or any(part.startswith(".") for part in parts)
            or parts[-1] in EXCLUDED
            or parts[0] in EXCLUDED
        ):
            continue
        if skip_checkpoints and CHECKPOINT.match(parts[0]):
            continue
        files[relative.as_posix()] = path
    return files


def checkpoint_dirs(output_dir: Path) -> list[tuple[int, Path]]:
    """``[(step, directory)]`` of the run's ``checkpoint-<step>/`` directories, by step."""
    found = [(int(m.group(1)), p) for p in output_dir.iterdir() if p.is_dir() and (m := CHECKPOINT.match(p.name))]
    return sorted(found)


WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "adapter_model.safetensors")


def check_checkpoint_complete(checkpoint: Path, step: int) -> None:
    """Raise :class:`PublishError` unless ``checkpoint`` is one the Trainer finished writing: it has
    weights and a ``trainer_state.json`` (written last) that parses and names ``step``. A run
    killed while saving leaves a checkpoint without one."""
    state_file = checkpoint / "trainer_state.json"
    try:
        state = json.loads(state_file.read_text())
    except (OSError, ValueError):
        raise PublishError(
            f"{checkpoint}: incomplete checkpoint (no readable trainer_state.json: the run stopped while "
            "saving it); delete it or publish without --checkpoints"
        ) from None
    if not isinstance(state, dict) or state.get("global_step") != step:
        raise PublishError(
            f"{state_file}: global_step {state.get('global_step') if isinstance(state, dict) else None!r} "
            f"does not match the directory's step {step}; the checkpoint is not this run's"
        )
    if not any((checkpoint / name).is_file() for name in WEIGHT_FILES):
        raise PublishError(f"{checkpoint}: incomplete checkpoint (no weights: none of {', '.join(WEIGHT_FILES)})")


def checkpoint_upload(checkpoint: Path, step: int, repo_id: str, kind: str, staging: Path) -> BranchUpload:
    """The branch ``checkpoint-<step>``: the checkpoint's files and its README (written under ``staging``);
    an incomplete checkpoint is refused (:func:`check_checkpoint_complete`)."""
    check_checkpoint_complete(checkpoint, step)
    readme = staging / f"checkpoint-{step}" / "README.md"
    with atomic_write(readme) as handle:
        handle.write(checkpoint_card(repo_id, step, kind=kind))
    files = {**directory_files(checkpoint, skip_checkpoints=False), "README.md": readme}
    return BranchUpload(f"checkpoint-{step}", f"hf-rerank: checkpoint at step {step}", files)


def plan_upload(
    output_dir: str | Path,
    repo_id: str,
    staging: str | Path,
    *,
    kind: str | None = None,
    checkpoints: bool = False,
    license: str | None = None,
    language: str | list[str] = "en",
) -> list[BranchUpload]:
    """What :func:`publish` pushes (see the module docstring), checkpoint branches first, ``main`` last.

    The card and figures are rendered into ``staging``; the run directory is not modified.
    """
    output_dir, staging = Path(output_dir), Path(staging)
    if not output_dir.is_dir():
        raise PublishError(f"{output_dir}: not a directory")
    record = load_record(output_dir)
    kind = kind or record.kind
    write_model_card(output_dir, kind=kind, model_id=repo_id, license=license, language=language, into=staging / "main")
    main = {
        **directory_files(output_dir, skip_checkpoints=True),
        **directory_files(staging / "main", skip_checkpoints=False),
    }
    first = next(iter(record.eval))
    metric, value = next(iter(record.eval[first].items()))
    uploads = (
        [checkpoint_upload(path, step, repo_id, kind, staging) for step, path in checkpoint_dirs(output_dir)]
        if checkpoints
        else []
    )
    uploads.append(
        BranchUpload("main", f"hf-rerank: {kind} {output_dir.resolve().name} ({first} {metric} {value:.4f})", main)
    )
    return uploads


def check_no_token(uploads: list[BranchUpload], token: str | None) -> None:
    """Refuse to upload any file that contains ``token`` (the message names the file, not the token)."""
    if not token:
        return
    needle = token.encode()
    for upload in uploads:
        for path_in_repo, path in upload.files.items():
            if path.stat().st_size <= SCAN_LIMIT and needle in path.read_bytes():
                raise PublishError(
                    f"{path} ({upload.revision}:{path_in_repo}) contains your Hugging Face token; "
                    "refusing to publish it. Remove the token from that file"
                )


def write_tree(uploads: list[BranchUpload], directory: str | Path) -> Path:
    """The dry run: each branch's files under ``directory/<branch>/``, the commits in ``directory/commits.json``."""
    directory = Path(directory)
    if directory.exists() and any(directory.iterdir()):
        raise PublishError(f"--dry-run {directory}: directory is not empty; give a new or empty directory")
    for upload in uploads:
        for path_in_repo, path in upload.files.items():
            with atomic_write(directory / upload.revision / path_in_repo, "wb") as handle, path.open("rb") as source:
                shutil.copyfileobj(source, handle)
    with atomic_write(directory / "commits.json") as handle:
        json.dump(
            [{"revision": u.revision, "message": u.message, "files": sorted(u.files)} for u in uploads],
            handle,
            indent=2,
        )
    return directory


class HubRepo:
    """A Hub model repository and the calls hf-rerank makes on it (each through :class:`Retry`).

    Args:
        repo_id: ``owner/name``, or ``name`` in the token's own namespace.
        private: visibility when the repository is created (an existing one keeps its own).
        allow_overwrite: replace the files of branches that already hold some.
        token: a token; default ``HF_TOKEN`` or the saved login (huggingface_hub's ``get_token``).
        endpoint: the Hub URL; default ``HF_ENDPOINT`` or https://huggingface.co.
    """

    def __init__(
        self,
        repo_id: str,
        *,
        private: bool = True,
        allow_overwrite: bool = False,
        token: str | None = None,
        endpoint: str | None = None,
        retry: Retry = Retry(),
    ):
        from huggingface_hub import HfApi, get_token

        if not REPO_ID.match(repo_id):
            raise PublishError(f"{repo_id!r} is not a Hub repository id (owner/name)")
        if not (token or get_token()):
            raise HubAuthError(NO_TOKEN)
        self.api = HfApi(endpoint=endpoint, token=token or get_token())
        self.retry, self.private, self.allow_overwrite = retry, private, allow_overwrite
        user = self.retry.call("checking the token", self.api.whoami)["name"]
        self.repo_id = repo_id if "/" in repo_id else f"{user}/{repo_id}"
        self.fresh: set[str] = set()  # branches that held nothing when this session first saw them

    @property
    def url(self) -> str:
        return f"{self.api.endpoint}/{self.repo_id}"

    def branch_files(self, revision: str) -> list[str] | None:
        """Files on ``revision``, None when the branch does not exist."""
        from huggingface_hub.errors import RevisionNotFoundError

        try:
            return self.retry.call(
                f"listing {self.repo_id}@{revision}", self.api.list_repo_files, self.repo_id, revision=revision
            )
        except RevisionNotFoundError:
            return None

    def claim(self, revision: str, files: list[str] | None) -> None:
        """Record that ``revision`` may be written: empty, or ``allow_overwrite``; else refuse."""
        if files is None or set(files) <= INITIAL_FILES:
            self.fresh.add(revision)
        elif revision not in self.fresh and not self.allow_overwrite:
            raise PublishError(
                f"{self.repo_id} already has {len(files)} file(s) on branch {revision!r}; "
                "pass --allow-overwrite to replace them (its stale files are then deleted)"
            )

    def prepare(self) -> None:
        """Create the repository (private unless told otherwise), or check that ``main`` may be written."""
        from huggingface_hub.errors import HfHubHTTPError

        try:
            self.retry.call(
                f"creating {self.repo_id}", self.api.create_repo, self.repo_id, private=self.private, exist_ok=False
            )
            logger.info("created %s repository %s", "private" if self.private else "public", self.url)
            self.fresh.add("main")
        except HfHubHTTPError as error:
            if http_status(error) != 409:
                raise
            self.claim("main", self.branch_files("main"))
            logger.info("publishing to the existing repository %s", self.url)

    def push(self, upload: BranchUpload) -> str:
        """Make ``upload.files`` the tree of ``upload.revision`` in one commit; returns the commit id."""
        from huggingface_hub import CommitOperationAdd, CommitOperationDelete

        existing = self.branch_files(upload.revision)
        self.claim(upload.revision, existing)
        if existing is None:
            self.retry.call(
                f"creating branch {upload.revision}",
                self.api.create_branch,
                self.repo_id,
                branch=upload.revision,
                exist_ok=True,
            )
            existing = self.branch_files(upload.revision) or []
        operations = [
            CommitOperationAdd(path_in_repo=name, path_or_fileobj=str(path)) for name, path in upload.files.items()
        ]
        operations += [
            CommitOperationDelete(path_in_repo=name)
            for name in existing
            if name not in upload.files and name not in INITIAL_FILES
        ]
        commit = self.retry.call(
            f"committing to {self.repo_id}@{upload.revision}",
            self.api.create_commit,
            self.repo_id,
            operations=operations,
            commit_message=upload.message,
            revision=upload.revision,
        )
        logger.info(
            "pushed %d file(s) to %s@%s (commit %s)", len(upload.files), self.repo_id, upload.revision, commit.oid[:10]
        )
        return commit.oid


@dataclass
class PublishResult:
    """What :func:`publish` did: the repository, its URL and ``{branch: commit id}`` (empty for a dry run)."""

    repo_id: str
    url: str
    commits: dict[str, str]
    uploads: list[BranchUpload]


def publish(
    output_dir: str | Path,
    repo_id: str,
    *,
    private: bool = True,
    allow_overwrite: bool = False,
    checkpoints: bool = False,
    dry_run: str | Path | None = None,
    kind: str | None = None,
    license: str | None = None,
    language: str | list[str] = "en",
    token: str | None = None,
    endpoint: str | None = None,
    retry: Retry = Retry(),
) -> PublishResult:
    """Publish a run directory to ``repo_id`` (see the module docstring for what and how).

    Raises:
        PublishError: refused overwrite, persistent transient errors, a file holding the token,
            a non-empty dry-run directory, ``HF_HUB_OFFLINE`` set; :class:`HubAuthError` for a missing or refused token;
            :class:`~hf_rerank.hub.errors.CardError` when the run directory has no ``metrics.json``,
            :class:`~hf_rerank.training.record.RecordError` when it is not a valid run record.
    """
    from huggingface_hub import constants, get_token

    with tempfile.TemporaryDirectory(prefix="hf-rerank-publish-") as staging:
        if dry_run is not None:
            uploads = plan_upload(
                output_dir, repo_id, staging, kind=kind, checkpoints=checkpoints, license=license, language=language
            )
            check_no_token(uploads, token or get_token())
            write_tree(uploads, dry_run)
            return PublishResult(repo_id, "", {}, uploads)
        if constants.HF_HUB_OFFLINE:  # huggingface_hub would retry its requests for about 30 s first
            raise PublishError(
                "HF_HUB_OFFLINE is set, so nothing can be published: unset it, or pass --dry-run DIR "
                "to write what would be pushed"
            )
        repo = HubRepo(
            repo_id, private=private, allow_overwrite=allow_overwrite, token=token, endpoint=endpoint, retry=retry
        )
        uploads = plan_upload(
            output_dir, repo.repo_id, staging, kind=kind, checkpoints=checkpoints, license=license, language=language
        )
        check_no_token(uploads, token or get_token())
        repo.prepare()
        for upload in uploads:  # refuse before the first commit, not half-way
            repo.claim(upload.revision, repo.branch_files(upload.revision))
        commits = {upload.revision: repo.push(upload) for upload in uploads}
        return PublishResult(repo.repo_id, repo.url, commits, uploads)
