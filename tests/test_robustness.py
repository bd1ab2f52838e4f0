"""Races and corner cases found in review, each pinned by a test."""

from __future__ import annotations

import os
import time

import pytest
import zmq

import actors
from conftest import wait_gone
from sample_actors import (
    Asker,
    AsyncSpawner,
    Counter,
    DiesInOnStop,
    Greeter,
    Relay,
    RebelParent,
    Sink,
    Slow,
    TellThenStop,
)
from transport import zmq as tzmq


def test_colocated_actors_waiting_in_handlers_keep_the_host_alive(system):
    """Actors of one process whose handlers wait (nested pumps) while their
    neighbours have queued messages: every ask is answered."""
    slow = system.spawn(Slow)
    a = system.spawn(Asker, slow)
    b = system.spawn(Asker, colocate_with=a)
    c = system.spawn(Asker, colocate_with=a)
    futures = [ref.ask_async(i) for i in range(5) for ref in (a, b, c)]
    assert [f.result(timeout=30) for f in futures] == [i for i in range(5) for _ in range(3)]


def test_a_flood_of_large_tells_through_a_relay_does_not_deadlock(system):
    """50k tells of 2 KB, each forwarded by a second actor: everything
    arrives (full pipes must not block the relay)."""
    sink = system.spawn(Sink)
    relay = system.spawn(Relay, sink)
    payload = b"x" * 2000
    for _ in range(50_000):
        relay.tell(payload)
    assert relay.ask("n", timeout=60) == 50_000
    assert relay.ask("target n", timeout=60) == 50_000


def test_messages_sent_to_an_actor_during_its_on_start_reach_it(system):
    """A child spawned in on_start may tell its parent at once: the message
    waits in the parent's mailbox until its on_start is done. (Only the
    order of one sender's messages is guaranteed: the child's tell may reach
    the parent after this program's first ask, so poll for it.)"""
    parent = system.spawn(Greeter)
    deadline = time.monotonic() + 30
    got = parent.ask("got", timeout=30)
    while got != ["hello"] and time.monotonic() < deadline:
        assert got == []
        got = parent.ask("got", timeout=30)
    assert got == ["hello"]


def test_an_actor_may_stop_its_own_parent(system, tmp_path):
    """A child stopping its parent does not wait for itself to be stopped:
    the parent's on_stop runs and nothing is killed."""
    path = tmp_path / "log"
    parent = system.spawn(RebelParent, str(path))
    kid = parent.ask("kid", timeout=30)
    pids = [a["pid"] for a in system.actors()]
    assert kid.ask("stop parent", timeout=10) == "scheduled"
    assert wait_gone(pids, 10) == []
    assert path.read_text() == "parent stopped\n"
    with pytest.raises(actors.ActorDeadError, match="stopped"):
        parent.ask("kid", timeout=10)


@pytest.mark.parametrize("count", [1, 50])
def test_tells_sent_before_a_stop_are_handled_before_on_stop(system, count):
    """A stop sent by an actor reaches the target behind the tells that actor
    sent before it: none of them becomes a dead letter."""
    stopper = system.spawn(TellThenStop)
    for _ in range(5):
        target = system.spawn(Counter, colocate_with=stopper) if count == 1 else \
            system.spawn(Counter)
        assert stopper.ask((target, count), timeout=10) == count
        with pytest.raises(actors.ActorDeadError):
            for _ in range(1000):  # until the scheduled stop has happened
                target.ask("get", timeout=10)
    assert system.dead_letters == 0


def test_a_process_dying_in_on_stop_ends_the_stop_at_once(system):
    """stop() returns as soon as the process dies, not after the timeout."""
    doomed = system.spawn(DiesInOnStop)
    pid = doomed.ask("pid", timeout=10)
    started = time.monotonic()
    doomed.stop(timeout=30)
    assert time.monotonic() - started < 10
    assert wait_gone([pid], 5) == []


def test_processes_started_later_know_earlier_deaths(system):
    """An actor started after another died gets ActorDeadError at once when
    asking the dead one (no timeout)."""
    victim = system.spawn(Counter)
    victim.stop()
    asker = system.spawn(Asker, victim)
    with pytest.raises(actors.ActorDeadError):
        asker.ask("get", timeout=30)


def test_a_child_spawned_from_an_async_handler_has_the_right_parent(system):
    """The parent of a child is the actor that spawned it, even when its async
    handler runs while a neighbour handles a message."""
    spawner = system.spawn(AsyncSpawner)
    neighbour = system.spawn(Asker, system.spawn(Slow), colocate_with=spawner)
    future = spawner.ask_async("go")
    neighbour.ask("x", timeout=30)
    child = future.result(timeout=30)
    info = {a["uid"]: a for a in system.actors()}
    assert info[child.uid]["parent"] == spawner.uid


def test_a_system_dropped_without_shutdown_is_stopped_at_exit(tmp_path):
    """Interpreter exit stops a system nobody holds any more."""
    import json
    import subprocess
    import sys

    here = os.path.dirname(os.path.abspath(__file__))
    script = tmp_path / "dropped.py"
    script.write_text(
        "import actors, json\n"
        "from sample_actors import StopLogger\n"
        "def start():\n"
        "    system = actors.ActorSystem()\n"
        f"    a = system.spawn(StopLogger, {str(tmp_path / 'log')!r}, 'a')\n"
        "    return a.ask('pid', timeout=30), system._node.rundir\n"
        "if __name__ == '__main__':\n"
        "    print(json.dumps(start()), flush=True)\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([here, os.path.dirname(here)]))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    pid, rundir = json.loads(out.stdout)
    assert wait_gone([pid], 5) == []
    assert (tmp_path / "log").read_text() == "start a\nstop a\n"
    assert not os.path.exists(rundir)


def test_an_inbox_closing_leaves_a_later_owners_socket_file(tmp_path):
    """Two inboxes bind one ipc path in turn (a slot's address, a new
    incarnation binding it while the old process still exits): the first
    one closing must not remove the second's socket file, which still
    receives afterwards."""
    context = zmq.Context()
    path = str(tmp_path / "slot")
    address = f"ipc://{path}"
    old = tzmq.Inbox(context, address)
    new = tzmq.Inbox(context, address)
    outlet = None
    try:
        old.close()
        assert os.path.exists(path)
        outlet = tzmq.Outlet(context, address)
        outlet.send(b"still here")
        assert new.socket.poll(10_000)
        assert new.recv_frames() == [b"still here"]
    finally:
        if outlet is not None:
            outlet.close(0)
        new.close()
        context.term()
    assert not os.path.exists(path)  # its own file: removed
