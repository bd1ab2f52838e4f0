"""Spare processes for every spawn, a pool sized to demand, and the
template process that forks hosts (actors.launcher, actors.template)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import psutil
import pytest

import actors
from actors.config import TEMPLATE_SUPPORTED, SystemConfig
from conftest import ask_retrying, wait_for, wait_gone
from sample_actors import Counter

HERE = os.path.dirname(os.path.abspath(__file__))
linux_only = pytest.mark.skipif(not TEMPLATE_SUPPORTED, reason="the template needs Linux")


def spare_pids(system: actors.ActorSystem) -> set[int]:
    return {host.pid for host in tuple(system._node.launcher.pool)}


def full(system: actors.ActorSystem, ready: int) -> bool:
    pool = system.spare_pool()
    return pool["ready"] >= ready and pool["starting"] == 0


def test_an_unsupervised_spawn_takes_a_spare(system):
    """Spares exist from the first spawn of any actor, and the next spawn
    of an unsupervised actor runs in one of them."""
    first = system.spawn(Counter)
    assert first.ask("get", timeout=10) == 0
    wait_for(lambda: full(system, 2), what="two spares")
    spares = spare_pids(system)
    before = system.spare_pool()
    second = system.spawn(Counter, 5)
    assert second.ask("pid", timeout=10) in spares
    after = system.spare_pool()
    assert after["taken"] == before["taken"] + 1
    assert after["misses"] == before["misses"]


def test_the_pool_grows_under_a_burst_and_shrinks_when_idle():
    """A burst of spawns empties the pool: its target rises (bounded by
    max_spares), and comes back to ``spares`` once no spawn came for
    ``spares_idle`` seconds; the spares above it end."""
    system = actors.ActorSystem(spares=1, max_spares=3, spares_idle=0.5)
    try:
        system.spawn(Counter)
        wait_for(lambda: full(system, 1), what="the pool at rest")
        refs = [system.spawn(Counter, i) for i in range(6)]
        assert [ref.ask("get", timeout=10) for ref in refs] == list(range(6))
        grown = system.spare_pool()
        assert grown["grown"] >= 1
        assert 1 < grown["target"] <= 3
        wait_for(lambda: system.spare_pool()["shrunk"] >= 1, what="the pool to shrink")
        wait_for(lambda: system.spare_pool()["ready"] == 1 and system.spare_pool()["target"] == 1,
                 what="the pool back at rest")
        assert len(spare_pids(system)) == 1
    finally:
        system.shutdown()
    assert wait_gone(system._node.started_pids, 5) == []


@pytest.mark.parametrize("transport", ["zmq", "pipe"])
def test_a_crash_loop_restarts_every_time(transport):
    """A supervised child killed as soon as each restart answered, 15 times
    in a row: every restart comes back from a new process, the supervisor
    stays up, and the restarts are served from the pool (which grows)."""
    system = actors.ActorSystem(transport, spares=1, max_spares=4)
    try:
        sup = system.spawn(actors.Supervisor, [actors.ChildSpec("w", Counter, args=(7,))],
                           name="sup", max_restarts=100, max_seconds=1)
        child = system.lookup("sup/w")
        pid = child.ask("pid", timeout=10)
        seen = {pid}
        for _ in range(15):
            os.kill(pid, signal.SIGKILL)
            while pid in seen:
                pid = ask_retrying(child, "pid")
            seen.add(pid)
            assert child.ask("get", timeout=10) == 7
        assert len(seen) == 16
        info = {c.name: c for c in sup.proxy(timeout=30).which_children()}
        assert info["w"].pid == pid
        pool = system.spare_pool()
        assert pool["taken"] >= 17  # the supervisor, the child, 15 restarts
        assert pool["target"] > 1  # restarts found the pool empty: it grew
    finally:
        system.shutdown()
    assert wait_gone(system._node.started_pids, 5) == []


@linux_only
def test_hosts_are_forked_from_the_template(system):
    """The template is a child of this program; hosts are its children."""
    ref = system.spawn(Counter)
    pool = system.spare_pool()
    template = pool["template"]
    assert template is not None and pool["forked"] >= 1 and pool["spawned"] == 0
    assert psutil.Process(template).ppid() == os.getpid()
    assert psutil.Process(ref.ask("pid", timeout=10)).ppid() == template
    assert template in system._node.started_pids


def test_without_the_template_every_process_is_spawned():
    system = actors.ActorSystem(template=False, spares=1)
    try:
        ref = system.spawn(Counter)
        assert psutil.Process(ref.ask("pid", timeout=10)).ppid() == os.getpid()
        pool = system.spare_pool()
        assert pool["forked"] == 0 and pool["template"] is None and pool["spawned"] >= 1
    finally:
        system.shutdown()
    assert wait_gone(system._node.started_pids, 5) == []


@linux_only
def test_the_template_refuses_to_fork_once_a_thread_runs():
    """A module that starts a thread at import, preloaded in the template:
    the template does not serve, every process is spawned, and the actor
    works."""
    from sample_threaded import Threaded
    system = actors.ActorSystem(spares=1)
    try:
        ref = system.spawn(Threaded)
        assert psutil.Process(ref.ask("pid", timeout=10)).ppid() == os.getpid()
        pool = system.spare_pool()
        assert pool["template"] is None and pool["forked"] == 0
        assert "thread" in pool["template_problem"]
    finally:
        system.shutdown()
    assert wait_gone(system._node.started_pids, 5) == []


@pytest.mark.parametrize("transport", ["zmq", "pipe"])
def test_sigkill_of_the_main_program_ends_spares_and_the_template(transport):
    """kill -9 of the program: its actors' processes, its spares (the pool
    grown) and the template process all end."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([HERE, os.path.dirname(HERE)]))
    proc = subprocess.Popen([sys.executable, os.path.join(HERE, "spares_script.py"), transport],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    pids: list[int] = []
    try:
        line = proc.stdout.readline()
        assert line, "the script did not start its actors"
        info = json.loads(line)
        pids = info["hosts"] + ([info["template"]] if info["template"] else [])
        assert set(info["spares"]) <= set(info["hosts"]) and len(info["spares"]) >= 1
        assert len(info["hosts"]) >= 9  # supervisor, child, 6 actors, spares
        if TEMPLATE_SUPPORTED:
            assert info["template"] is not None
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        assert wait_gone(pids, 5.0) == []
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        for pid in wait_gone(pids, 0):
            os.kill(pid, signal.SIGKILL)
        proc.stdin.close()
        proc.stdout.close()


def test_a_script_without_the_main_guard_fails_fast_and_leaves_nothing():
    """A script that starts a system without ``if __name__ == "__main__":``:
    its children (the template, then a spawned host) fail re-importing it
    with the standard library's bootstrapping error, before starting any
    thread or process of their own, and the script ends with SpawnError.
    It used to wait out the template's and the host's 60 s start timeouts
    (three minutes) while the children hung in a half-built system."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([HERE, os.path.dirname(HERE)]))
    proc = subprocess.Popen([sys.executable, os.path.join(HERE, "unguarded_script.py")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    seen: set[int] = set()
    try:
        def ended() -> bool:
            try:
                seen.update(c.pid for c in psutil.Process(proc.pid).children(recursive=True))
            except psutil.NoSuchProcess:
                pass
            return proc.poll() is not None
        wait_for(ended, timeout=40, what="the unguarded script to end")
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)
    assert proc.returncode == 1
    assert "unreachable" not in out
    assert "current process has finished its bootstrapping phase" in err
    assert "actors.SpawnError: a new process died while starting (exit code 1)" in err
    assert "AssertionError" not in err  # the template's close of a process never started
    assert wait_gone(sorted(seen), 5.0) == []


def test_a_program_ending_while_its_spares_start_prints_nothing():
    """A program whose system ends while its spares are still starting
    (actors.mp's implicit system, right after it started): the spares find
    their node's folder gone and end quietly; nothing reaches stderr. Each
    run printed two spare tracebacks before."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([HERE, os.path.dirname(HERE)]))
    for _ in range(3):
        proc = subprocess.run([sys.executable, "-c",
                               "from actors.mp import context; context.runtime()"],
                              capture_output=True, text=True, timeout=60, env=env)
        assert proc.returncode == 0
        assert "Traceback" not in proc.stderr, proc.stderr[-3000:]


@pytest.mark.parametrize("options, text", [
    ({"spares": 3, "max_spares": 2}, "max_spares must be >= spares"),
    ({"max_spares": -1}, "max_spares must be an int >= 0"),
    ({"spares_idle": 0}, "spares_idle must be a positive number"),
    ({"template": "yes"}, "template must be None, True or False"),
])
def test_bad_pool_options_are_refused(options, text):
    with pytest.raises(ValueError, match=text):
        SystemConfig(**options)


def test_pool_defaults():
    config = SystemConfig()
    assert (config.spares, config.max_spares, config.spares_idle) == (2, 8, 10.0)
    assert config.template is TEMPLATE_SUPPORTED
    assert SystemConfig(spares=12).max_spares == 12


@linux_only
def test_a_killed_template_takes_its_processes_and_spawn_takes_over():
    """The template's processes die with it (PR_SET_PDEATHSIG): their
    actors end as killed; new processes then start from spawn."""
    system = actors.ActorSystem(spares=1)
    try:
        ref = system.spawn(Counter, 3)
        template = system.spare_pool()["template"]
        assert psutil.Process(ref.ask("pid", timeout=10)).ppid() == template
        os.kill(template, signal.SIGKILL)
        wait_for(lambda: system.spare_pool()["template"] is None, what="the template's end")
        with pytest.raises(actors.ActorDeadError):
            wait_for(lambda: ref.ask("get", timeout=10) is None, what="the actor's end")
        assert "ended" in system.spare_pool()["template_problem"]
        fresh = system.spawn(Counter, 4)
        assert fresh.ask("get", timeout=10) == 4
        assert psutil.Process(fresh.ask("pid", timeout=10)).ppid() == os.getpid()
    finally:
        system.shutdown()
    assert wait_gone(system._node.started_pids, 5) == []


@pytest.mark.timeout(120)
def test_stops_while_spares_start_never_block_the_node():
    """A spawn and a stop at once in new systems over pipes, while the pool
    fills (the first spawn starts the template and the spares). This hung
    in about one round of 10-40 before the fix: handling a host's exit ran
    the loop again (it waits for the host's last reports), which read a
    frame the outer poll had listed as ready; the outer loop then read that
    pipe again and blocked for ever. 40 rounds, each must end."""
    for _ in range(40):
        with actors.ActorSystem(transport="pipe") as system:
            first = system.spawn(Counter)
            first.stop()
            second = system.spawn(Counter)
            assert second.ask("get", timeout=30) == 0
            second.stop()
