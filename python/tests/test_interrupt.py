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
queries = rng.uniform(0, 100, (2_000_000, 3))
print("ready", flush=True)
while True:
    tree.{call}
"""


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child process is POSIX")
@pytest.mark.parametrize("call", ["query(queries, k=32)", "query_ball_point(queries, r=3.0, return_length=True)"])
def test_sigint_interrupts_a_long_query(call):
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD.replace("{call}", call)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout.readline().strip() == "ready"
        time.sleep(1.0)  # inside the first long call
        child.send_signal(signal.SIGINT)
        # A liveness bound, not a speed figure: the call checks for signals between chunks.
        _, stderr = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode != 0
    assert "KeyboardInterrupt" in stderr, stderr
    assert "panicked" not in stderr, stderr
