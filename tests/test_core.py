"""The runtime core over both transports: spawn, tell, ask, proxy, async
handlers, children, names, ordering, errors, deaths and shutdown."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time

import pytest

import actors
from conftest import wait_gone
from sample_actors import (
    AsyncActor,
    Blocker,
    BusyBudget,
    Chain,
    Counter,
    Crasher,
    FailingInit,
    Forwarder,
    Geometry,
    LocalOnlyError,
    Logger,
    Parent,
    Point,
    RaisesCustom,
    Recorder,
    StopLogger,
    Stubborn,
)


def read_text(path: str) -> str:
    with open(path) as f:
        return f.read()


def test_spawn_runs_each_actor_in_its_own_process(system):
    """Each spawned actor lives in a separate child process."""
    a = system.spawn(Counter)
    b = system.spawn(Counter)
    pids = {a.ask("pid", timeout=10), b.ask("pid", timeout=10)}
    assert len(pids) == 2 and os.getpid() not in pids


def test_tell_then_ask_sees_the_effect(system):
    """A tell is handled before a later ask from the same sender."""
    c = system.spawn(Counter, 10, name="counter")
    c.tell(("add", 5))
    assert c.ask("get", timeout=10) == 15


def test_ask_async_is_a_future_and_awaitable(system):
    """ask_async returns a future usable from threads and from asyncio."""
    import asyncio

    c = system.spawn(Counter, 3)
    assert c.ask_async("get").result(timeout=10) == 3

    async def main():
        return await c.ask_async(("echo", "hi"))

    assert asyncio.run(main()) == "hi"


def test_every_way_of_waiting_on_an_ask_completes(system):
    """An ask's future (its Condition is made only when a thread blocks on
    it) completes for every way of waiting: the asking thread, another
    thread blocked in concurrent.futures' own result(), wait(),
    as_completed(), callbacks added before and after, asyncio; errors come
    back as exceptions, and a cancelled future stays cancelled."""
    import asyncio
    import concurrent.futures as cf

    slow = system.spawn(Blocker)
    c = system.spawn(Counter, 3)
    pending = slow.ask_async(("sleep", 0.3))
    blocked: list = []
    thread = threading.Thread(target=lambda: blocked.append(cf.Future.result(pending, 20)))
    thread.start()
    called = threading.Event()
    pending.add_done_callback(lambda future: called.set() if future is pending else None)
    done, _ = cf.wait([pending, slow.ask_async(("sleep", 0.1))], timeout=20)
    assert len(done) == 2
    # FIRST_EXCEPTION looks at the done futures while it holds their locks
    done, _ = cf.wait([pending, c.ask_async("boom")], timeout=20, return_when=cf.FIRST_EXCEPTION)
    assert pending in done and len(done) == 2
    thread.join(20)
    assert called.wait(20)  # (callbacks run just after the waiters are woken)
    assert blocked == ["slept"] and pending.result() == "slept"
    late: list = []
    pending.add_done_callback(late.append)
    assert late == [pending]
    futures = [c.ask_async(("echo", i)) for i in range(20)]
    assert sorted(f.result() for f in cf.as_completed(futures, timeout=20)) == list(range(20))
    failing = c.ask_async("boom")
    with pytest.raises(ValueError) as raised:
        failing.result(20)
    assert failing.exception() is raised.value

    async def awaited():
        return await asyncio.wait_for(asyncio.wrap_future(c.ask_async(("echo", 7))), 20)

    assert asyncio.run(awaited()) == 7
    racing = slow.ask_async(("sleep", 0.05))
    if racing.cancel():
        assert racing.cancelled()
        with pytest.raises(cf.CancelledError):
            racing.result(1)
    assert slow.ask(("sleep", 0), timeout=20) == "slept"  # the actor serves on


def test_proxy_calls_public_methods_only(system):
    """proxy() reaches public methods; private and runtime names are refused."""
    c = system.spawn(Counter, 1)
    proxy = c.proxy(timeout=10)
    assert proxy.add(2) == 3
    assert proxy.add.future(4).result(10) == 7
    with pytest.raises(AttributeError):
        proxy._private()
    with pytest.raises(AttributeError):
        c._runtime.call(c, "_private", (), {}).result(10)
    with pytest.raises(AttributeError):
        c._runtime.call(c, "on_stop", (), {}).result(10)


def test_async_handlers_and_methods(system):
    """async def receive and async methods run to completion, one at a time."""
    a = system.spawn(AsyncActor)
    b = system.spawn(Counter, 5)
    assert a.ask(("sleep_then", 7), timeout=10) == 7
    assert a.ask(("ask", b, "get"), timeout=10) == 5
    for _ in range(50):
        a.tell("inc")
    assert a.ask("get", timeout=10) == 50
    assert a.proxy(timeout=10).double(21) == 42


def test_lookup_by_name_and_names_are_unique(system):
    """lookup finds a live actor by name; a taken name is refused."""
    c = system.spawn(Counter, name="unique")
    assert system.lookup("unique") == c
    assert system.lookup("missing") is None
    with pytest.raises(ValueError, match="unique"):
        system.spawn(Counter, name="unique")
    c.stop()
    assert system.lookup("unique") is None


def test_children_and_refs_inside_messages(system):
    """An actor spawns children; refs travel in messages and replies."""
    parent = system.spawn(Parent, name="parent")
    child = parent.ask(("spawn", "kid", 4), timeout=30)
    assert isinstance(child, actors.ActorRef)
    assert child.ask("get", timeout=10) == 4
    assert parent.ask(("lookup", "kid"), timeout=10) == child
    assert system.lookup("kid") == child
    forwarder = system.spawn(Forwarder)
    assert forwarder.ask(("ask", child, "get"), timeout=10) == 4
    info = {a["name"]: a for a in system.actors()}
    assert info["kid"]["parent"] == info["parent"]["uid"]
    assert info["kid"]["pid"] != info["parent"]["pid"]


def test_nested_spawns_from_on_start(system):
    """Actors spawning children from on_start, many levels deep, all start
    (the node's service pool grows instead of starving)."""
    root = system.spawn(Chain, 6)
    assert root.ask("depth", timeout=60) == 7
    assert len(system.actors()) == 7


def test_colocated_actors_share_a_process(system):
    """colocate_with hosts many actors in one process, each still separate."""
    first = system.spawn(Counter, 1)
    second = system.spawn(Counter, 2, colocate_with=first)
    assert first.ask("pid", timeout=10) == second.ask("pid", timeout=10)
    assert (first.ask("get", timeout=10), second.ask("get", timeout=10)) == (1, 2)
    # one actor blocking on an ask to its neighbour does not deadlock the host
    forwarder = system.spawn(Forwarder, colocate_with=first)
    assert forwarder.ask(("ask", second, "get"), timeout=10) == 2
    second.stop()
    assert first.ask("get", timeout=10) == 1


def test_ten_thousand_messages_keep_their_order(system):
    """Messages from one sender to one receiver arrive in send order."""
    rec = system.spawn(Recorder)
    for i in range(10_000):
        rec.tell(i)
    assert rec.ask("seen", timeout=30) == list(range(10_000))


def test_actor_to_actor_order(system):
    """Order holds between two actors too (through the relay for pipes)."""
    rec = system.spawn(Recorder)
    fwd = system.spawn(Forwarder)
    assert fwd.ask(("send", rec, 10_000), timeout=30) == 10_000
    # the forwarder's tells were sent before its reply; ask the recorder
    # through the forwarder so the order of both paths is the same
    seen = fwd.ask(("ask", rec, "seen"), timeout=30)
    assert seen == [("n", i) for i in range(10_000)]


def test_exception_in_ask_goes_to_asker_and_actor_lives(system):
    """A handler exception is re-raised in the asker as its own class with the
    remote traceback, and the actor keeps serving."""
    c = system.spawn(Counter, 1)
    with pytest.raises(ValueError, match="boom!") as info:
        c.ask("boom", timeout=10)
    assert "raise ValueError" in info.value.remote_traceback
    assert "Remote traceback" in str(info.value.__cause__)
    assert c.ask("get", timeout=10) == 1


def test_custom_exception_class_is_rebuilt(system):
    """An exception class importable here comes back as itself, with args."""
    r = system.spawn(RaisesCustom)
    with pytest.raises(LocalOnlyError) as info:
        r.ask("custom", timeout=10)
    assert info.value.args == ("custom failure", 42)


def test_exception_whose_class_cannot_be_rebuilt_is_a_remote_error(system):
    """A handler's exception whose class is not found here arrives as actors.RemoteError, naming the class and carrying the remote traceback."""
    r = system.spawn(RaisesCustom)
    with pytest.raises(actors.RemoteError) as info:
        r.ask("unbuildable", timeout=10)
    error = info.value
    assert isinstance(error, actors.ActorError)
    assert error.type_name.endswith("RaisesCustom.receive.<locals>.Hidden")
    assert error.message == "no class to rebuild me with"
    assert 'raise Hidden("no class to rebuild me with")' in error.remote_traceback


def test_unsendable_reply_becomes_serialization_error(system):
    """A reply that cannot be encoded reaches the asker as SerializationError."""
    r = system.spawn(RaisesCustom)
    with pytest.raises(actors.SerializationError, match="object"):
        r.ask("unsendable", timeout=10)


def test_serialization_error_at_the_send_site(system):
    """Unknown types fail in the sender, naming the type; nothing is sent."""
    c = system.spawn(Counter, 1)
    with pytest.raises(actors.SerializationError, match="object") as info:
        c.tell(("add", object()))
    assert info.value.type_name == "builtins.object"
    with pytest.raises(actors.SerializationError):
        c.ask(lambda: 0)
    with pytest.raises(actors.SerializationError):
        system.spawn(Counter, object())
    assert c.ask("get", timeout=10) == 1


def test_registered_dataclasses_travel(system):
    """Dataclasses decorated with @actors.message round-trip as themselves."""
    g = system.spawn(Geometry)
    assert g.ask(Point(1, 2), timeout=10) == Point(2, 1)


def test_exception_in_tell_crashes_the_actor(system, caplog):
    """During a tell nobody waits: the actor crashes, the traceback is logged
    in the parent, and later asks fail with ActorDeadError."""
    c = system.spawn(Crasher, name="crasher")
    pid = c.ask("pid", timeout=10)
    with caplog.at_level(logging.ERROR, logger="actors"):
        c.tell("raise")
        assert not wait_gone([pid], 10)
    with pytest.raises(actors.ActorDeadError, match="crash"):
        c.ask("pid", timeout=10)
    assert any("crash in tell" in r.getMessage() for r in caplog.records)


def test_ask_to_a_dead_actor_fails_at_once(system):
    """Asking a stopped actor raises ActorDeadError without waiting."""
    c = system.spawn(Counter)
    c.stop()
    with pytest.raises(actors.ActorDeadError):
        c.ask("get", timeout=60)
    c.tell("ignored")  # a dead letter, not an error
    assert system.dead_letters >= 1


@pytest.mark.parametrize("how", ["sigkill", "exit"])
def test_ask_to_an_actor_that_dies_meanwhile_fails_fast(system, how):
    """An ask pending when the target's process dies fails with ActorDeadError
    as soon as the death is seen, not after the ask's timeout."""
    b = system.spawn(Blocker if how == "sigkill" else Crasher)
    pid = b.ask("pid", timeout=10)
    if how == "sigkill":
        future = b.ask_async("block")
        os.kill(pid, signal.SIGKILL)
        expected = "SIGKILL"
    else:
        future = b.ask_async(("exit", 3))
        expected = "exit code 3"
    with pytest.raises(actors.ActorDeadError, match=expected) as info:
        future.result(timeout=30)
    assert info.value.reason.endswith(expected)


def test_messages_lost_with_a_killed_process_are_dead_letters(system):
    """Messages queued in a mailbox when its process is SIGKILLed are counted
    as dead letters."""
    blocked = system.spawn(Blocker)
    neighbour = system.spawn(Counter, colocate_with=blocked)
    pid = blocked.ask("pid", timeout=10)
    blocked.tell("selfask")  # blocks its handler; the process keeps receiving
    for _ in range(5):
        blocked.tell(("sleep", 0))
    # the neighbour's reply comes after everything sent before it arrived
    assert neighbour.ask("get", timeout=10) == 0
    assert system.dead_letters == 0
    os.kill(pid, signal.SIGKILL)
    # gone before the next ask (else, still running on the other core, it
    # may take that ask into its mailbox too: a seventh dead letter)
    assert wait_gone([pid], 10) == []
    with pytest.raises(actors.ActorDeadError, match="SIGKILL"):
        neighbour.ask("get", timeout=30)
    # the five tells were certainly in its mailbox; its ask to itself too,
    # unless it was still in transit (not counted, as documented)
    assert system.dead_letters in (5, 6)


def test_service_operations_lost_with_a_process_are_no_dead_letters(system):
    """What the node queued for a process that is gone: a tell to an actor is
    a dead letter; a service operation (a broadcast like Gone, sent to a
    host that was exiting too) is not one of the program's messages."""
    from actors import protocol as P
    runtime = system._node.runtime
    service = runtime.service_envelope(P.Gone(["ipc:///nowhere"]))
    before = runtime.dead_letters
    assert runtime._lost([service, runtime.encode(P.Tell.wire(12345, "hello"))]) == []
    assert runtime.dead_letters == before + 1


def test_ask_timeout(system):
    """An ask without a reply in time raises AskTimeout, a TimeoutError."""
    b = system.spawn(Blocker)
    with pytest.raises(actors.AskTimeout):
        b.ask("block", timeout=0.05)
    assert issubclass(actors.AskTimeout, TimeoutError)


def test_constructor_failure_is_raised_by_spawn(system):
    """An exception in __init__ is raised by spawn itself; the process ends."""
    with pytest.raises(OSError, match="cannot start"):
        system.spawn(FailingInit)


def test_spawn_rejects_bad_arguments(system):
    """spawn names what is wrong with its arguments."""
    with pytest.raises(TypeError, match="Actor subclass"):
        system.spawn(object)
    with pytest.raises(ValueError, match="name"):
        system.spawn(Counter, name="")


def test_logging_from_children_reaches_parent_handlers(system, caplog):
    """Records logged in a child reach this process's handlers, tagged with the
    actor's name and pid, with tracebacks."""
    with caplog.at_level(logging.INFO):
        lg = system.spawn(Logger, name="chatty")
        pid = lg.ask("pid", timeout=10)
        lg.ask("error", timeout=10)
        lg.ask("pid", timeout=10)  # replies travel after the records
    records = [r for r in caplog.records if r.name == "sample"]
    assert [r.levelname for r in records] == ["WARNING", "ERROR"]
    first, second = records
    assert first.actor == "chatty" and first.processName == "chatty"
    assert first.process == pid
    assert f"pid {pid}" in first.getMessage()
    assert "LookupError: inside the child" in second.exc_text


def test_stop_runs_on_stop_children_first(system, tmp_path):
    """Stopping an actor stops its children first (last started first), and
    each runs on_stop."""
    path = str(tmp_path / "log")
    parent = system.spawn(Parent, path, name="p")
    parent.ask(("spawn_logger", "a"), timeout=30)
    parent.ask(("spawn_logger", "b"), timeout=30)
    parent.stop()
    lines = read_text(path).split("\n")
    assert lines[:5] == ["start a", "start b", "stop b", "stop a", "stop p"]


def test_shutdown_stops_in_reverse_order(transport, tmp_path):
    """Leaving the system stops actors last-started first, running on_stop,
    and every process ends."""
    path = str(tmp_path / "log")
    with actors.ActorSystem(transport) as system:
        refs = [system.spawn(StopLogger, path, label) for label in "xyz"]
        pids = [r.ask("pid", timeout=10) for r in refs]
    assert read_text(path).split() == ["start", "x", "start", "y", "start", "z",
                                         "stop", "z", "stop", "y", "stop", "x"]
    assert wait_gone(pids, 5) == []


def test_an_actor_that_ignores_stop_is_killed(transport):
    """An actor whose on_stop hangs is killed after the stop timeout."""
    with actors.ActorSystem(transport, stop_timeout=0.5) as system:
        s = system.spawn(Stubborn)
        pid = s.ask("pid", timeout=10)
    assert wait_gone([pid], 5) == []


def test_malformed_frames_are_dropped_and_the_receiver_lives(system):
    """Random bytes sent to an actor's process are dropped; it keeps working."""
    import random

    c = system.spawn(Counter, 1)
    rng = random.Random(1234)
    frames = [bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 64)))
              for _ in range(300)]
    frames += [b"\xa1" + f for f in frames[:100]]  # valid header, garbage body
    frames += [b"\xa1\x94\x00\x00", b"\xa1\x91\x07", b"\xa1\x80"]  # bad envelopes
    if system.transport == "zmq":
        import zmq
        ctx = zmq.Context()
        sock = ctx.socket(zmq.PUSH)
        sock.connect(c.address)
        try:
            for f in frames:
                sock.send(f)
        finally:
            sock.close(linger=5000)
            ctx.term()
    else:
        link = system._node.runtime.network.links[c.address]
        for f in frames:
            link.send(f)
    assert c.ask("get", timeout=10) == 1
    c.tell(("add", 1))
    assert c.ask("get", timeout=10) == 2


def test_system_options_are_validated():
    """Bad options raise at construction, naming the option."""
    with pytest.raises(ValueError, match="transport"):
        actors.ActorSystem("carrier-pigeon")
    with pytest.raises(ValueError, match="bind"):
        actors.ActorSystem(bind="udp://x")
    with pytest.raises(ValueError, match="stop_timeout"):
        actors.ActorSystem(stop_timeout=0)
    for bad in (-0.001, 0.5, True, "fast"):
        with pytest.raises(ValueError, match=r"busy_wait must be a number of seconds in \[0, "):
            actors.ActorSystem(busy_wait=bad)


@pytest.mark.parametrize("busy_wait", [0.0, 0.01])
def test_a_waiting_thread_busy_waits_only_while_replies_come_that_fast(busy_wait):
    """busy_wait: the main program and every host get the setting; the main
    thread polls up to busy_wait for a reply before it sleeps, but only
    while replies come within it. Six asks to a handler that works 60 ms
    cost the waiting thread about one busy wait of CPU (10 ms, the first
    ask), not six (60 ms); fast asks turn it on again."""
    with actors.ActorSystem(busy_wait=busy_wait, spares=0) as system:
        busy = system._node.runtime.loop.busy
        slow, fast = system.spawn(Blocker), system.spawn(Counter, 7)
        assert busy.budget == busy_wait
        assert system.spawn(BusyBudget).ask("budget", timeout=10) == busy_wait
        for _ in range(20):
            assert fast.ask("get", timeout=10) == 7  # replies come fast
        assert busy.quick
        cpu = time.thread_time()
        for _ in range(6):
            assert slow.ask(("sleep", 0.06), timeout=10) == "slept"
        spent = time.thread_time() - cpu
        assert spent < 0.03, f"the waiting thread used {spent * 1000:.1f} ms of CPU"
        assert busy.quick is (busy_wait == 0)  # (with no budget, nothing is measured)
        assert fast.ask("get", timeout=10) == 7
        assert busy.quick


def test_a_busy_wait_spends_its_budget_once_per_wait_under_traffic():
    """A wait whose polls keep returning for other messages (another
    thread's replies, read by the waiting thread) spins one budget in all,
    not one per poll: an ask of 0.4 s with busy_wait=10 ms, while another
    thread asks every 2 ms, costs the waiting thread far less CPU than the
    0.4 s it would spin otherwise."""
    with actors.ActorSystem(busy_wait=0.01, spares=0) as system:
        slow, fast = system.spawn(Blocker), system.spawn(Counter, 7)
        assert fast.ask("get", timeout=10) == 7
        done = threading.Event()
        answered = []

        def traffic():
            while not done.wait(0.002):  # (paces the traffic; waits for nothing)
                answered.append(fast.ask("get", timeout=10))
        thread = threading.Thread(target=traffic)
        thread.start()
        try:
            cpu = time.thread_time()
            assert slow.ask(("sleep", 0.4), timeout=10) == "slept"
            spent = time.thread_time() - cpu
        finally:
            done.set()
            thread.join(10)
        assert len(answered) > 20 and set(answered) == {7}
        assert spent < 0.15, f"the waiting thread used {spent * 1000:.1f} ms of CPU"


def test_tcp_loopback(keys):
    """The zmq transport also runs over tcp:// on 127.0.0.1 (CURVE keys)."""
    with actors.ActorSystem(bind="tcp://127.0.0.1", keys=keys) as system:
        c = system.spawn(Counter, 2)
        assert c.address.startswith("tcp://127.0.0.1:")
        p = system.spawn(Parent)
        kid = p.ask(("spawn", "k", 3), timeout=30)
        assert kid.ask("get", timeout=10) == 3
        assert c.ask("get", timeout=10) == 2
