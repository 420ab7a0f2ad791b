"""Child processes for tests: each in its own process group, the whole group killed on time-out.

``subprocess.run(..., timeout=...)`` kills only the process it started: ``torchrun``'s workers (or
any grandchild) would live on at 100% CPU. :func:`run` and :func:`start` put the child in a new
session (its own process group) so :func:`stop` can kill every process in it.
"""

from __future__ import annotations

import os
import signal
import subprocess

import pytest


def start(command: list[str], **kwargs) -> subprocess.Popen:
    """``subprocess.Popen(command, ...)`` in a new process group, stdout/stderr captured as text."""
    return subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True, **kwargs
    )


def stop(process: subprocess.Popen) -> None:
    """Kill ``process``'s whole group (it and every process it started), then reap it."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    if process.returncode is None:
        process.communicate()


def finish(process: subprocess.Popen, timeout: float, input: str | None = None) -> subprocess.CompletedProcess:
    """Wait for ``process`` up to ``timeout`` seconds; on time-out kill its group and fail the test
    with the end of what it printed. The group is killed after a normal exit too (no orphans)."""
    try:
        out, err = process.communicate(input=input, timeout=timeout)
    except subprocess.TimeoutExpired:
        stop(process)
        pytest.fail(f"{' '.join(map(str, process.args))[:200]} ran past {timeout:g} s; its process group was killed")
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def run(command: list[str], timeout: float, input: str | None = None, **kwargs) -> subprocess.CompletedProcess:
    """Like ``subprocess.run(command, capture_output=True, text=True, timeout=timeout)``, but the
    child runs in its own process group, which is killed on time-out (and the test fails)."""
    if input is not None:
        kwargs["stdin"] = subprocess.PIPE
    return finish(start(command, **kwargs), timeout, input)
