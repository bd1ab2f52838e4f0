"""Deadlock detection: cycles of blocking waits (asks, proxy calls, spawns,
nested handlers of colocated actors, async handlers) are reported with a
DeadlockError naming the cycle; long waits and cycles that resolve are not;
opt-in quiescence; deferred replies; hung children (hang_timeout).

Every test uses real processes. Nothing here sleeps to wait for something:
tests wait on asks or poll a condition with a deadline (``wait_for``).
Asks made by handlers wait up to 30 s (``sample_deadlocks.INNER_TIMEOUT``)
while the tests give up after 10 s, so a DeadlockError that reaches a test
came from the detector, not from a timeout.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import os
import re
import threading
from collections.abc import Iterator
from typing import Any

import pytest

import actors
from actors import ChildSpec
from conftest import ask_retrying, find, wait_for, wait_gone
from sample_deadlocks import (
    AsyncPeer,
    Busy,
    Hanger,
    Holder,
    Peer,
    Pinger,
    Ponger,
    Spawner,
)

# Tests where the transport does not matter run over zmq only (this
# overrides the parametrized ``transport`` fixture that ``system`` uses).
zmq_only = pytest.mark.parametrize("transport", ["zmq"])

TIMEOUT = 10.0  # what a test waits for an answer; far more than detection needs
YOUNGEST = ". This wait is the youngest of the cycle and fails to break it; the others go on."


# -- helpers -------------------------------------------------------------------

@contextlib.contextmanager
def own_system(transport: str, **options: Any) -> Iterator[actors.ActorSystem]:
    """An ActorSystem with non-default options, checked like the fixture's:
    after shutdown, every process it started is gone."""
    system = actors.ActorSystem(transport, stop_timeout=5.0, **options)
    try:
        yield system
    finally:
        system.shutdown()
        assert wait_gone(system._node.started_pids, 5) == []
        assert not os.path.exists(system._node.rundir)


def spawn_peers(system: actors.ActorSystem, *labels: str) -> tuple[list[actors.ActorRef], list[int]]:
    """One :class:`Peer` per label, each in its own process, named by its
    label; their refs and pids."""
    refs = [system.spawn(Peer, label, name=label) for label in labels]
    pids = [ref.ask("pid", timeout=TIMEOUT) for ref in refs]
    assert len(set(pids)) == len(pids)  # separate processes
    return refs, pids


def check_cycle(cycle: list[str], steps: list[tuple[str, int, str]]) -> None:
    """``cycle`` has one entry per step, in order: each names the waiter,
    its pid, and then starts with the given text (``"asks bob ("``)."""
    assert len(cycle) == len(steps), cycle
    for text, (name, pid, rest) in zip(cycle, steps):
        assert text.startswith(f"{name} (pid {pid}) {rest}"), (text, name, rest)


def closed_by(steps: list[tuple[str, int, str]], victim: str) -> list[tuple[str, int, str]]:
    """The steps of a cycle as reported: walked from the step after the
    victim's, so the victim's own wait closes it."""
    at = [step[0] for step in steps].index(victim)
    return steps[at + 1:] + steps[:at + 1]


def cycle_in(message: str) -> list[str]:
    """The steps named by a DeadlockError's message."""
    assert message.startswith("deadlock: ") and message.endswith(YOUNGEST), message
    return message[len("deadlock: "):-len(YOUNGEST)].split(" -> ")


def reported(system: actors.ActorSystem, count: int = 1) -> list[dict[str, Any]]:
    """``system.deadlocks`` once it holds ``count`` reports. The node files
    a report just after it fails the victim's wait, so a test that has the
    DeadlockError in hand may look a moment too early."""
    wait_for(lambda: len(system.deadlocks) >= count, what=f"{count} deadlock report(s)")
    return system.deadlocks


def check_broken(result: Any, victim: str, steps: list[tuple[str, int, str]],
                 system: actors.ActorSystem) -> None:
    """``result`` is what the victim of a cycle returned after catching its
    DeadlockError (``sample_deadlocks.caught``); ``steps`` the cycle from
    its first asker. Check the victim, the cycle it named (in order,
    closed by its own wait), the message, and the system's one report."""
    tag, label, cycle, message = result
    assert (tag, label) == ("caught", victim)
    check_cycle(cycle, closed_by(steps, victim))
    assert cycle_in(message) == cycle
    reports = reported(system)
    assert [report["cycle"] for report in reports] == [cycle]
    assert reports[0]["victim"] == cycle[-1]


def check_outcomes(members: dict[str, actors.ActorRef], victim: str) -> None:
    """Exactly the victim's ask failed; every other member's ask completed."""
    for label, ref in members.items():
        expected = ["deadlock"] if label == victim else ["answered"]
        assert ref.ask("outcomes", timeout=TIMEOUT) == expected, label


class Records(logging.Handler):
    """Keeps the records of one logger (thread-safe list appends)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def find(self, text: str) -> logging.LogRecord | None:
        return next((r for r in list(self.records) if text in r.getMessage()), None)


@pytest.fixture
def actors_log() -> Iterator[Records]:
    """The records of the ``actors`` logger in this process (children's
    records are shipped here)."""
    handler = Records()
    logger = logging.getLogger("actors")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


# -- ask cycles across processes -----------------------------------------------

def test_two_actor_cycle_is_broken_and_the_survivor_completes(system):
    """alice asks bob, bob asks alice: bob's ask (the youngest) fails with a
    DeadlockError naming both in order; bob catches it and answers, so
    alice's ask completes and so does the test's."""
    (alice, bob), (pa, pb) = spawn_peers(system, "alice", "bob")
    result = alice.ask(("chain", [bob, alice], True), timeout=TIMEOUT)
    check_broken(result, "bob", [("alice", pa, "asks bob ('chain', "),
                                 ("bob", pb, "asks alice ('chain', [], True)")], system)
    check_outcomes({"alice": alice, "bob": bob}, "bob")
    # bob's request was withdrawn from alice's mailbox: had it stayed, alice
    # would have handled it before this ask
    assert alice.ask("handled", timeout=TIMEOUT) == ["chain"]
    assert bob.ask("handled", timeout=TIMEOUT) == ["chain"]
    assert len(system.deadlocks) == 1


def test_three_actor_cycle_names_every_member_in_order(system):
    """alice -> bob -> carol -> alice: carol's ask is the victim; the
    message walks the cycle in order; alice and bob complete their asks."""
    (alice, bob, carol), (pa, pb, pc) = spawn_peers(system, "alice", "bob", "carol")
    result = alice.ask(("chain", [bob, carol, alice], True), timeout=TIMEOUT)
    check_broken(result, "carol", [("alice", pa, "asks bob ('chain', "),
                                   ("bob", pb, "asks carol ('chain', "),
                                   ("carol", pc, "asks alice ('chain', [], True)")], system)
    check_outcomes({"alice": alice, "bob": bob, "carol": carol}, "carol")
    for ref in (alice, bob, carol):  # carol's request to alice was never handled
        assert ref.ask("handled", timeout=TIMEOUT) == ["chain"]


def test_self_ask_is_a_cycle_of_one(system):
    """An actor asking itself from a blocking handler: a cycle of length 1,
    reported instead of waiting out the ask's timeout."""
    (alice,), (pa,) = spawn_peers(system, "alice")
    result = alice.ask(("chain", [alice], True), timeout=TIMEOUT)
    check_broken(result, "alice", [("alice", pa, "asks alice ('chain', [], True)")], system)
    assert alice.ask("outcomes", timeout=TIMEOUT) == ["deadlock"]
    assert alice.ask(("value", "still serving"), timeout=TIMEOUT) == "still serving"
    # the request to herself was withdrawn: only the test's messages were handled
    assert alice.ask("handled", timeout=TIMEOUT) == ["chain", "value"]


def test_cycle_of_proxy_calls(system):
    """The same cycle made of proxy calls: the steps say ``calls X.method(...)``."""
    (alice, bob), (pa, pb) = spawn_peers(system, "alice", "bob")
    result = alice.proxy(timeout=TIMEOUT).relay([bob, alice], True)
    check_broken(result, "bob", [("alice", pa, "calls bob.relay(["),
                                 ("bob", pb, "calls alice.relay([], True)")], system)
    check_outcomes({"alice": alice, "bob": bob}, "bob")
    assert alice.ask("handled", timeout=TIMEOUT) == ["relay"]


def test_uncaught_deadlock_error_travels_back_promptly(system):
    """Nobody catches: bob's DeadlockError travels back through alice's
    handler to the test, as DeadlockError with its cycle, well before the
    test's generous timeout (so no AskTimeout); both actors keep working."""
    (alice, bob), (pa, pb) = spawn_peers(system, "alice", "bob")
    with pytest.raises(actors.DeadlockError) as info:
        alice.ask(("chain", [bob, alice], False), timeout=TIMEOUT)
    cycle = cycle_in(str(info.value))
    check_cycle(cycle, [("alice", pa, "asks bob ('chain', "),
                        ("bob", pb, "asks alice ('chain', [], False)")])
    assert info.value.cycle == cycle
    assert [report["cycle"] for report in reported(system)] == [cycle]
    assert alice.ask(("value", 1), timeout=TIMEOUT) == 1
    assert bob.ask(("value", 2), timeout=TIMEOUT) == 2


def test_async_handlers_awaiting_ask_async_in_a_cycle(system):
    """``async def`` handlers that await ``ask_async`` keep their actor busy:
    a cycle of them is a deadlock too, and is broken the same way."""
    alice = system.spawn(AsyncPeer, "alice", name="alice")
    bob = system.spawn(AsyncPeer, "bob", name="bob")
    result = alice.ask(("chain", [bob, alice], True), timeout=TIMEOUT)
    tag, victim, cycle, message = result
    assert (tag, victim) == ("caught", "bob")
    steps = [r"alice \(pid \d+\) asks bob \('chain', \[",
             r"bob \(pid \d+\) asks alice \('chain', \[\], True\)"]
    assert len(cycle) == 2
    for text, pattern in zip(cycle, steps):
        assert re.match(pattern, text), (text, pattern)
    assert cycle_in(message) == cycle
    assert [report["cycle"] for report in reported(system)] == [cycle]
    check_outcomes({"alice": alice, "bob": bob}, "bob")
    assert alice.ask("handled", timeout=TIMEOUT) == ["chain"]


@zmq_only
def test_the_victim_is_the_youngest_request(system):
    """alice asks bob, then bob asks alice: bob's request is always the
    youngest, so bob is always the victim, even when alice loses the GIL
    to a computing thread right after sending (30 cycles in a row). The
    age of a wait is its request's, taken before the send."""
    (alice, bob), _ = spawn_peers(system, "alice", "bob")
    alice.tell(("compute", True))
    victims = [alice.ask(("chain", [bob, alice], True), timeout=TIMEOUT)[1] for _ in range(30)]
    alice.tell(("compute", False))
    assert len(reported(system, 30)) == 30
    assert victims == ["bob"] * 30


# -- other kinds of edges ------------------------------------------------------

@pytest.mark.parametrize("catch", [True, False], ids=["kid-catches", "uncaught"])
def test_on_start_asking_the_parent_that_spawns_it(system, catch):
    """A parent's handler spawns a child whose ``on_start`` asks the parent:
    the parent waits for that on_start (a spawn edge), the child for the
    parent. The child's ask fails with DeadlockError at once, not a hang.
    Caught, the child starts; uncaught, the spawn raises it in the parent,
    whose asker gets it."""
    parent = system.spawn(Spawner, name="parent")
    if catch:
        kid = parent.ask(("spawn_kid", "kid", True), timeout=TIMEOUT)
        tag, label, cycle, message = kid.ask("caught", timeout=TIMEOUT)
        assert (tag, label) == ("caught", "kid")
        assert system.lookup("kid") == kid
    else:
        with pytest.raises(actors.DeadlockError) as info:
            parent.ask(("spawn_kid", "kid", False), timeout=TIMEOUT)
        message = str(info.value)
        cycle = cycle_in(message)
        assert info.value.cycle == cycle
        assert system.lookup("kid") is None
    assert len(cycle) == 2
    assert re.fullmatch(r"parent \(pid \d+\) spawns kid and waits for its on_start", cycle[0])
    assert re.fullmatch(r"kid \(pid \d+\) asks parent 'hello'", cycle[1])
    assert cycle_in(message) == cycle
    assert [report["cycle"] for report in reported(system)] == [cycle]
    # the kid's request was withdrawn: the parent never handled it
    assert parent.ask("handled", timeout=TIMEOUT) == ["spawn_kid"]


def test_colocated_actors_nested_on_one_thread(system):
    """alice and bob share a process. alice's handler waits for carol (who
    holds her reply); meanwhile bob's handler runs nested on the same
    thread and asks alice. alice cannot resume before bob's handler
    returns, and bob waits for alice: a cycle through a "stack" edge. bob's
    ask (the only ask of the cycle) fails; then carol answers and alice
    completes."""
    alice = system.spawn(Peer, "alice", name="alice")
    bob = system.spawn(Peer, "bob", name="bob", colocate_with=alice)
    carol = system.spawn(Holder, name="carol")
    pid = alice.ask("pid", timeout=TIMEOUT)
    assert bob.ask("pid", timeout=TIMEOUT) == pid
    waiting = alice.ask_async(("via", carol, "hold"))
    wait_for(lambda: carol.ask("held", timeout=TIMEOUT) == 1, what="carol to hold alice's ask")
    tag, label, cycle, message = bob.ask(("via", alice, ("value", "poke")), timeout=TIMEOUT)
    assert (tag, label) == ("caught", "bob")
    assert cycle == [(f"alice (pid {pid}) waits for bob's handler to return (it runs "
                      "nested on the same thread)"),
                     f"bob (pid {pid}) asks alice ('value', 'poke')"]
    assert cycle_in(message) == cycle
    assert [report["cycle"] for report in reported(system)] == [cycle]
    assert not waiting.done()
    carol.ask(("release", "released"), timeout=TIMEOUT)
    assert waiting.result(TIMEOUT) == "released"
    assert alice.ask("handled", timeout=TIMEOUT) == ["via"]  # never the withdrawn poke
    assert bob.ask("handled", timeout=TIMEOUT) == ["via"]


# -- no false positives ----------------------------------------------------------

def test_a_cycle_beside_a_long_legitimate_wait_is_the_only_report(system):
    """dave waits a long time for carol (who holds the reply): not a cycle.
    Meanwhile alice and bob make one. Only the cycle is reported, dave's
    wait goes on well past the detection delay and completes normally."""
    (alice, bob, dave), (pa, pb, _) = spawn_peers(system, "alice", "bob", "dave")
    carol = system.spawn(Holder, name="carol")
    long_wait = dave.ask_async(("via", carol, "hold"))
    wait_for(lambda: carol.ask("held", timeout=TIMEOUT) == 1, what="carol to hold dave's ask")
    result = alice.ask(("chain", [bob, alice], True), timeout=TIMEOUT)
    check_broken(result, "bob", [("alice", pa, "asks bob ('chain', "),
                                 ("bob", pb, "asks alice ('chain', [], True)")], system)
    check_outcomes({"alice": alice, "bob": bob}, "bob")

    def dave_waited(seconds: float) -> bool:
        return any(e["waiter"] == "dave" and e["seconds"] >= seconds for e in system.wait_graph())
    wait_for(lambda: dave_waited(1.0), what="dave's wait to be older than 1 s")
    assert not long_wait.done()
    assert len(system.deadlocks) == 1
    carol.ask(("release", "done"), timeout=TIMEOUT)
    assert long_wait.result(TIMEOUT) == "done"
    assert len(system.deadlocks) == 1


@pytest.mark.timeout(120)
def test_ten_thousand_asks_in_a_non_circular_pattern_report_nothing(transport):
    """10,000 asks: a thread of the main program asks head, whose handler
    asks mid, whose handler asks tail (3 asks each, 2,000 times); another
    thread asks mid at the same time (2 asks each, 2,000 times). Many of
    these waits outlast the (short) detection delay, none is circular:
    zero reports, every answer right."""
    rounds = 2_000
    with own_system(transport, deadlock_detection=0.02) as system:
        (head, mid, tail), _ = spawn_peers(system, "head", "mid", "tail")

        def flood(ref: actors.ActorRef, route: list[actors.ActorRef]) -> int:
            window: set[concurrent.futures.Future] = set()
            good = 0
            for _ in range(rounds):
                if len(window) >= 50:
                    done, window = concurrent.futures.wait(
                        window, timeout=60, return_when=concurrent.futures.FIRST_COMPLETED)
                    good += sum(f.result() == ("end", "tail") for f in done)
                window.add(ref.ask_async(("chain", route, False)))
            done, not_done = concurrent.futures.wait(window, timeout=60)
            assert not not_done
            return good + sum(f.result() == ("end", "tail") for f in done)

        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            via_head = pool.submit(flood, head, [mid, tail])
            via_mid = pool.submit(flood, mid, [tail])
            assert (via_head.result(100), via_mid.result(100)) == (rounds, rounds)
        assert system.deadlocks == []
        assert len(head.ask("handled", timeout=TIMEOUT)) == rounds
        assert len(mid.ask("handled", timeout=TIMEOUT)) == 2 * rounds
        assert len(tail.ask("handled", timeout=TIMEOUT)) == 2 * rounds
        assert system.deadlocks == []


@pytest.mark.timeout(90)
def test_waits_that_cross_a_reply_in_flight_are_not_reported(transport):
    """ponger replies to a ping and at once asks pinger back; the pinger's
    next ping goes out once that poke is answered. So each wait of one
    begins while the other's reply is in flight. A thread computing in the
    pinger's process makes it read each pong late, and the detection delay
    is short enough that every wait is reported: the node often sees both
    edges at once (with the detector's confirmation step removed, this test
    gets false reports). That picture is never a cycle: zero reports."""
    rounds = 200
    with own_system(transport, deadlock_detection=0.004) as system:
        pinger = system.spawn(Pinger, name="pinger")
        ponger = system.spawn(Ponger, pinger, name="ponger")
        assert pinger.ask(("run", ponger, rounds), timeout=30) == [rounds, 0]
        assert ponger.ask("pokes", timeout=TIMEOUT) == rounds
        assert system.deadlocks == []


def test_detection_off_reports_nothing(transport):
    """deadlock_detection=None: a cycle is not reported; the test's ask
    times out, and the handlers' own asks time out later (bob's request,
    never withdrawn, is then handled by alice)."""
    with own_system(transport, deadlock_detection=None) as system:
        alice = system.spawn(Peer, "alice", 2.0, name="alice")
        bob = system.spawn(Peer, "bob", 2.0, name="bob")
        with pytest.raises(actors.AskTimeout):
            alice.ask(("chain", [bob, alice], True), timeout=1.0)
        assert system.wait_graph() == []
        assert alice.ask("handled", timeout=TIMEOUT) == ["chain", "chain"]
        assert system.deadlocks == []


# -- the wait-for graph as data ------------------------------------------------------

def test_wait_graph_lists_a_long_wait(system):
    """A thread of the main program ("client") asks alice, who waits for
    carol: both edges are listed, with their names, uids, kind, message,
    age and text; once carol answers, the graph empties."""
    alice = system.spawn(Peer, "alice", name="alice")
    carol = system.spawn(Holder, name="carol")
    pid = alice.ask("pid", timeout=TIMEOUT)
    answers: list[Any] = []
    client = threading.Thread(
        target=lambda: answers.append(alice.ask(("via", carol, "hold"), timeout=30)),
        name="client")
    client.start()
    try:
        def edges() -> dict[str, dict[str, Any]] | None:
            found = {e["waiter"]: e for e in system.wait_graph()}
            return found if {"alice", "main program thread 'client'"} <= set(found) else None
        graph = wait_for(edges, what="both waits in the graph")
        edge = graph["alice"]
        assert edge["waiter_uid"] == alice.uid
        assert (edge["target"], edge["target_uid"]) == ("carol", carol.uid)
        assert (edge["kind"], edge["waits_on"]) == ("ask", "'hold'")
        assert edge["seconds"] >= 0.05  # a quarter of the 0.2 s delay
        assert edge["text"] == f"alice (pid {pid}) asks carol 'hold'"
        main = graph["main program thread 'client'"]
        assert main["waiter_uid"] is None
        assert (main["target"], main["target_uid"], main["kind"]) == ("alice", alice.uid, "ask")
        assert main["waits_on"].startswith("('via', ")
        assert system.deadlocks == []
    finally:
        carol.ask(("release", "answer"), timeout=TIMEOUT)
        client.join(TIMEOUT)
    assert answers == ["answer"]
    wait_for(lambda: system.wait_graph() == [], what="the graph to empty")


# -- quiescence ----------------------------------------------------------------------

def test_quiescence_fails_a_wait_nothing_will_ever_answer(transport):
    """quiescence on: a busy actor (not blocked) is not reported, however
    long it works; then the test asks carol, who defers the reply and
    never sends it: every actor is idle, nothing is in flight, so the ask
    fails with DeadlockError instead of hanging."""
    with own_system(transport, quiescence=0.3) as system:
        busy = system.spawn(Busy, name="busy")
        carol = system.spawn(Holder, name="carol")
        assert busy.ask(("work", 1.0), timeout=TIMEOUT) == "worked"
        with pytest.raises(actors.DeadlockError) as info:
            carol.ask("hold", timeout=TIMEOUT)
        text = str(info.value)
        assert text.startswith("no progress is possible")
        assert "carol" in text and "holds 1 deferred reply" in text
        assert carol.ask("held", timeout=TIMEOUT) == 1  # carol itself is fine


@zmq_only
def test_quiescence_counts_a_timed_wait_as_progress(transport):
    """alice waits for carol (who never answers) with a 1.5 s timeout: that
    wait will end, so the system is not stuck and the test's wait on alice
    is not failed; it gets alice's AskTimeout when hers expires."""
    with own_system(transport, quiescence=0.3) as system:
        alice = system.spawn(Peer, "alice", 1.5, name="alice")
        carol = system.spawn(Holder, name="carol")
        with pytest.raises(actors.AskTimeout, match="within 1.5 s"):
            alice.ask(("via", carol, "hold"), timeout=TIMEOUT)
        assert carol.ask("held", timeout=TIMEOUT) == 1


def test_quiescence_off_lets_the_wait_time_out(system):
    """quiescence off (the default): the same wait just times out."""
    carol = system.spawn(Holder, name="carol")
    with pytest.raises(actors.AskTimeout):
        carol.ask("hold", timeout=1.0)
    assert system.deadlocks == []
    assert carol.ask("held", timeout=TIMEOUT) == 1


# -- deferred replies -----------------------------------------------------------------

def test_deferred_reply_is_sent_from_a_later_handler(system):
    """The handler's return value is ignored; the actor serves other
    messages meanwhile; a later handler sends the reply (and another one
    fails its reply with an exception, raised at the asker)."""
    carol = system.spawn(Holder, name="carol")
    first = carol.ask_async("hold")
    second = carol.ask_async("hold")
    assert carol.ask("held", timeout=TIMEOUT) == 2
    assert carol.ask("ping", timeout=TIMEOUT) == "pong"
    assert not first.done() and not second.done()
    assert carol.ask(("release", [1, 2]), timeout=TIMEOUT) == 1
    assert first.result(TIMEOUT) == [1, 2]
    assert carol.ask(("fail", "no stock"), timeout=TIMEOUT) == 0
    with pytest.raises(ValueError, match="no stock"):
        second.result(TIMEOUT)


def test_deferred_reply_sent_twice_or_from_a_thread(system):
    """A second send raises RuntimeError (the asker got the first);
    ``done`` says whether it was sent; a thread of the actor's process may
    send it; a handler that raises after deferring answers with its error."""
    carol = system.spawn(Holder, name="carol")
    pending = carol.ask_async("hold")
    assert carol.ask("held", timeout=TIMEOUT) == 1
    report = carol.ask(("release_twice", "once"), timeout=TIMEOUT)
    assert report == {"before": False, "after": True, "error": "RuntimeError",
                      "text": "this reply was already sent"}
    assert pending.result(TIMEOUT) == "once"
    assert carol.ask(("from_thread", "threaded"), timeout=TIMEOUT) == "threaded"
    with pytest.raises(KeyError, match="raised after deferring"):
        carol.ask(("defer_then_raise", "raised after deferring"), timeout=TIMEOUT)
    assert carol.ask("held", timeout=TIMEOUT) == 0


def test_actor_stopped_with_a_pending_reply_fails_the_asker(system):
    """An actor that ends before sending its deferred reply: the asker gets
    ActorDeadError (not a timeout)."""
    carol = system.spawn(Holder, name="carol")
    pending = carol.ask_async("hold")
    assert carol.ask("held", timeout=TIMEOUT) == 1
    carol.stop()
    with pytest.raises(actors.ActorDeadError):
        pending.result(TIMEOUT)


def test_defer_reply_outside_an_ask_raises(system):
    """defer_reply in ``on_start`` or in a tell's handler raises ActorError."""
    carol = system.spawn(Holder, name="carol")
    carol.tell(("tell_defer",))
    assert carol.ask("errors", timeout=TIMEOUT) == [("on_start", "ActorError"),
                                                    ("tell", "ActorError")]


# -- hung children ----------------------------------------------------------------------

def check_hung_restart(system: actors.ActorSystem, log: Records, stuck: str, frame: str) -> None:
    """A supervised child with hang_timeout=1 gets stuck in the handler of
    ``stuck`` (in function ``frame``): the stacks of its process are logged
    naming that frame, the process is killed, the pending ask fails with
    ActorDeadError, the supervisor restarts the child as "hung", and its
    ref works again."""
    system.spawn(actors.Supervisor, [ChildSpec("stuck", Hanger, hang_timeout=1.0)], name="sup")
    ref = system.lookup("sup/stuck")
    assert ref is not None
    old_pid = ref.ask("pid", timeout=TIMEOUT)
    with pytest.raises(actors.ActorDeadError):
        ref.ask(stuck, timeout=20)
    record = wait_for(lambda: log.find(" hung: "), what="the hung record")
    text = record.getMessage()
    assert record.levelno == logging.ERROR
    assert f"actor sup/stuck (pid {old_pid}) hung: its handler of '{stuck}'" in text
    assert "past its hang_timeout of 1.0 s" in text
    assert re.search(rf'File ".*sample_deadlocks\.py", line \d+ in {frame}\n', text), text
    assert re.search(r'File ".*sample_deadlocks\.py", line \d+ in receive\n', text), text
    new_pid = wait_for(lambda: (p := ask_retrying(ref, "pid")) != old_pid and p,
                       what="a new incarnation")
    assert new_pid != old_pid
    entry = find(system.tree(), "sup/stuck")
    assert entry is not None
    assert (entry["last_exit"], entry["restarts"], entry["state"]) == ("hung", 1, "running")
    assert ref.ask("restarted_with", timeout=TIMEOUT) == {"type": "ActorDeadError",
                                                          "reason": "hung"}


@pytest.mark.timeout(60)
def test_child_in_a_threading_deadlock_is_restarted_as_hung(system, actors_log):
    """A handler acquires a plain Lock twice: a deadlock of one thread,
    which the wait-for graph cannot see; hang_timeout catches it."""
    check_hung_restart(system, actors_log, "lock_twice", "lock_twice")


@zmq_only
@pytest.mark.timeout(60)
def test_child_in_an_endless_loop_is_restarted_as_hung(system, actors_log):
    """A handler that never returns nor waits (an endless loop) is hung too."""
    check_hung_restart(system, actors_log, "spin", "spin_forever")


# -- validation -------------------------------------------------------------------------

@pytest.mark.parametrize("value", [0, -1, -0.5, "x", True, float("inf")])
def test_childspec_rejects_a_bad_hang_timeout(value):
    with pytest.raises(ValueError, match="hang_timeout"):
        ChildSpec("a", Hanger, hang_timeout=value)


def test_childspec_accepts_a_hang_timeout():
    assert ChildSpec("a", Hanger, hang_timeout=2).hang_timeout == 2
    assert ChildSpec("a", Hanger).hang_timeout is None


@pytest.mark.parametrize("option", ["deadlock_detection", "quiescence"])
@pytest.mark.parametrize("value", [0, -1, "x", True, 3600])
def test_actor_system_rejects_bad_detection_settings(option, value):
    with pytest.raises(ValueError, match=option):
        actors.ActorSystem(**{option: value})
