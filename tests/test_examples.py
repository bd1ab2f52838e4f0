"""Every example runs as a script, exits 0 and prints what it promises."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_example(*args: str) -> str:
    env = dict(os.environ, PYTHONPATH=ROOT)
    out = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True,
                         env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_hello():
    """hello.py plays three rounds of ping-pong between two processes."""
    out = run_example("examples/hello.py")
    assert out.count("('pong',") == 3
    assert out.strip().endswith("all actors stopped")


@pytest.mark.parametrize("transport", ["zmq", "pipe"])
def test_pipeline(transport):
    """pipeline.py pushes 1000 values through three actors and sums them."""
    out = run_example("examples/pipeline.py", transport)
    assert "1000 values, sum of squares 332833500 (expected 332833500)" in out
