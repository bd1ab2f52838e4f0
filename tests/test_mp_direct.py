"""The direct path of an ``actors.mp`` Queue (docs/mp.md, "The direct
path"): a lone consumer's items go straight from their producers, and
every ordering and no-loss guarantee of the queue holds when the route is
set up, when it ends (a second consumer, a size asked, the consumer
closing or exiting) and when a producer or the consumer is killed.

Each scenario is a program of its own (tests/direct_program.py), over
both transports; it waits until a route is open (or offered) before it
acts, so a scenario that never routes fails instead of passing vacuously.
Also: items at the edge of the frame (each arrives or fails at its put),
sizes and gets while a route is only offered, and the primitives' host
killed under a routed consumer (PrimitiveLost, not a wait for ever)."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest

HERE = pathlib.Path(__file__).resolve().parent
SCENARIOS = ["up", "down", "second_consumer", "qsize_exact", "producer_killed",
             "consumer_killed", "consumer_closes", "consumer_exits", "two_producers",
             "big_direct", "big_pushed", "size_while_offered", "closed_while_offered",
             "host_killed", "two_threads"]


def run(scenario: str, transport: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(HERE.parent), ACTORS_MP_TRANSPORT=transport)
    return subprocess.run([sys.executable, str(HERE / "direct_program.py"), scenario],
                          cwd=HERE, env=env, capture_output=True, text=True, timeout=80,
                          check=False)


@pytest.mark.timeout(100)
@pytest.mark.parametrize("transport", ["zmq", "pipe"])
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_direct_path(scenario, transport):
    proc = run(scenario, transport)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    line = next(line for line in proc.stdout.splitlines() if line.startswith("OK "))
    assert line.split()[1] == scenario
    if scenario == "consumer_killed":  # what the dead consumer held is counted
        assert "were lost with it" in proc.stderr, proc.stderr
    elif scenario != "host_killed":  # nothing lost, nothing complained of
        assert "lost" not in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
