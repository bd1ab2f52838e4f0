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
    "raw_zmq_dealer_router_busy",
    "mp_queue",
    "mp_pipe",
    "mp_pipe_busy",
    *(f"actors_{kind}_{transport}" for transport in ("zmq", "pipe")
      for kind in ("tell_main", "tell_actor", "ask", "ask_no_busy")),
    *(f"restart_{kind}_{transport}" for transport in ("zmq", "pipe")
      for kind in ("warm", "cold", "burst", "fork")),
]
RESTARTS = [key for key in BENCHMARKS if key.startswith("restart_")]
# spawns of unsupervised actors: one at a time in a warm system, and bursts of 50
SPAWNS = [f"spawn_{kind}_{transport}" for transport in ("zmq", "pipe")
          for kind in ("warm", "burst")]
BENCHMARKS += SPAWNS
# the deadlock detector's overhead: ask latency with detection on and off
PAIRS = [f"deadlock_{kind}_{transport}" for transport in ("zmq", "pipe")
         for kind in ("main", "relay")]
DEADLOCK = [f"{pair}_{mode}" for pair in PAIRS for mode in ("on", "off")]
BENCHMARKS += DEADLOCK
DEADLOCK_LABELS = ("deadlock detector overhead", "ask main->actor",
                   "ask actor->actor (in a handler)")


def run_quick(tmp_path: Path, *flags: str) -> tuple[subprocess.CompletedProcess[str], dict]:
    out = tmp_path / "results.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--quick", "--repeat", "1", "--json", str(out),
         *flags],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=110)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc, json.loads(out.read_text())


def check_deadlock(data: dict) -> None:
    """The on/off figures and ratios of the deadlock detector benchmark."""
    results = data["benchmarks"]
    for key in DEADLOCK:
        entry = results[key]
        assert entry["unit"] == "us", key
        assert entry["p99"] >= entry["p50"] > 0 and entry["mean"] > 0, key
        assert entry["median"] == entry["p50"], key  # the check compares p50s
        # quick, one round: 4 blocks of 125 asks per side
        assert len(entry["samples"]) == 4 and entry["asks"] == 500, key
        assert all(s > 0 for s in entry["block_means"]), key
    assert sorted(data["deadlock"]) == sorted(PAIRS)
    for pair, summary in data["deadlock"].items():
        for name in ("ratio_p50", "ratio_p99", "ratio_mean", "paired_ratio_median",
                     "paired_ratio_min", "paired_ratio_max"):
            assert isinstance(summary[name], float) and summary[name] > 0, (pair, name)
        assert summary["paired_ratio_min"] <= summary["paired_ratio_median"] \
            <= summary["paired_ratio_max"], pair
        assert len(summary["paired_ratios"]) == 4, pair  # ABBA BAAB: 4 pairs of blocks
        assert summary["asks_per_side"] == 500, pair
    checks = [c for c in data["checks"] if c["benchmark"] in DEADLOCK]
    assert sorted(c["benchmark"] for c in checks) == sorted(f"{p}_on" for p in PAIRS)
    for check in checks:
        assert check["floor"] == check["benchmark"][:-len("on")] + "off"
        assert check["op"] == "<=" and check["target"] == 1.1 and check["ratio"] > 0


@pytest.mark.timeout(120)
def test_quick_run_reports_every_benchmark(tmp_path: Path) -> None:
    proc, data = run_quick(tmp_path)
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
    for key in SPAWNS:
        assert results[key]["unit"] == "ms"
        assert results[key]["p99"] >= results[key]["median"] > 0, key
    # 10 ratios to floors, 2 cold/warm restart ratios, 2 warm and 2 back-to-back
    # restart p50 limits, 2 warm spawn p50 limits, 4 deadlock detection on/off ratios
    graded = [c for c in data["checks"] if c["target"] is not None]
    assert len(graded) == 22
    # and 4 ratios without a target: each ask against the floor of the same
    # technique (both busy-poll, or neither)
    compared = {(c["benchmark"], c["floor"]) for c in data["checks"] if c["target"] is None}
    assert compared == {("actors_ask_zmq", "raw_zmq_dealer_router_busy"),
                        ("actors_ask_no_busy_zmq", "raw_zmq_dealer_router"),
                        ("actors_ask_pipe", "mp_pipe_busy"),
                        ("actors_ask_no_busy_pipe", "mp_pipe")}
    for check in data["checks"]:
        assert check["benchmark"] in results
        if check["floor"] is None:
            assert check["value"] > 0 and check["unit"] == "ms"
        else:
            assert check["floor"] in results and check["ratio"] > 0
    check_deadlock(data)
    # the load average taken before the run, printed and recorded
    assert data["meta"]["loadavg_before"] >= 0 and "before the run" in proc.stdout
    # The printed table names every benchmark.
    for label in ("PUSH/PULL", "DEALER/ROUTER", "client busy-polls", "busy_wait=0",
                  "mp.Queue", "mp.Pipe", "tell main->actor",
                  "tell actor->actor", "ask round trip", "restart, warm spare",
                  "restart, cold spawn", "restart, back-to-back", "restart, fork (no spares)",
                  "spawn, warm (unsupervised)", "spawn burst of 50", *DEADLOCK_LABELS):
        assert label in proc.stdout


@pytest.mark.timeout(120)
def test_deadlock_flag_runs_the_detector_benchmark_and_its_floors(tmp_path: Path) -> None:
    proc, data = run_quick(tmp_path, "--deadlock")
    results = data["benchmarks"]
    floors = ["raw_zmq_dealer_router", "mp_pipe"]  # the round-trip floors, same run
    assert sorted(results) == sorted(floors + DEADLOCK)
    for key in results:
        assert results[key]["median"] > 0 and all(s > 0 for s in results[key]["samples"]), key
    check_deadlock(data)
    assert len(data["checks"]) == 4 and data["meta"]["deadlock_only"] is True
    for label in ("DEALER/ROUTER", "mp.Pipe", *DEADLOCK_LABELS):
        assert label in proc.stdout
    assert "restart, warm spare" not in proc.stdout


@pytest.mark.timeout(120)
def test_spawn_flag_runs_the_restart_and_spawn_benchmarks(tmp_path: Path) -> None:
    proc, data = run_quick(tmp_path, "--spawn")
    assert sorted(data["benchmarks"]) == sorted(RESTARTS + SPAWNS)
    for key in SPAWNS:
        assert data["benchmarks"][key]["median"] > 0, key
    assert "spawn burst of 50" in proc.stdout and "DEALER/ROUTER" not in proc.stdout


@pytest.mark.timeout(180)
def test_mp_quick_run_prints_every_benchmark_row(tmp_path: Path) -> None:
    """python -m benchmarks.mp --quick: actors.mp against multiprocessing,
    one table row per benchmark and baseline, each with a ratio and a verdict."""
    import signal

    out = tmp_path / "mp.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.mp", "--quick", "--repeat", "1", "--timeout", "60",
         "--json", str(out)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        stdout, stderr = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)  # on Ctrl-C the benchmark stops its children
        try:
            stdout, stderr = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            stdout, stderr = proc.communicate(timeout=10)
        pytest.fail(f"benchmarks.mp --quick did not finish in 120 s:\n{stdout}\n{stderr}")
    assert proc.returncode == 0, stdout + stderr
    table = [[c.strip() for c in line.strip().strip("|").split("|")]
             for line in stdout.splitlines() if line.startswith("| ")]
    head, rows = table[0], table[1:]  # (the rule under the header starts with "|-")
    assert head[0] == "benchmark" and head[1].startswith("actors.mp ("), stdout
    # (row label, its baselines): the lock rows compare with Manager().Lock
    # and with multiprocessing.Lock, on a row each, the graded one first
    lock_bases = ["multiprocessing Manager().Lock", "multiprocessing.Lock"]
    expected = [("Queue one-way, child -> main", ["multiprocessing"]),
                ("Queue one-way, main -> child", ["multiprocessing"]),
                ("Pipe round trip", ["multiprocessing"]),
                ("Lock acquire+release, uncontended", lock_bases[::-1]),
                ("Lock acquire+release, contended", lock_bases),
                ("Value counter, 2 processes under get_lock()", ["multiprocessing"]),
                ("Pool(2).map, tiny tasks, default chunksize", ["multiprocessing"]),
                ("Pool(2).map, tiny tasks, chunksize=1", ["multiprocessing"]),
                ("Pool(2).apply_async, tiny tasks", ["multiprocessing"]),
                ("Pool(2).map, 1 ms tasks (busy loop)", ["multiprocessing"]),
                ("Pool(2) start-up + first map of 2 tiny tasks", ["multiprocessing"])]
    assert len(rows) == sum(len(bases) for _, bases in expected), stdout
    at = 0
    for label, bases in expected:
        assert rows[at][0] == label and rows[at][1], (label, stdout)
        for base, cells in zip(bases, rows[at:at + len(bases)], strict=True):
            assert len(cells) == 7 and cells[2] == base and cells[3], (label, cells)
            assert cells[4].endswith("x") and float(cells[4][:-1]) > 0, (label, cells)
            assert cells[6] in ("PASS", "**MISS**", "-"), (label, cells)
        at += len(bases)
    data = json.loads(out.read_text())
    assert len(data["benchmarks"]) == len(expected)
    for key, bench in data["benchmarks"].items():
        for side in bench["sides"].values():
            assert side["median"] > 0 and len(side["samples"]) == 1, (key, side)
    graded = [c for c in data["checks"] if c["target"] is not None]
    assert len(graded) == 10 and all(c["ratio"] > 0 for c in graded)


def test_nodes_benchmark_quick(tmp_path):
    """benchmarks.nodes --quick: two nodes over tcp+CURVE and the raw pyzmq
    baselines with and without CURVE (and with a busy-polling client), the
    ask with and without busy_wait, figures and ratios (no timing
    assertions)."""
    out = tmp_path / "nodes.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "benchmarks.nodes", "--quick", "--json",
                           str(out)], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=110)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json.loads(out.read_text())
    assert sorted(data["medians"]) == sorted(
        ["raw_push_curve", "raw_push_plain", "raw_dealer_curve", "raw_dealer_plain",
         "raw_dealer_curve_busy", "tell_a_to_b", "ask_a_to_b", "ask_a_to_b_no_busy",
         "detection"])
    assert all(value > 0 for value in data["medians"].values()), data["medians"]
    assert len(data["ratios"]) == 6 and "tell / raw CURVE PUSH/PULL" in proc.stdout


def test_restart_pairs_compares_two_trees_restart_by_restart():
    """benchmarks.restart_pairs: one driver per tree (here the same tree
    twice), restarts alternated; both medians and the pair ratios (no
    timing assertions)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "benchmarks.restart_pairs", str(ROOT),
                           str(ROOT), "--transport", "pipe", "--restarts", "2"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=110)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    assert data["a_ms"] > 0 and data["b_ms"] > 0 and data["b_over_a"] > 0
    assert 0 <= data["b_slower_in"] <= 2 and data["restarts"] == 2


@pytest.mark.parametrize("measure,transport", [("ask", "zmq"), ("tell", "zmq"), ("ask", "tcp")])
def test_flag_pairs_flips_a_switch_in_both_processes(measure, transport):
    """benchmarks.flag_pairs: a module attribute is set in the main program
    and, read back, in the actor's host between blocks (tcp: the host is on
    a second node); both values' medians and the paired ratio are printed
    (no timing assertions). A name that does not exist is refused before
    anything starts."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "benchmarks.flag_pairs", "actors.mailbox",
                           "BATCH", "64", "16", "--quick", "--measure", measure,
                           "--transport", transport],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=110)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "actors.mailbox.BATCH = 64: median" in proc.stdout
    assert "actors.mailbox.BATCH = 16: median" in proc.stdout
    assert "B/A paired: median" in proc.stdout and "of 2" in proc.stdout
    assert f"{measure} over {transport}" in proc.stdout
    bad = subprocess.run([sys.executable, "-m", "benchmarks.flag_pairs", "actors.mailbox",
                          "NO_SUCH_NAME", "1", "2", "--quick"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "has no attribute 'NO_SUCH_NAME'" in bad.stderr


@pytest.mark.timeout(180)
def test_cluster_benchmark_quick(tmp_path, etcd):
    """benchmarks.cluster: one kill per mode (kill -9, a frozen node, a
    frozen node only its lease ends, with TTL 5 s and 1 s), lookups cached
    and from etcd against a raw etcd3gw read, and joins; figures only. (The
    benchmark starts its own etcd; the fixture checks the binary is there.)"""
    out = tmp_path / "cluster.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "benchmarks.cluster", "--quick", "--kills", "1",
                           "--json", str(out)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=170)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json.loads(out.read_text())
    assert [(k["mode"], k["ttl"]) for k in data["kills"]] == [
        ("kill", 5), ("freeze", 5), ("freeze-lease", 5), ("freeze-lease", 1)]
    assert all(len(k["notified"]) == len(k["moved"]) == 1 for k in data["kills"])
    assert sorted(data["lookups"]) == ["lookup_cached", "lookup_etcd", "raw_etcd3gw_get"]
    assert sorted(data["joins"]) == ["join_seen", "start_without_cluster"]
    assert "p50" in proc.stdout and "join, seen by a member" in proc.stdout
