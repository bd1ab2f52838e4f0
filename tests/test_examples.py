"""Every example runs as a script, exits 0 and prints what it promises."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_example(*args: str, cwd: str = ROOT) -> str:
    env = dict(os.environ, PYTHONPATH=ROOT)
    out = subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True,
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


@pytest.mark.parametrize("transport", ["zmq", "pipe"])
def test_supervised_workers(transport):
    """supervised_workers.py answers every request while its workers crash
    (exceptions, os._exit, SIGKILL), one restart per crash, and draws the tree."""
    out = run_example("examples/supervised_workers.py", transport)
    client = re.search(r"client: (\d+) requests, (\d+) answered, (\d+) retries", out)
    assert client is not None, out
    assert int(client[1]) == int(client[2]) >= 200
    chaos = re.search(r"chaos: (\d+) crashes \((\d+) exceptions, (\d+) os._exit, (\d+) SIGKILL\)",
                      out)
    assert chaos is not None, out
    assert int(chaos[1]) >= 1 and int(chaos[2]) >= 1 and int(chaos[3]) >= 1 and int(chaos[4]) >= 1
    restarts = re.search(r"restarts: pool (\d+) \(workers\), pair table (\d+) cache (\d+)", out)
    assert restarts is not None, out
    pool, table, cache = map(int, restarts.groups())
    assert pool + table == int(chaos[1])  # each crash: exactly one restart
    assert table >= 1 and cache == table  # one_for_all: the cache restarts with the table
    drawing = out.split("final tree:\n", 1)[1]
    for name, kind in [("app", "App"), ("pool", "Pool"), ("w1", "Worker"), ("w4", "Worker"),
                       ("pair", "Pair"), ("table", "Table"), ("cache", "Cache"),
                       ("chaos", "Chaos")]:
        assert f"── {name} ({kind}) pid " in drawing, drawing
    assert "│   ├── w1 (Worker)" in drawing  # nested one level under pool
    assert out.strip().endswith("every request answered")


def doc_program(filename: str) -> str:
    """The code block of docs/supervision.md that starts with ``# filename``."""
    with open(os.path.join(ROOT, "docs", "supervision.md")) as f:
        text = f.read()
    blocks = [b for b in re.findall(r"```python\n(.*?)```", text, re.DOTALL)
              if b.startswith(f"# {filename}\n")]
    assert len(blocks) == 1, f"docs/supervision.md has {len(blocks)} blocks for {filename}"
    return blocks[0]


def test_supervision_doc_first_tree(tmp_path):
    """The first program of docs/supervision.md prints what the page says."""
    (tmp_path / "first_tree.py").write_text(doc_program("first_tree.py"))
    out = run_example("first_tree.py", cwd=str(tmp_path))
    assert out.splitlines() == [
        "w1 running 1 crashed: RuntimeError('an exception during a tell is a crash')",
        "w2 running 0 None",
        "w3 running 0 None",
    ]


def test_supervision_doc_top_fails(tmp_path):
    """The top_fails.py program of docs/supervision.md: the top gives up,
    join() raises ActorError, the program goes on to its end."""
    (tmp_path / "top_fails.py").write_text(doc_program("top_fails.py"))
    out = run_example("top_fails.py", cwd=str(tmp_path))
    assert out.startswith("the tree failed: the top-level supervisor top failed")
    assert "reached its restart intensity (0 in 5.0 s)" in out
