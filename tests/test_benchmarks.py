"""The benchmark command runs end to end (figures only; no timing assertions)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

BENCHMARKS = [
    "raw_zmq_push_pull",
    "raw_zmq_dealer_router",
    "mp_queue",
    "mp_pipe",
    *(f"actors_{kind}_{transport}" for transport in ("zmq", "pipe")
      for kind in ("tell_main", "tell_actor", "ask")),
    *(f"restart_{kind}_{transport}" for transport in ("zmq", "pipe")
      for kind in ("warm", "cold", "burst")),
]
RESTARTS = [key for key in BENCHMARKS if key.startswith("restart_")]


@pytest.mark.timeout(120)
def test_quick_run_reports_every_benchmark(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--quick", "--repeat", "1", "--json", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=110)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json.loads(out.read_text())
    results = data["benchmarks"]
    assert sorted(results) == sorted(BENCHMARKS)
    for key in BENCHMARKS:
        figure = results[key]["median"]
        assert isinstance(figure, float) and figure > 0, (key, figure)
        assert results[key]["samples"] and all(s > 0 for s in results[key]["samples"]), key
    for key in RESTARTS:
        assert results[key]["unit"] == "ms"
        assert results[key]["p99"] >= results[key]["median"] > 0, key
        assert len(results[key]["samples"]) >= 3, key  # quick: 5 (burst 3) restarts
    # 10 ratios to floors, 2 cold/warm restart ratios, 2 warm restart p50 limits
    assert len(data["checks"]) == 14
    for check in data["checks"]:
        assert check["benchmark"] in results
        if check["floor"] is None:
            assert check["value"] > 0 and check["unit"] == "ms"
        else:
            assert check["floor"] in results and check["ratio"] > 0
    # The printed table names every benchmark.
    for label in ("PUSH/PULL", "DEALER/ROUTER", "mp.Queue", "mp.Pipe", "tell main->actor",
                  "tell actor->actor", "ask round trip", "restart, warm spare",
                  "restart, cold spawn", "restart, back-to-back"):
        assert label in proc.stdout
