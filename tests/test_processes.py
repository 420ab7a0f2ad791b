"""tests/processes.py: a child that outlives its time-out takes its whole process group with it."""

import os
import sys
import time

import pytest

from tests import processes

# A parent that starts a grandchild (as torchrun starts its workers), prints its pid, then hangs.
SPAWNER = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
print(child.pid, flush=True)
time.sleep(600)
"""


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        with open(f"/proc/{pid}/stat") as handle:  # a zombie is dead, only not yet reaped by its parent
            return handle.read().split(")")[-1].split()[0] != "Z"
    except (ProcessLookupError, FileNotFoundError):
        return False


def test_time_out_kills_the_grandchildren_too(tmp_path):
    process = processes.start([sys.executable, "-c", SPAWNER])
    grandchild = int(process.stdout.readline())
    assert alive(grandchild)
    with pytest.raises(pytest.fail.Exception, match="ran past 1 s; its process group was killed"):
        processes.finish(process, timeout=1)
    deadline = time.monotonic() + 10
    while alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(grandchild)


def test_run_returns_what_the_child_printed():
    done = processes.run(
        [sys.executable, "-c", "import sys; print(sys.stdin.read().upper()); sys.exit(3)"], timeout=60, input="abc"
    )
    assert (done.returncode, done.stdout.strip()) == (3, "ABC")
