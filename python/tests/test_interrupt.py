"""Ctrl-C (SIGINT) interrupts a long call: KeyboardInterrupt, not a hang or a crash."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

CHILD = r"""
import sys
import numpy as np
import pointpipe
rng = np.random.default_rng(0)
tree = pointpipe.KDTree(rng.uniform(0, 100, (200_000, 3)))
queries = rng.uniform(0, 100, ({n}, 3))
print("ready", flush=True)
tree.{call}  # one call of several seconds: only an interrupt inside it stops it
print("completed", flush=True)
"""


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child process is POSIX")
@pytest.mark.parametrize(
    "call, n",
    [("query(queries, k=8)", 6_000_000), ("query_ball_point(queries, r=3.0, return_length=True)", 10_000_000)],
)
def test_sigint_interrupts_a_long_query(call, n):
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD.replace("{call}", call).replace("{n}", str(n))],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout.readline().strip() == "ready"
        time.sleep(1.0)  # inside the long call
        child.send_signal(signal.SIGINT)
        stdout, stderr = child.communicate(timeout=600)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    # The call stopped part-way (it checks for signals between chunks of queries).
    assert "completed" not in stdout
    assert child.returncode != 0
    assert "KeyboardInterrupt" in stderr, stderr
    assert "panicked" not in stderr, stderr
