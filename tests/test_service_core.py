"""The core parts the service commands rely on: ``ActorSystem.statistics``,
``Supervisor.start_child(before=...)`` and SIGTERM in library programs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

import actors
from actors import ChildSpec
from conftest import wait_for, wait_gone
from sample_service import Gate, Recorder, Relay


TESTS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(TESTS)


def entry(stats: list[dict], name: str) -> dict:
    """The statistics entry of the actor named ``name``."""
    found = [e for e in stats if e["name"] == name]
    assert len(found) == 1, stats
    return found[0]


def stats_when(system, predicate, what: str) -> list[dict]:
    """``system.statistics()`` once ``predicate`` holds for it."""
    box: list = []

    def check() -> bool:
        box[:] = [system.statistics(5.0)]
        return predicate(box[0])
    wait_for(check, what=what)
    return box[0]


def test_statistics_counts_mailbox_depth_and_handled_messages(system):
    """statistics() reports the messages waiting in a busy actor's mailbox
    and the messages each actor has handled, per live actor with its pid,
    in tree order."""
    gate = system.spawn(Gate, name="gate")
    relay = system.spawn(Relay, name="relay")
    pid = relay.ask("pid", timeout=10)
    waiting = relay.ask_async(("through", gate))   # relay now waits on the gate
    asked = []

    def held() -> bool:
        asked.append(1)
        return gate.ask("held", timeout=10) == 1
    wait_for(held, what="the gate to hold the ask")
    for i in range(3):
        relay.tell(("n", i))                       # queued behind the wait
    stats = stats_when(system, lambda s: entry(s, "relay")["mailbox"] == 3,
                       "three messages queued in relay's mailbox")
    relay_entry = entry(stats, "relay")
    assert relay_entry == {"name": "relay", "uid": relay.uid, "pid": pid, "mailbox": 3,
                           "handled": 2, "peak": 3}  # "pid", then the one it is in
    gate.tell("open")
    assert waiting.result(10) == "open"
    stats = stats_when(system, lambda s: entry(s, "relay")["handled"] == 5,
                       "relay to handle its queued messages")
    assert entry(stats, "relay")["mailbox"] == 0
    assert entry(stats, "gate")["handled"] == 1 + len(asked) + 1   # wait, held..., open
    assert [e["name"] for e in stats] == ["gate", "relay"]


def test_statistics_leaves_counts_of_a_busy_process_unknown(system, tmp_path):
    """A process whose handler does not return to its loop cannot answer:
    its actors' counts are None after the timeout, the others' are known."""
    fifo = str(tmp_path / "fifo")
    os.mkfifo(fifo)
    system.spawn(Gate, name="gate")
    stuck = system.spawn(Relay, name="stuck")
    blocked = stuck.ask_async(("block", fifo))
    writer = os.open(fifo, os.O_WRONLY)            # returns once the handler opened it
    try:
        stats = system.statistics(0.2)
        assert entry(stats, "stuck")["mailbox"] is None
        assert entry(stats, "stuck")["handled"] is None
        assert entry(stats, "stuck")["pid"] is not None
        assert entry(stats, "gate")["handled"] == 0
        os.write(writer, b"!")
    finally:
        os.close(writer)
    assert blocked.result(10) == b"!"
    stats = stats_when(system, lambda s: entry(s, "stuck")["handled"] is not None,
                       "the unblocked process to answer")
    assert entry(stats, "stuck")["handled"] == 1


def test_statistics_rejects_a_bad_timeout(system):
    """A negative timeout is refused, naming the value."""
    with pytest.raises(ValueError, match="-1"):
        system.statistics(-1)


def journal_lines(path) -> list[str]:
    """The lines of a Recorder journal (none yet if it does not exist)."""
    try:
        with open(path) as f:
            return f.read().splitlines()
    except FileNotFoundError:
        return []


def test_start_child_before_places_the_child_in_the_start_order(tmp_path):
    """start_child(spec, before=name) starts the child and puts it just
    before ``name`` in the start order: which_children() lists it there and
    the orderly stop (reverse start order) stops it there."""
    journal = str(tmp_path / "journal")
    system = actors.ActorSystem(spares=0)
    try:
        sup = system.spawn(actors.Supervisor, [ChildSpec("a", Recorder, args=(journal,)),
                                               ChildSpec("c", Recorder, args=(journal,))],
                           name="sup")
        proxy = sup.proxy(timeout=30)
        ref = proxy.start_child(ChildSpec("b", Recorder, args=(journal,)), before="c")
        assert ref == system.lookup("sup/b")
        assert [c.name for c in proxy.which_children()] == ["a", "b", "c"]
        assert [e["name"] for e in system.tree()[0]["children"]] == ["sup/a", "sup/b", "sup/c"]
        with pytest.raises(KeyError, match="nope"):
            proxy.start_child(ChildSpec("d", Recorder, args=(journal,)), before="nope")
        assert [c.name for c in proxy.which_children()] == ["a", "b", "c"]
    finally:
        system.shutdown()
    stops = [line for line in journal_lines(journal) if line.startswith("stop")]
    assert stops == ["stop c", "stop b", "stop a"]


def test_start_child_before_is_refused_by_simple_one_for_one(system):
    """A simple_one_for_one supervisor has no start order to place a child in."""
    sup = system.spawn(actors.Supervisor, [ChildSpec("t", Relay)],
                       strategy="simple_one_for_one", name="pool")
    proxy = sup.proxy(timeout=30)
    proxy.start_child("one")
    with pytest.raises(TypeError, match="simple_one_for_one"):
        proxy.start_child("two", before="one")


def start_script(*args: str) -> subprocess.Popen:
    """Start tests/sigterm_script.py; return once it printed "ready"."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT, TESTS]))
    proc = subprocess.Popen([sys.executable, os.path.join(TESTS, "sigterm_script.py"), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    return proc


@pytest.mark.timeout(60)
def test_sigterm_stops_a_library_program_in_order(tmp_path):
    """A program blocked in ``with ActorSystem()`` that gets SIGTERM leaves
    the block: every actor's on_stop runs, the last started first, and the
    program exits with status 143 and no traceback."""
    journal = str(tmp_path / "journal")
    proc = start_script(journal)
    try:
        ready = proc.stdout.readline().split()
        assert ready[0] == "ready", proc.stderr.read()
        pids = [int(p) for p in ready[1:]]
        assert len(pids) == 2
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert proc.returncode == 143, err
    assert "left the with block" not in out      # SystemExit went on up
    assert "Traceback" not in err
    assert [line for line in journal_lines(journal) if line.startswith("stop")] == [
        "stop second", "stop first"]
    assert wait_gone(pids, 10) == []


@pytest.mark.timeout(60)
def test_sigterm_handler_of_the_program_is_kept(tmp_path):
    """A program that installed its own SIGTERM handler before creating the
    system keeps it: the handler runs (here it exits 7), and the system is
    still stopped in order on the way out."""
    journal = str(tmp_path / "journal")
    proc = start_script(journal, "own")
    try:
        ready = proc.stdout.readline().split()
        assert ready[0] == "ready", proc.stderr.read()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert proc.returncode == 7, err
    assert "own handler" in out
    assert [line for line in journal_lines(journal) if line.startswith("stop")] == [
        "stop second", "stop first"]
    assert wait_gone([int(p) for p in ready[1:]], 10) == []


def test_sigterm_default_action_is_back_after_the_last_system(tmp_path):
    """In this (main) thread, a system installs the handler only where
    SIGTERM had its default action, and its shutdown puts the default back."""
    # (a system of an earlier test may still run here: actors.mp's own)
    previous = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        first = actors.ActorSystem(spares=0)
        second = actors.ActorSystem(spares=0)
        try:
            handler = signal.getsignal(signal.SIGTERM)
            assert callable(handler) and handler is not signal.SIG_DFL
        finally:
            first.shutdown()
            assert signal.getsignal(signal.SIGTERM) is handler   # second still runs
            second.shutdown()
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
        own = signal.signal(signal.SIGTERM, signal.SIG_IGN)      # ignored: kept
        third = actors.ActorSystem(spares=0)
        try:
            assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN
        finally:
            third.shutdown()
        assert own is signal.SIG_DFL
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGTERM, previous)
