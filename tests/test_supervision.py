"""Supervision: child specs, strategies, restart types, intensity and
escalation, shutdown order and timeouts, every kind of crash, refs that
survive restarts, watch/link, simple_one_for_one and the dynamic API.

Every test uses real processes and real signals. Nothing here sleeps to
wait for something: tests wait on conditions with a deadline (asks, or
``wait_for`` polling a condition), and the ``system`` fixture checks that
no process it started is left behind.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import ask_retrying, find, wait_for, wait_gone
from sample_supervision import (
    BadInit,
    BadInitError,
    BadStrategy,
    GatedWorker,
    LoggedSupervisor,
    Outer,
    Pool,
    Refuser,
    SlowRestart,
    Stuck,
    Trio,
    Worker,
)

import actors
from actors import ChildSpec

# Tests where the transport does not matter run over zmq only (this
# overrides the parametrized ``transport`` fixture that ``system`` uses).
zmq_only = pytest.mark.parametrize("transport", ["zmq"])

CRASH = "crashed: ValueError('x')"


# -- helpers -------------------------------------------------------------------

def wait_new_pid(ref: actors.ActorRef, old_pid: int, timeout: float = 15.0) -> int:
    """Wait until ``ref`` answers from a process other than ``old_pid``."""
    deadline = time.monotonic() + timeout

    def new_pid() -> int | None:
        pid = ask_retrying(ref, "pid", max(0.5, deadline - time.monotonic()))
        return pid if pid != old_pid else None
    return wait_for(new_pid, timeout, what=f"{ref!r} to answer from a pid other than {old_pid}")


def is_dead(ref: actors.ActorRef) -> bool:
    try:
        ref.ask("pid", timeout=10)
    except actors.ActorDeadError:
        return True
    return False


def children(sup: actors.ActorRef) -> dict[str, actors.ChildInfo]:
    return {info.name: info for info in sup.proxy(timeout=30).which_children()}


def events(path: str) -> list[str]:
    """The log's lines without their pids: ``["start a", "stop a", ...]``."""
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [line.rsplit(" ", 1)[0] for line in f.read().splitlines()]


def logged_pids(path: str) -> set[int]:
    with open(path) as f:
        return {int(line.rsplit(" ", 1)[1]) for line in f.read().splitlines()}


def worker(name: str, log: str | None = None, **options: Any) -> ChildSpec:
    return ChildSpec(name, Worker, args=(name, log), **options)


@contextlib.contextmanager
def own_system(transport: str, **options: Any) -> Iterator[actors.ActorSystem]:
    """An ActorSystem with non-default options, checked like the fixture's:
    after shutdown, every process it started is gone."""
    system = actors.ActorSystem(transport, **options)
    try:
        yield system
    finally:
        system.shutdown()
        assert wait_gone(system._node.started_pids, 5) == []
        assert not os.path.exists(system._node.rundir)


def wait_restart_in_progress(system: actors.ActorSystem, name: str, old_pid: int) -> None:
    """Wait until a new incarnation of ``name`` is starting (its process is
    up, its on_start/on_restart runs): by then every process holds what is
    sent to the ref."""
    def starting() -> bool:
        entry = find(system.tree(), name) or {}
        return entry.get("state") == "starting" and entry.get("pid") not in (None, old_pid)
    wait_for(starting, what=f"{name} to be restarting")


# -- validation ------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, error, match", [
    ({"name": ""}, ValueError, "name"),
    ({"name": "a/b"}, ValueError, "name"),
    ({"name": 3}, ValueError, "name"),
    ({"actor_class": dict}, TypeError, "Actor subclass"),
    ({"actor_class": 42}, TypeError, "Actor subclass"),
    ({"actor_class": "no_colon_here"}, TypeError, "Actor subclass"),
    ({"args": 5}, TypeError, "args"),
    ({"kwargs": [("k", 1)]}, TypeError, "kwargs"),
    ({"restart": "sometimes"}, ValueError, "restart"),
    ({"shutdown": 0}, ValueError, "shutdown"),
    ({"shutdown": -1.0}, ValueError, "shutdown"),
    ({"shutdown": float("inf")}, ValueError, "shutdown"),
    ({"shutdown": True}, ValueError, "shutdown"),
    ({"shutdown": "soon"}, ValueError, "shutdown"),
])
def test_childspec_rejects_bad_arguments(kwargs, error, match):
    """ChildSpec validates every field when it is built, naming the field."""
    fields = {"name": "a", "actor_class": Worker, **kwargs}
    with pytest.raises(error, match=match):
        ChildSpec(**fields)


def test_childspec_normalizes_good_arguments():
    """A valid spec keeps its values; the class travels as 'module:Class' and
    args as a tuple; 'brutal_kill' and the OTP defaults are accepted."""
    spec = ChildSpec("a", Worker, args=["a"], kwargs={"log_path": None},
                     restart="transient", shutdown="brutal_kill")
    assert spec.actor_class == "sample_supervision:Worker"
    assert spec.args == ("a",)
    assert (spec.kwargs, spec.restart, spec.shutdown) == ({"log_path": None}, "transient",
                                                          "brutal_kill")
    default = ChildSpec("b", "sample_supervision:Worker")
    assert (default.restart, default.shutdown, default.args) == ("permanent", 5.0, ())


@zmq_only
@pytest.mark.parametrize("children, options, error, match", [
    ([worker("a")], {"strategy": "one_for_some"}, ValueError, "strategy"),
    ([worker("a")], {"max_restarts": -1}, ValueError, "max_restarts"),
    ([worker("a")], {"max_restarts": "3"}, ValueError, "max_restarts"),
    ([worker("a")], {"max_restarts": True}, ValueError, "max_restarts"),
    ([worker("a")], {"max_seconds": 0}, ValueError, "max_seconds"),
    ([worker("a"), worker("a")], {}, ValueError, "unique"),
    ([worker("a"), worker("b")], {"strategy": "simple_one_for_one"}, ValueError,
     "simple_one_for_one"),
    ([{"name": "a"}], {}, TypeError, "ChildSpec"),
])
def test_supervisor_rejects_bad_arguments_at_spawn(system, children, options, error, match):
    """Bad supervisor arguments raise at the spawn call, as their own class,
    and no supervisor (nor child) is left registered."""
    with pytest.raises(error, match=match):
        system.spawn(actors.Supervisor, children, name="sup", **options)
    assert system.lookup("sup") is None
    assert system.lookup("sup/a") is None
    assert system.tree() == []


@zmq_only
def test_supervisor_class_attributes_are_validated_at_spawn(system):
    """A Supervisor subclass with an invalid class attribute fails at spawn;
    start_child with something that is not a ChildSpec fails at its call."""
    with pytest.raises(ValueError, match="one_for_some"):
        system.spawn(BadStrategy, name="bad")
    assert system.lookup("bad") is None
    sup = system.spawn(actors.Supervisor, [], name="sup")
    with pytest.raises(TypeError, match="ChildSpec"):
        sup.proxy(timeout=30).start_child("x")
    with pytest.raises(TypeError, match="ChildSpec"):
        sup.proxy(timeout=30).start_child(worker("x"), args=(1,))
    assert children(sup) == {}


# -- strategies x restart types -----------------------------------------------------

# (restart type of the middle child b, how b ends), under every strategy
ENDINGS = [
    ("permanent", "crash"),      # exception in a tell: restarted, with its group
    ("permanent", "stop"),       # ref.stop() from outside: a normal exit, restarted (OTP)
    ("transient", "crash"),      # restarted, with its group
    ("transient", "self_stop"),  # self.stop(): a normal exit, ends for good
    ("temporary", "crash"),      # never restarted, its spec is dropped
]
GROUPS = {"one_for_one": ["b"], "one_for_all": ["a", "b", "c"], "rest_for_one": ["b", "c"]}


def strategy_case(system, tmp_path, strategy: str, restart: str, ending: str) -> None:
    log = str(tmp_path / "log")
    specs = [worker("a", log), worker("b", log, restart=restart), worker("c", log)]
    sup = system.spawn(actors.Supervisor, specs, strategy=strategy, max_restarts=10,
                       max_seconds=60, name="sup")
    refs = {n: system.lookup(f"sup/{n}") for n in "abc"}
    pids = {n: refs[n].ask("pid", timeout=10) for n in "abc"}
    assert events(log) == ["start a", "start b", "start c"]

    b = refs["b"]
    if ending == "crash":
        b.tell("raise")
    elif ending == "stop":
        b.stop()
    else:
        b.tell("stop")
    normal = ending != "crash"
    restarted = not (restart == "temporary" or (restart == "transient" and normal))

    if restarted:
        wait_new_pid(b, pids["b"])
        group = GROUPS[strategy]
    else:
        wait_for(lambda: system.lookup("sup/b") is None, what="sup/b to end for good")
        group = []
    # the supervisor handles one notice at a time: this call sees its outcome
    infos = children(sup)

    expected = ["stop b"] if normal else []  # its own on_stop, when orderly
    expected += [f"stop {n}" for n in reversed(group) if n != "b"]  # last started first
    expected += [f"start {n}" for n in group]  # then in start order
    assert events(log)[3:] == expected

    for n in "ac":
        info = infos[n]
        assert info.ref == refs[n] == system.lookup(f"sup/{n}")
        assert info.status == "running"
        now = refs[n].ask("info", timeout=10)
        if n in group:
            assert now["pid"] != pids[n] and now["restarted_with"] is None
            assert (info.restarts, info.last_exit) == (1, "stopped")
        else:
            assert now["pid"] == pids[n] and now["restarted_with"] == "not restarted"
            assert (info.restarts, info.last_exit) == (0, None)

    if restarted:
        assert system.lookup("sup/b") == b == infos["b"].ref
        assert (infos["b"].status, infos["b"].restarts) == ("running", 1)
        got = b.ask("restarted_with", timeout=10)
        if normal:
            assert infos["b"].last_exit == "stopped"
            assert got["is_dead_error"] and got["reason"] == "stopped"
        else:
            assert infos["b"].last_exit == CRASH
            assert got["type"] == "ValueError" and got["text"] == "x"
    else:
        assert is_dead(b)
        if restart == "temporary":
            assert "b" not in infos  # a temporary child's spec is forgotten
            before = system.dead_letters
            b.tell(("add", 1))
            assert system.dead_letters >= before + 1
        else:
            assert (infos["b"].status, infos["b"].last_exit) == ("terminated", "stopped")
            assert infos["b"].pid is None


@zmq_only
@pytest.mark.parametrize("restart, ending", ENDINGS)
@pytest.mark.parametrize("strategy", ["one_for_one", "one_for_all", "rest_for_one"])
def test_strategy_and_restart_type(system, tmp_path, strategy, restart, ending):
    """Children a, b, c (b with the given restart type) start in order; b
    ends. Permanent b is restarted after a crash and after an outside stop,
    transient b only after a crash, temporary b never (its spec is dropped).
    When b is restarted, the strategy picks who restarts with it: nobody
    (one_for_one), everyone (one_for_all) or those started after it
    (rest_for_one); they are stopped last-started first (on_stop runs), then
    all restarted in start order, keeping their refs; on_restart gets the
    crash's exception (or ActorDeadError 'stopped') for b, None for the
    others. A child b that is not restarted leaves its siblings alone."""
    strategy_case(system, tmp_path, strategy, restart, ending)


@pytest.mark.parametrize("transport", ["pipe"])
def test_one_for_all_over_pipes(system, tmp_path):
    """one_for_all restarts every child over the pipe transport too (its
    relay holds and re-routes the slots of all the restarted actors)."""
    strategy_case(system, tmp_path, "one_for_all", "permanent", "crash")


# -- crash kinds -----------------------------------------------------------------------

def sigkill(ref: actors.ActorRef, pid: int) -> None:
    os.kill(pid, signal.SIGKILL)


CRASHES = {
    # kind: (how, last_exit, on_restart's exception type, its reason)
    "exception": (lambda ref, pid: ref.tell("raise"), CRASH, "ValueError", None),
    "exit": (lambda ref, pid: ref.tell(("exit", 3)), "exit code 3", "ActorDeadError",
             "exit code 3"),
    "sigkill": (sigkill, "killed by SIGKILL", "ActorDeadError", "killed by SIGKILL"),
    "sigsegv": (lambda ref, pid: ref.tell("segv"), "killed by SIGSEGV", "ActorDeadError",
                "killed by SIGSEGV"),
    "memory": (lambda ref, pid: ref.tell("oom"), "crashed: MemoryError()", "MemoryError", None),
}


@pytest.mark.parametrize("transport, kind", [
    *[("zmq", kind) for kind in CRASHES],
    ("pipe", "exception"),  # the exception travels back over the pipe relay
    ("pipe", "sigkill"),
])
def test_each_crash_kind_is_detected_and_reported(system, kind):
    """An exception in a tell, os._exit(3), SIGKILL, SIGSEGV (ctypes) and a
    MemoryError all count as crashes: the child is restarted in a new
    process under the same ref, and its cause is reported the same way in
    which_children().last_exit, tree()['last_exit'] and on_restart's exc."""
    how, last_exit, exc_type, reason = CRASHES[kind]
    sup = system.spawn(actors.Supervisor, [worker("w")], name="sup")
    w = system.lookup("sup/w")
    pid = w.ask("pid", timeout=10)
    how(w, pid)
    assert wait_gone([pid], 10) == []
    new_pid = wait_new_pid(w, pid)

    info = children(sup)["w"]
    assert (info.ref, info.pid, info.status) == (w, new_pid, "running")
    assert (info.restarts, info.last_exit, info.supervisor) == (1, last_exit, False)

    entry = find(system.tree(), "sup/w")
    assert entry is not None
    assert (entry["ref"], entry["pid"], entry["state"]) == (w, new_pid, "running")
    assert (entry["restarts"], entry["last_exit"]) == (1, last_exit)

    got = w.ask("restarted_with", timeout=10)
    assert got["type"] == exc_type
    if reason is not None:
        assert got["is_dead_error"] and got["reason"] == reason


def test_asks_pending_on_a_dying_child_fail_at_once(system, tmp_path):
    """An ask pending when a supervised child is killed fails with
    ActorDeadError naming the signal at once (not at its timeout); the ref
    then answers from the new incarnation."""
    log = str(tmp_path / "log")
    system.spawn(actors.Supervisor, [worker("w", log)], name="sup")
    w = system.lookup("sup/w")
    pid = w.ask("pid", timeout=10)
    future = w.ask_async(("sleep", 60))
    wait_for(lambda: "sleeping w" in events(log), what="the handler to start")
    started = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    error = future.exception(timeout=30)
    assert isinstance(error, actors.ActorDeadError)
    assert error.reason == "killed by SIGKILL"
    assert time.monotonic() - started < 10
    assert wait_new_pid(w, pid) != pid


# -- refs across restarts -----------------------------------------------------------

N = 200


def test_tells_racing_a_kill_are_at_most_once_and_the_ref_keeps_working(system):
    """Tells sent right after os.kill(SIGKILL) returns race the death: those
    that reach the dying process (its socket or mailbox) are lost, the rest
    are held for the new incarnation (delivery is at most once, DESIGN.md).
    Pinned: none is handled twice, the same ref reaches the new incarnation,
    and tells sent after that all arrive, in order, before a later ask."""
    sup = system.spawn(actors.Supervisor, [worker("w")], name="sup")
    w = system.lookup("sup/w")
    pid = w.ask("pid", timeout=10)
    os.kill(pid, signal.SIGKILL)
    for _ in range(N):
        w.tell(("add", 1))
    survived = ask_retrying(w, "count")
    assert 0 <= survived <= N
    assert w.ask("pid", timeout=10) != pid
    for _ in range(N):
        w.tell(("add", 1))
    assert w.ask("count", timeout=10) == survived + N
    assert system.lookup("sup/w") == w
    assert children(sup)["w"].restarts == 1


def test_messages_sent_once_the_death_is_noticed_reach_the_new_incarnation(system):
    """Once the death of a supervised child is noticed here (an ask pending
    on it has failed), N tells sent to its ref are held and all handled by
    the new incarnation, before a later ask."""
    sup = system.spawn(actors.Supervisor, [worker("w")], name="sup")
    w = system.lookup("sup/w")
    pid = w.ask("pid", timeout=10)
    pending = w.ask_async(("sleep", 60))
    os.kill(pid, signal.SIGKILL)
    assert isinstance(pending.exception(timeout=30), actors.ActorDeadError)
    for _ in range(N):
        w.tell(("add", 1))
    assert ask_retrying(w, "count") == N
    assert w.ask("pid", timeout=10) != pid
    assert children(sup)["w"].restarts == 1


def test_messages_sent_while_restarting_are_held_and_delivered(system):
    """While a new incarnation is starting (its on_restart takes 0.5 s), what
    is sent to the ref is held and delivered to it, all of it, before a
    later ask from the same sender; tree() shows the child as not running
    meanwhile."""
    system.spawn(actors.Supervisor, [ChildSpec("w", SlowRestart, args=("w", None, 0.5))],
                 name="sup")
    w = system.lookup("sup/w")
    pid = w.ask("pid", timeout=10)
    w.tell("raise")
    wait_restart_in_progress(system, "sup/w", pid)
    for _ in range(N):
        w.tell(("add", 1))
    assert ask_retrying(w, "count") == N
    assert w.ask("pid", timeout=10) != pid
    # the node learns "running" by its own notice, which may trail the reply
    wait_for(lambda: find(system.tree(), "sup/w")["state"] == "running",
             what="sup/w shown running")


@zmq_only
def test_a_child_waiting_for_its_group_shows_as_restarting(system, tmp_path):
    """one_for_all: while the crashed child waits for a sibling whose on_stop
    hangs (killed after its 1 s shutdown), tree() shows it 'restarting' with
    no pid, and what is sent to it meanwhile reaches its new incarnation.
    The sibling killed at the end of its shutdown time reports
    'killed by SIGKILL'."""
    log = str(tmp_path / "log")
    sup = system.spawn(actors.Supervisor, [
        worker("b", log), ChildSpec("c", Stuck, args=("c", log), shutdown=1.0)],
        strategy="one_for_all", name="sup")
    b = system.lookup("sup/b")
    pid = b.ask("pid", timeout=10)
    b.tell("raise")
    wait_for(lambda: "stopping c" in events(log), what="c's on_stop to begin")
    entry = find(system.tree(), "sup/b")
    assert (entry["state"], entry["pid"], entry["last_exit"]) == ("restarting", None, CRASH)
    for _ in range(N):
        b.tell(("add", 1))
    assert ask_retrying(b, "count") == N
    assert b.ask("pid", timeout=10) != pid
    info = children(sup)
    assert (info["b"].restarts, info["b"].last_exit) == (1, CRASH)
    assert (info["c"].restarts, info["c"].last_exit) == (1, "killed by SIGKILL")


def test_restart_buffer_bounds_what_is_held(transport):
    """With restart_buffer=5, a restarting child's ref holds the first 5
    tells; the rest are dead letters, and an ask past the full buffer fails
    at once with ActorDeadError 'restart buffer full'. The 5 held tells
    reach the new incarnation."""
    with own_system(transport, restart_buffer=5) as system:
        system.spawn(actors.Supervisor,
                     [ChildSpec("w", SlowRestart, args=("w", None, 1.0))], name="sup")
        w = system.lookup("sup/w")
        pid = w.ask("pid", timeout=10)
        w.tell("raise")
        wait_restart_in_progress(system, "sup/w", pid)
        before = system.dead_letters
        for _ in range(8):
            w.tell(("add", 1))
        with pytest.raises(actors.ActorDeadError) as info:
            w.ask("count", timeout=30)
        assert info.value.reason == "restart buffer full"
        assert ask_retrying(w, "count") == 5
        assert system.dead_letters >= before + 3


@pytest.mark.parametrize("transport", ["zmq"])
def test_restarts_without_spares_start_fresh_processes(transport):
    """spares=0 keeps no warm process: the supervisor, its child and the
    child's restart are exactly three processes (besides the template
    process, where there is one), and the restart works."""
    with own_system(transport, spares=0) as system:
        sup = system.spawn(actors.Supervisor, [worker("w")], name="sup")
        w = system.lookup("sup/w")
        pid = w.ask("pid", timeout=10)
        os.kill(pid, signal.SIGKILL)
        new_pid = wait_new_pid(w, pid)
        assert children(sup)["w"].pid == new_pid
        pool = system.spare_pool()
        assert pool["forked"] + pool["spawned"] == 3 and pool["ready"] == 0
        template = {pool["template"]} - {None}
        assert len(system._node.started_pids - template) == 3


# -- intensity and escalation ------------------------------------------------------

@zmq_only
def test_intensity_exceeded_fails_the_top_level_supervisor(system, tmp_path):
    """With max_restarts=2, two crashes are restarted; the third exceeds the
    intensity: the supervisor stops its other children in order (on_stop
    runs) and fails; being top-level, it shuts the system down, and join()
    raises ActorError naming it."""
    log = str(tmp_path / "log")
    system.spawn(actors.Supervisor, [worker("a", log), worker("b", log)], max_restarts=2,
                 max_seconds=60, name="sup")
    a = system.lookup("sup/a")
    for _ in range(2):
        pid = a.ask("pid", timeout=10)
        a.tell("raise")
        wait_new_pid(a, pid)
    assert system.join(timeout=0.01) is False  # still up
    a.tell("raise")
    with pytest.raises(actors.ActorError, match="sup") as info:
        system.join(timeout=30)
    assert system.failure is info.value
    assert "intensity" in str(system.failure)
    assert events(log) == ["start a", "start b", "start a", "start a", "stop b"]
    assert wait_gone(logged_pids(log), 10) == []


@zmq_only
def test_a_failed_restart_is_retried_through_the_supervisors_mailbox(system, tmp_path):
    """While a child's restarts keep failing, the supervisor still answers queries (the retries go through its mailbox, OTP's try_again_restart); once a restart succeeds the child runs again under the same ref."""
    gate, log = str(tmp_path / "gate"), str(tmp_path / "log")
    sup = system.spawn(actors.Supervisor, [ChildSpec("g", GatedWorker, args=(gate, log))],
                       max_restarts=10_000, max_seconds=60.0, name="gated")
    child = system.lookup("gated/g")
    first = child.ask("pid", timeout=10)
    child.tell("crash")

    def refused(times: int) -> bool:
        if not os.path.exists(log):
            return False
        with open(log) as f:
            return len(f.read().splitlines()) >= times

    wait_for(lambda: refused(2), what="two refused restarts")
    [info] = sup.proxy(timeout=10).which_children()  # answered between two attempts
    assert info.status == "restarting"
    wait_for(lambda: refused(3), what="a third refused restart")
    open(gate, "w").close()
    pid = ask_retrying(child, "pid")
    assert pid != first
    wait_for(lambda: sup.proxy(timeout=10).which_children()[0].status == "running",
             what="the child running again")


def test_a_failed_restart_is_retried_once_its_process_is_gone(system, tmp_path):
    """The next attempt after a failed restart begins only once the failed
    attempt's process is gone. That process bound the slot's address, and
    as it exits it removes the socket file (here slowly, as on a loaded
    machine): had the next attempt bound the address already, its socket
    file would be gone, and what is sent to the ref would never arrive."""
    log = str(tmp_path / "log")
    system.spawn(actors.Supervisor, [ChildSpec("r", Refuser, args=(log, 2))],
                 max_restarts=100, max_seconds=60.0, name="sup")
    child = system.lookup("sup/r")
    first = child.ask("pid", timeout=10)
    child.tell("crash")
    assert ask_retrying(child, "pid", timeout=10) != first
    with open(log) as f:
        lines = f.read().splitlines()
    # the first start, two refused attempts, the one that succeeded
    assert [line.split()[1] for line in lines] == ["start", "gone", "gone", "gone"], lines


def test_intensity_counts_only_restarts_within_max_seconds(system):
    """Restarts older than max_seconds no longer count: with max_restarts=1
    and max_seconds=0.3, crashes more than 0.3 s apart (each restart takes
    0.5 s here) are restarted every time."""
    sup = system.spawn(actors.Supervisor,
                       [ChildSpec("w", SlowRestart, args=("w", None, 0.5))],
                       max_restarts=1, max_seconds=0.3, name="sup")
    w = system.lookup("sup/w")
    for _ in range(3):
        pid = w.ask("pid", timeout=10)
        w.tell("raise")
        wait_new_pid(w, pid)
    assert children(sup)["w"].restarts == 3
    assert system.failure is None


def test_escalation_through_two_levels(system):
    """outer (max 1 restart) supervises inner (max 1 restart) and a worker.
    Two crashes of inner's w1: inner gives up and fails; outer restarts it,
    and inner's children come back under the same refs. Two more crashes:
    inner fails again, outer exceeds its own intensity and fails; it is
    top-level, so the system shuts down and join() raises."""
    outer = system.spawn(Outer, name="outer")
    tree = system.tree()
    assert [e["name"] for e in tree] == ["outer"]
    top = tree[0]
    assert (top["supervisor"], top["restart"], top["class"]) == (
        True, None, "sample_supervision.Outer")
    assert [c["name"] for c in top["children"]] == ["outer/inner", "outer/side"]
    inner_entry = top["children"][0]
    assert (inner_entry["supervisor"], inner_entry["restart"]) == (True, "permanent")
    assert [c["name"] for c in inner_entry["children"]] == ["outer/inner/w1", "outer/inner/w2"]
    assert not inner_entry["children"][0]["supervisor"]

    inner = system.lookup("outer/inner")
    side = system.lookup("outer/side")
    w1, w2 = system.lookup("outer/inner/w1"), system.lookup("outer/inner/w2")
    side_pid = side.ask("pid", timeout=10)
    w2_pid = w2.ask("pid", timeout=10)
    inner_pid = find(system.tree(), "outer/inner")["pid"]

    def crash_w1_twice() -> None:
        pid = w1.ask("pid", timeout=10)
        w1.tell("raise")
        pid = wait_new_pid(w1, pid)  # inner restarted it (1 of 1)
        w1.tell("raise")             # inner gives up

    crash_w1_twice()
    # inner was restarted by outer: a new process, same refs for everyone
    wait_for(lambda: (find(system.tree(), "outer/inner") or {}).get("pid") not in (None,
                                                                                   inner_pid),
             what="inner to be restarted")
    info = children(outer)
    assert info["inner"].ref == inner == system.lookup("outer/inner")
    assert (info["inner"].restarts, info["inner"].supervisor) == (1, True)
    assert info["inner"].last_exit.startswith("crashed: ActorError")
    assert "intensity" in info["inner"].last_exit
    assert (info["side"].restarts, side.ask("pid", timeout=10)) == (0, side_pid)
    assert system.lookup("outer/inner/w1") == w1 and system.lookup("outer/inner/w2") == w2
    # restart counts span the restarts of their supervisor: w1 was restarted
    # once by the first inner and once with the second; w2 with the second
    inner_children = children(inner)
    assert [(c.name, c.restarts, c.last_exit) for c in inner_children.values()] == [
        ("w1", 2, CRASH), ("w2", 1, "stopped")]
    assert find(system.tree(), "outer/inner/w1")["restarts"] == 2
    # both restarted by the new inner (on_restart(None)), in new processes
    assert ask_retrying(w1, "restarted_with") is None
    assert ask_retrying(w2, "restarted_with") is None
    assert w2.ask("pid", timeout=10) != w2_pid
    assert system.failure is None

    crash_w1_twice()
    with pytest.raises(actors.ActorError, match="outer"):
        system.join(timeout=30)
    assert system.failure is not None
    assert system.lookup("outer") is None


# -- shutdown order and timeouts -----------------------------------------------------

@zmq_only
@pytest.mark.parametrize("how", ["sup.stop", "system.shutdown"])
def test_children_start_in_order_and_stop_in_reverse(system, tmp_path, how):
    """A tree (top: a, inner: [x, y], c) starts depth-first in declared
    order, each child started before the next, and stops in exactly the
    reverse order, each supervisor after its children, on sup.stop() as on
    system.shutdown(); every process ends."""
    log = str(tmp_path / "log")
    inner = ChildSpec("inner", LoggedSupervisor,
                      args=("inner", log, [worker("x", log), worker("y", log)]))
    top = system.spawn(LoggedSupervisor, "top", log, [worker("a", log), inner, worker("c", log)],
                       name="top")
    assert events(log) == ["start top", "start a", "start inner", "start x", "start y",
                           "start c"]
    if how == "sup.stop":
        top.stop()
    else:
        system.shutdown()
    assert events(log)[6:] == ["stop c", "stop y", "stop x", "stop inner", "stop a", "stop top"]
    assert wait_gone(logged_pids(log), 10) == []
    assert system.lookup("top/a") is None and system.tree() == []


@zmq_only
def test_shutdown_timeout_and_brutal_kill(system, tmp_path):
    """On the supervisor's stop, children stop last started first: the
    brutal_kill child is killed at once (its on_stop never runs), the child
    whose on_stop hangs is killed after its shutdown of 1 s (not the
    system's 5 s), and the first child stops normally."""
    log = str(tmp_path / "log")
    sup = system.spawn(actors.Supervisor, [
        worker("a", log),
        ChildSpec("stuck", Stuck, args=("stuck", log), shutdown=1.0),
        worker("brutal", log, shutdown="brutal_kill"),
    ], name="sup")
    assert events(log) == ["start a", "start stuck", "start brutal"]
    started = time.monotonic()
    sup.stop()
    elapsed = time.monotonic() - started
    assert events(log)[3:] == ["stopping stuck", "stop a"]
    assert 0.95 <= elapsed < 4.0
    assert wait_gone(logged_pids(log), 5) == []


@zmq_only
def test_terminate_child_honours_shutdown(system, tmp_path):
    """terminate_child waits the child's shutdown seconds for a hanging
    on_stop, then kills it; brutal_kill kills without on_stop."""
    log = str(tmp_path / "log")
    sup = system.spawn(actors.Supervisor, [
        ChildSpec("stuck", Stuck, args=("stuck", log), shutdown=0.5),
        worker("brutal", log, shutdown="brutal_kill"),
    ], name="sup")
    pids = logged_pids(log)
    started = time.monotonic()
    sup.proxy(timeout=30).terminate_child("stuck")
    assert 0.45 <= time.monotonic() - started < 4.0
    sup.proxy(timeout=30).terminate_child("brutal")
    assert events(log)[2:] == ["stopping stuck"]
    assert wait_gone(pids, 5) == []
    assert {i.status for i in children(sup).values()} == {"terminated"}


# -- a supervisor that cannot start --------------------------------------------------

def test_child_constructor_failure_fails_the_supervisor_start(system, tmp_path):
    """A child that fails in its constructor makes the supervisor's spawn
    raise that exception (as its own class); the children started before it
    are stopped (on_stop runs), later ones never start, no process is left
    and every name is free again."""
    log = str(tmp_path / "log")
    specs = [worker("ok", log), ChildSpec("bad", BadInit, args=("bad", log)), worker("never", log)]
    with pytest.raises(BadInitError, match="bad cannot start"):
        system.spawn(LoggedSupervisor, "sup", log, specs, name="sup")
    assert events(log) == ["start sup", "start ok", "init bad", "stop ok"]
    assert wait_gone(logged_pids(log), 10) == []
    for name in ("sup", "sup/ok", "sup/bad", "sup/never"):
        assert system.lookup(name) is None
    assert system.tree() == []
    sup = system.spawn(actors.Supervisor, [worker("ok")], name="sup")  # names are free
    assert children(sup)["ok"].status == "running"


# -- watch and link ------------------------------------------------------------------

@zmq_only
def test_watch_a_dead_ref_notifies_at_once(system):
    """Watching a ref that is already dead sends Terminated at once, with the
    reason and crashed flag of its end."""
    watcher = system.spawn(Worker, "watcher")
    stopped, crashed = system.spawn(Worker, "t1"), system.spawn(Worker, "t2")
    stopped.stop()
    crashed_pid = crashed.ask("pid", timeout=10)
    crashed.tell("raise")
    assert wait_gone([crashed_pid], 10) == []
    wait_for(lambda: is_dead(crashed), what="t2's death to be known")
    assert watcher.ask(("watch", stopped, False), timeout=10)
    assert watcher.ask(("watch", crashed, False), timeout=10)
    notices = wait_for(lambda: len(n := watcher.ask("notices", timeout=10)) == 2 and n,
                       what="two notices")
    assert notices == [(stopped, "stopped", False), (crashed, CRASH, True)]


@zmq_only
def test_watch_reports_stop_and_crash(system):
    """A watcher gets one Terminated per watched actor that ends: reason
    'stopped' and crashed=False for an orderly stop, the crash text and
    crashed=True for a crash; its own life goes on."""
    watcher = system.spawn(Worker, "watcher")
    pid = watcher.ask("pid", timeout=10)
    stopped, crashed = system.spawn(Worker, "t1"), system.spawn(Worker, "t2")
    watcher.ask(("watch", stopped, False), timeout=10)
    watcher.ask(("watch", crashed, False), timeout=10)
    stopped.stop()
    crashed.tell("raise")
    notices = wait_for(lambda: len(n := watcher.ask("notices", timeout=10)) == 2 and n,
                       what="two notices")
    assert notices == [(stopped, "stopped", False), (crashed, CRASH, True)]
    assert watcher.ask("pid", timeout=10) == pid


@zmq_only
def test_unwatch_stops_notices(system):
    """After unwatch(ref), the end of ref sends nothing (checked against a
    second watched actor that ends later and is reported)."""
    watcher = system.spawn(Worker, "watcher")
    first, second = system.spawn(Worker, "t1"), system.spawn(Worker, "t2")
    watcher.ask(("watch", first, False), timeout=10)
    watcher.ask(("watch", second, False), timeout=10)
    watcher.ask(("unwatch", first), timeout=10)
    first.stop()
    second.stop()  # notices come from the node in order: first's would precede
    notices = wait_for(lambda: watcher.ask("notices", timeout=10), what="a notice")
    assert notices == [(second, "stopped", False)]


@zmq_only
def test_link_crash_propagates_and_orderly_stop_does_not(system):
    """A supervised watcher linked to two actors: the orderly stop of one is
    only a Terminated message (the watcher lives on); the crash of the other
    crashes the watcher, whose supervisor restarts it with an ActorDeadError
    naming the linked crash."""
    sup = system.spawn(actors.Supervisor, [worker("w")], name="sup")
    w = system.lookup("sup/w")
    pid = w.ask("pid", timeout=10)
    calm, wild = system.spawn(Worker, "calm"), system.spawn(Worker, "wild")
    w.ask(("watch", calm, True), timeout=10)
    w.ask(("watch", wild, True), timeout=10)
    calm.stop()
    assert wait_for(lambda: w.ask("notices", timeout=10)) == [(calm, "stopped", False)]
    assert w.ask("pid", timeout=10) == pid
    wild.tell("raise")
    wait_new_pid(w, pid)
    got = w.ask("restarted_with", timeout=10)
    assert got["is_dead_error"] and "linked" in got["reason"] and "crashed" in got["reason"]
    info = children(sup)["w"]
    assert info.restarts == 1 and info.last_exit.startswith("crashed: ActorDeadError")


@zmq_only
def test_link_crash_kills_an_unsupervised_watcher(system):
    """An unsupervised actor linked to one that crashes crashes too and is
    gone for good; linking to an actor that already crashed crashes the
    watcher at once."""
    watcher = system.spawn(Worker, "watcher")
    target = system.spawn(Worker, "target")
    watcher.ask(("watch", target, True), timeout=10)
    pid = watcher.ask("pid", timeout=10)
    target.tell("raise")
    assert wait_gone([pid], 10) == []
    assert is_dead(watcher)

    late = system.spawn(Worker, "late")
    late_pid = late.ask("pid", timeout=10)
    late.ask(("watch", target, True), timeout=10)  # target is dead by a crash
    assert wait_gone([late_pid], 10) == []
    assert is_dead(late)


@zmq_only
def test_link_to_a_supervised_child_fires_when_it_ends_for_good_by_a_crash(system):
    """A link to a supervised ref does not fire when the child is killed and
    restarted, only when it ends for good by a crash (here a temporary
    child that crashes)."""
    system.spawn(actors.Supervisor, [worker("a"), worker("t", restart="temporary")],
                 name="sup")
    a, t = system.lookup("sup/a"), system.lookup("sup/t")
    watcher = system.spawn(Worker, "watcher")
    pid = watcher.ask("pid", timeout=10)
    watcher.ask(("watch", a, True), timeout=10)
    watcher.ask(("watch", t, True), timeout=10)
    a_pid = a.ask("pid", timeout=10)
    os.kill(a_pid, signal.SIGKILL)
    wait_new_pid(a, a_pid)
    t.tell("raise")
    assert wait_gone([pid], 10) == []
    assert is_dead(watcher)
    assert a.ask("pid", timeout=10) != a_pid  # the restarted child lives on


@zmq_only
def test_watching_a_supervised_child_notifies_only_when_it_ends_for_good(system):
    """A supervised child ends for good only when its supervisor stops
    restarting it: a kill and restart send no Terminated; terminate_child
    sends one ('stopped')."""
    sup = system.spawn(actors.Supervisor, [worker("a")], name="sup")
    a = system.lookup("sup/a")
    watcher = system.spawn(Worker, "watcher")
    watcher.ask(("watch", a, False), timeout=10)
    pid = a.ask("pid", timeout=10)
    os.kill(pid, signal.SIGKILL)
    wait_new_pid(a, pid)
    sup.proxy(timeout=30).terminate_child("a")
    notices = wait_for(lambda: watcher.ask("notices", timeout=10), what="a notice")
    assert notices == [(a, "stopped", False)]


# -- dynamic children -----------------------------------------------------------------

@zmq_only
def test_simple_one_for_one(system):
    """simple_one_for_one starts no child by itself; start_child(name,
    args=...) starts the template with its args first, under
    '<sup>/<name>'; a crashed child is restarted alone with the same
    arguments; terminate_child removes it for good; only names are taken."""
    pool = system.spawn(Pool, name="pool")
    proxy = pool.proxy(timeout=30)
    assert proxy.which_children() == []
    j7 = proxy.start_child("job-7", args=(7,))
    j8 = proxy.start_child("job-8", args=(8,))
    assert system.lookup("pool/job-7") == j7 and system.lookup("pool/job-8") == j8
    info7 = j7.ask("info", timeout=10)
    assert (info7["label"], info7["extra"]) == ("job", [7])
    assert j8.ask("info", timeout=10)["extra"] == [8]
    pid8 = j8.ask("pid", timeout=10)
    with pytest.raises(ValueError, match="job-7"):
        proxy.start_child("job-7", args=(70,))
    with pytest.raises(TypeError, match="by name"):
        proxy.start_child(worker("job-9"))

    j7.tell("raise")
    wait_new_pid(j7, info7["pid"])
    again = j7.ask("info", timeout=10)
    assert again["extra"] == [7] and again["restarted_with"]["type"] == "ValueError"
    assert j8.ask("pid", timeout=10) == pid8
    assert proxy.count_children() == {"specs": 2, "active": 2, "supervisors": 0, "workers": 2}

    proxy.terminate_child("job-7")
    assert [c.name for c in proxy.which_children()] == ["job-8"]
    assert is_dead(j7) and system.lookup("pool/job-7") is None
    with pytest.raises(KeyError):
        proxy.terminate_child("job-7")


@zmq_only
def test_dynamic_children_of_a_static_supervisor(system):
    """which_children/count_children describe a supervisor declared with
    class attributes; start_child adds a spec at the end; terminate_child
    keeps the spec (status 'terminated', ref dead); restart_child starts it
    again; delete_child forgets it; misuse raises at the call site."""
    sup = system.spawn(Trio, name="sup")
    proxy = sup.proxy(timeout=30)
    infos = proxy.which_children()
    assert [(i.name, i.restart, i.status, i.restarts, i.supervisor) for i in infos] == [
        ("a", "permanent", "running", 0, False),
        ("b", "transient", "running", 0, False),
        ("c", "temporary", "running", 0, False)]
    assert all(i.ref == system.lookup(f"sup/{i.name}") and i.pid for i in infos)
    assert len({i.pid for i in infos}) == 3
    assert proxy.count_children() == {"specs": 3, "active": 3, "supervisors": 0, "workers": 3}

    d = proxy.start_child(worker("d"))
    assert system.lookup("sup/d") == d and d.ask("info", timeout=10)["label"] == "d"
    proxy.start_child(ChildSpec("sub", actors.Supervisor, args=([],)))
    assert proxy.count_children() == {"specs": 5, "active": 5, "supervisors": 1, "workers": 4}
    assert [i.name for i in proxy.which_children()] == ["a", "b", "c", "d", "sub"]
    with pytest.raises(ValueError, match="already exists"):
        proxy.start_child(worker("a"))

    proxy.terminate_child("d")
    assert children(sup)["d"].status == "terminated"
    assert is_dead(d) and system.lookup("sup/d") is None
    with pytest.raises(actors.ActorError, match="running"):
        proxy.delete_child("a")
    with pytest.raises(actors.ActorError, match="running"):
        proxy.restart_child("a")
    d2 = proxy.restart_child("d")
    assert d2.ask("info", timeout=10)["label"] == "d"
    assert system.lookup("sup/d") == d2 and children(sup)["d"].status == "running"
    proxy.terminate_child("d")
    proxy.delete_child("d")
    assert [i.name for i in proxy.which_children()] == ["a", "b", "c", "sub"]
    with pytest.raises(KeyError, match="nope"):
        proxy.restart_child("nope")
