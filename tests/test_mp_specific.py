"""What ``actors.mp`` does beyond the standard library: locks of dead holders
are released (``owner_died``), a pool survives workers that die
(``WorkerLost`` when a task kills every worker it meets), lock-order
deadlocks fail with ``DeadlockError``, objects msgpack cannot carry travel
pickled on local links, ``import actors.mp as multiprocessing`` runs an
ordinary program, and ``ACTORS_MP_TRANSPORT`` picks the transport."""

from __future__ import annotations

import importlib
import os
import pathlib
import pickle
import signal
import subprocess
import sys
import textwrap
from typing import Any

import mp_targets as t
import pytest
from conftest import joined, start, wait_for, wait_gone

import actors

ROOT = pathlib.Path(__file__).resolve().parent.parent
JOIN = 15.0


@pytest.fixture(scope="module")
def amp():
    try:
        return importlib.import_module("actors.mp")
    except ModuleNotFoundError as e:
        if e.name == "actors.mp":
            pytest.skip(f"actors.mp is not there yet: {e}")
        raise


@pytest.fixture(scope="module")
def ctx(amp):
    return amp.get_context("spawn")


# =============================================================================
# A lock whose holder dies is released, and the next holder can tell
# =============================================================================
@pytest.mark.parametrize("how", ["os_exit", "sigkill"])
@pytest.mark.parametrize("kind", ["Lock", "RLock"])
def test_lock_of_a_dead_holder_is_released(ctx, procs, kind, how):
    lock = getattr(ctx, kind)()
    acquired = ctx.Event()
    assert lock.acquire(timeout=JOIN) is True
    assert lock.owner_died is False  # an ordinary acquisition
    lock.release()
    target = t.lock_and_exit if how == "os_exit" else t.lock_and_hang
    p = start(procs, ctx, target, lock, acquired)
    assert acquired.wait(JOIN)
    if how == "sigkill":
        # the child holds it until killed (after os._exit it may be freed already)
        assert lock.acquire(block=False) is False
        os.kill(p.pid, signal.SIGKILL)
    assert lock.acquire(timeout=10) is True
    assert lock.owner_died is True
    lock.release()
    assert joined(p) == (1 if how == "os_exit" else -signal.SIGKILL)
    assert lock.acquire(timeout=JOIN) is True
    assert lock.owner_died is False  # the next, ordinary acquisition
    lock.release()


# =============================================================================
# Leases: a lock stays with the process that last held it
# =============================================================================
def loan(lock):
    """[pid, held] of the process the lock is lent to, or None."""
    found = lock._ask(("loan",))
    return None if found is None else found[:2]


def test_lease_goes_to_the_process_that_asks(ctx, procs):
    """The lock stays lent to its last holder; another process's acquire
    recalls it (that process holds the lease then); ours recalls it back."""
    lock, acquired, release = ctx.Lock(), ctx.Event(), ctx.Event()
    with lock:
        pass
    assert loan(lock) == [os.getpid(), False]
    p = start(procs, ctx, t.hold_lock, lock, acquired, release)
    assert acquired.wait(JOIN)
    assert loan(lock)[0] == p.pid
    assert lock.acquire(block=False) is False
    release.set()
    assert lock.acquire(timeout=JOIN) is True
    assert lock.owner_died is False
    assert loan(lock) == [os.getpid(), False]
    lock.release()
    assert joined(p) == 0


@pytest.mark.parametrize("kind", ["Lock", "RLock"])
def test_lease_holder_killed_while_only_leasing(ctx, procs, kind):
    """A process the lock is lent to, but that does not hold it, is killed:
    the lock is free, and nobody is told its owner died."""
    lock, leased = getattr(ctx, kind)(), ctx.Event()
    p = start(procs, ctx, t.lease_and_hang, lock, leased)
    assert leased.wait(JOIN)
    assert loan(lock)[0] == p.pid
    os.kill(p.pid, signal.SIGKILL)
    assert joined(p) == -signal.SIGKILL
    assert lock.acquire(timeout=JOIN) is True
    assert lock.owner_died is False
    lock.release()


def killed_holding_its_lock(p: Any, value: Any, number: int) -> None:
    """Kill ``p``, which holds ``value``'s lock: the lock comes free with
    owner_died, and the number ``p`` wrote (``number``) is kept."""
    os.kill(p.pid, signal.SIGKILL)
    assert joined(p) == -signal.SIGKILL
    lock = value.get_lock()
    assert lock.acquire(timeout=JOIN) is True
    assert lock.owner_died is True
    assert value.value == number
    lock.release()


def test_lease_holder_killed_holding_a_values_lock(ctx, procs):
    """A process killed holding a Value's lock (and its number, which went
    with the lease): the lock is released with owner_died, and the number
    it wrote is kept."""
    value, acquired = ctx.Value("i", 0), ctx.Event()
    p = start(procs, ctx, t.set_value_under_lock_and_hang, value, acquired)
    assert acquired.wait(JOIN)
    killed_holding_its_lock(p, value, 7)


def test_value_write_racing_a_recall_of_its_number_is_not_lost(ctx, procs, amp):
    """A write to a leased Value's number that the recall of the number
    (another process reads it) overtakes between the write's look at the
    number and its store: the store fails and goes by message, after the
    number the recall took; nothing is lost. The recall is the real one
    (the reading thread's), run here at the worst moment."""
    from actors.mp import context, leases
    value = ctx.Value("i", 0)
    with value.get_lock():
        value.value = 5
    lease = value._lease
    assert lease.box == [5]  # the number is here, with the lease

    class Racing(list):
        fired = False

        def __bool__(self):  # the setter's look: the recall comes right after it
            if not self.fired:
                self.fired = True
                leases.recall(context.runtime(), [lease.uid, lease.epoch, "data", lease.server])
                assert len(self) == 0  # the recall took the number (a 5)
                return True
            return len(self) > 0

    lease.box = Racing(lease.box)
    value.value = 7  # the store into the emptied box fails: by message
    assert lease.box.fired and len(lease.box) == 0
    assert value.value == 7
    with value.get_lock():
        value.value += 1
    q = ctx.Queue()
    p = start(procs, ctx, t.put_value, value, q)
    assert q.get(timeout=JOIN) == 8
    assert joined(p) == 0


def test_value_number_comes_back_to_the_lease_holder(ctx, procs):
    """Another process's read calls a leased Value's number back (the lock
    stays lent here); the holder's next read asks for it again, and from
    then on reads and writes it here, until the next recall."""
    value = ctx.Value("i", 0)
    lock = value.get_lock()
    with lock:
        value.value = 3
    lease = value._lease
    q = ctx.Queue()
    for expected in (3, 4):
        p = start(procs, ctx, t.put_value, value, q)
        assert q.get(timeout=JOIN) == expected
        assert joined(p) == 0
        assert lease.epoch and not lease.box  # the lock is here, the number went
        with lock:
            assert value.value == expected  # asked for again: here once more
            assert lease.box == [expected]
            value.value += 1
    assert loan(lock)[0] == os.getpid()


def test_value_fetch_while_the_number_is_out_waits_for_it(ctx):
    """A holder's request for its number that reaches the server while the
    number is still out (the data_back that emptied its box is behind it)
    waits for the number, and is answered without lending it again."""
    value = ctx.Value("i", 0)
    with value.get_lock():
        value.value = 5
    lease = value._lease
    assert lease.box == [5]
    # as if the box had just been emptied, its data_back not yet sent: the
    # server calls the number back (our reading thread pops and sends it)
    assert value._ask(("fetch", lease.epoch)) == [5, 0]
    assert not lease.box
    assert value.value == 5  # asked for again: lent this time
    assert lease.box == [5]


def test_lease_holder_killed_after_its_number_came_back(ctx, procs):
    """A holder whose Value number was called back (our read, while it
    held the lock) and asked for again is killed holding the lock: what
    it wrote after is kept, and the lock is released with owner_died."""
    value = ctx.Value("i", 0)
    first, read, second = ctx.Event(), ctx.Event(), ctx.Event()
    p = start(procs, ctx, t.value_recalled_then_hang, value, first, read, second)
    assert first.wait(JOIN)
    assert value.value == 7  # called back at once, the lock still held there
    read.set()
    assert second.wait(JOIN)
    killed_holding_its_lock(p, value, 9)


def test_board_says_held_number_and_lend(tmp_path):
    """A dead holder's board: whether it held the lock, its Value number,
    and which lend of the number that is (the server takes the number only
    if it is of the lend it has out: a holder killed before a lend arrived
    leaves the server's number be)."""
    import struct

    from actors.mp.board import SLOT, board_lend, board_read
    board = tmp_path / "board"
    raw = bytearray(SLOT * 2)
    raw[SLOT] = 1
    struct.pack_into("I", raw, SLOT + 4, 5)
    struct.pack_into("@i", raw, SLOT + 8, 42)
    board.write_bytes(bytes(raw))
    assert board_read(str(board), 1, "@i") == (True, 42)
    assert board_read(str(board), 1, None) == (True, None)
    assert board_lend(str(board), 1) == 5
    assert board_read(str(board), 0, "@i") == (False, 0)
    assert board_lend(str(board), 0) == 0
    assert board_read(str(tmp_path / "gone"), 0, "@i") == (True, None)
    assert board_lend(str(tmp_path / "gone"), 0) == 0


# =============================================================================
# A pool whose workers die
# =============================================================================
@pytest.mark.parametrize("how", ["sigkill", "os_exit"])
def test_pool_worker_dying_mid_map_still_returns_every_result(pool, tmp_path, how):
    """Item 3 kills its worker the first time it runs; the retry succeeds."""
    items = [(str(tmp_path), x, how) for x in range(10)]
    assert pool.starmap(t.kill_self_once, items) == [x * x for x in range(10)]
    assert (tmp_path / "killed-3").exists()  # it really died once
    assert pool.map(t.square, range(5)) == [0, 1, 4, 9, 16]


def test_pool_worker_killed_from_outside_retries_its_task(pool, tmp_path):
    r = pool.apply_async(t.pid_then_sleep, (str(tmp_path), 60))
    marker = tmp_path / "pid"
    wait_for(marker.exists, JOIN, "the task to start")
    os.kill(int(marker.read_text()), signal.SIGKILL)
    assert r.get(timeout=30) == "retried"


@pytest.mark.timeout(120)
@pytest.mark.parametrize("how", ["sigkill", "os_exit"])
def test_pool_task_killing_every_worker_fails_with_worker_lost(amp, pool, how):
    assert issubclass(amp.WorkerLost, actors.ActorError)
    r = pool.apply_async(t.kill_self_always, (how,))
    with pytest.raises(amp.WorkerLost):
        r.get(timeout=60)
    assert r.ready() and not r.successful()
    # a whole map with one such item fails the same way, and does not hang
    with pytest.raises(amp.WorkerLost):
        pool.starmap(t.kill_on, [(x, how) for x in range(6)])
    # the pool still works
    assert pool.map(t.square, range(10)) == [x * x for x in range(10)]


# =============================================================================
# Deadlock between two processes taking two locks in opposite order
# =============================================================================
@pytest.mark.parametrize("kind", ["Queue", "SimpleQueue"])
def test_puts_in_batches_arrive_before_what_the_putter_sends_next(ctx, procs, kind):
    """A child's burst of puts leaves in batches (some ending on size: every
    tenth item is 300 KB); the Event it sets afterwards is seen only after
    every one of them reached the queue: right after ``wait()``, the queue
    holds all of them (qsize is exact), in order."""
    q, done, count = getattr(ctx, kind)(), ctx.Event(), 2000
    p = start(procs, ctx, t.put_then_set, q, done, count, 300_000)
    assert done.wait(JOIN)
    if kind == "Queue":
        assert q.qsize() == count
    get = q.get if kind == "SimpleQueue" else lambda: q.get(timeout=JOIN)
    got = [get() for _ in range(count)]
    assert [g if type(g) is int else g[0] for g in got] == list(range(count))
    assert all(len(g[1]) == 300_000 for g in got[::10])
    assert joined(p) == 0


def test_a_message_after_a_put_never_overtakes_it(ctx):
    """``put`` then at once ``task_done``, 300 times: the put's batch
    leaves before the task_done (else the queue would count one task_done
    too many and raise ValueError)."""
    q = ctx.JoinableQueue()
    for i in range(300):
        q.put(i)
        q.task_done()
    q.join()
    assert [q.get(timeout=JOIN) for _ in range(300)] == list(range(300))


def test_a_consumer_asking_ahead_shares_with_a_second_one(ctx, procs):
    """The main program takes 3,000 of 10,000 items (its loans growing, the
    next asked for ahead), then a child consumes too: the queue recalls
    what was lent, both go on to the end (a None each, after the numbers),
    and every item is taken exactly once, each consumer's in order."""
    q, out, n = ctx.Queue(), ctx.Queue(), 10_000
    for i in range(n):
        q.put(i)
    q.put(None)
    q.put(None)
    mine = [q.get(timeout=JOIN) for _ in range(3000)]
    assert mine == list(range(3000))
    p = start(procs, ctx, t.take_until_none, q, out)
    while (item := q.get(timeout=JOIN)) is not None:
        mine.append(item)
    theirs = out.get(timeout=JOIN)
    assert joined(p) == 0
    assert sorted(mine + theirs) == list(range(n))
    assert mine == sorted(mine) and theirs == sorted(theirs)


def test_closing_a_handle_with_a_loan_ahead_gives_back_in_order(ctx):
    """A handle closed while part of a loan is unused (and more may be
    on its way): what it did not take goes back to the queue in one piece,
    in order, for the next consumer."""
    q, n = ctx.Queue(), 5000
    for i in range(n):
        q.put(i)
    other = pickle.loads(pickle.dumps(q))  # a second handle, in this process
    first = [q.get(timeout=JOIN) for _ in range(1000)]
    q.close()
    rest = [other.get(timeout=JOIN) for _ in range(n - 1000)]
    assert first + rest == list(range(n))
    assert other.empty()


def test_puts_from_threads_keep_each_threads_order(ctx, procs):
    """Four threads of one child put 2,000 items each, the child exits at
    once: every item arrives (the batches leave before the exit), and each
    thread's items in the order it put them."""
    q = ctx.Queue()
    p = start(procs, ctx, t.put_from_threads, q, 4, 2000)
    got = [q.get(timeout=JOIN) for _ in range(8000)]
    assert joined(p) == 0
    for n in range(4):
        assert [i for who, i in got if who == n] == list(range(2000))
    assert q.empty()


def test_an_item_that_cannot_be_sent_fails_at_its_put(amp):
    """An unpicklable item, and one over max_frame, raise at their put;
    the batch around them is intact."""
    q = amp.Queue()
    q.put(1)
    with pytest.raises(actors.SerializationError):
        q.put(lambda: None)
    with pytest.raises(actors.MessageTooLarge):
        q.put(b"x" * (amp.context.system().config.max_frame + 1))
    q.put(2)
    assert [q.get(timeout=JOIN), q.get(timeout=JOIN)] == [1, 2]
    assert q.empty()


@pytest.mark.timeout(90)
def test_lock_order_deadlock_raises_deadlock_error(ctx, procs):
    """Two children take two locks in opposite order (a Barrier makes sure
    each holds its first before it asks for its second): one of them gets
    DeadlockError naming both locks and holders, the other completes."""
    timeout = None
    a, b = ctx.Lock(), ctx.Lock()
    barrier = ctx.Barrier(2)
    q = ctx.Queue()
    try:
        p1 = start(procs, ctx, t.two_locks, a, b, barrier, q, "a-then-b", timeout)
        p2 = start(procs, ctx, t.two_locks, b, a, barrier, q, "b-then-a", timeout)
        reports = {name: (pid, kind, msg) for name, pid, kind, msg in
                   (q.get(timeout=45) for _ in range(2))}
        assert joined(p1) == 0 and joined(p2) == 0
    finally:
        q.close()
        q.join_thread()
    kinds = sorted(kind for _, kind, _ in reports.values())
    assert kinds == ["deadlock", "ok"], reports
    _, _, message = next(r for r in reports.values() if r[1] == "deadlock")
    assert message.count("Lock") >= 2, message
    for pid in (p1.pid, p2.pid):
        assert str(pid) in message, (pid, message)
    # both locks are free again
    assert a.acquire(timeout=JOIN) and b.acquire(timeout=JOIN)
    a.release()
    b.release()


def test_timed_lock_waits_are_not_deadlock_edges(ctx, procs):
    """The same cycle with timed acquires ends as in the standard library:
    by timeout (a timed wait ends by itself, so it is not a deadlock edge)."""
    a, b = ctx.Lock(), ctx.Lock()
    barrier = ctx.Barrier(2)
    q = ctx.Queue()
    try:
        start(procs, ctx, t.two_locks, a, b, barrier, q, "a-then-b", 1.0)
        start(procs, ctx, t.two_locks, b, a, barrier, q, "b-then-a", 1.0)
        kinds = sorted(kind for _, _, kind, _ in (q.get(timeout=30) for _ in range(2)))
        for p in procs:
            assert joined(p) == 0
    finally:
        q.close()
        q.join_thread()
    # both time out, or one times out, lets go, and the other gets its lock
    assert kinds in (["timeout", "timeout"], ["ok", "timeout"]), kinds


# =============================================================================
# Objects msgpack cannot carry travel pickled on local links
# =============================================================================
def test_unmsgpackable_objects_travel_locally(ctx, pool, procs):
    objects = [t.Opaque(frozenset({1, 2})), t.Point(1, 2, [{3}]), ValueError("as a value"),
               {(1, 2): {3: b"x"}}, complex(1, 2), range(3)]
    got = pool.map(t.identity, objects)
    assert got[:2] == objects[:2] and got[3:] == objects[3:]
    assert type(got[2]) is ValueError and got[2].args == ("as a value",)
    here, there = ctx.Pipe()
    p = start(procs, ctx, t.pipe_echo, there)
    there.close()
    for obj in objects[:2] + objects[3:]:
        here.send(obj)
        assert here.recv() == obj
    here.send(None)
    here.close()
    assert joined(p) == 0


TCP_SCRIPT = textwrap.dedent('''
    import sys
    import actors
    import actors.mp as multiprocessing
    import mp_targets as t

    if __name__ == "__main__":
        with actors.ActorSystem("zmq", bind="tcp://127.0.0.1", keys=sys.argv[1]) as system:
            multiprocessing.set_system(system)
            try:
                q = multiprocessing.Queue()
                q.put("plain")  # msgpack carries it
                assert q.get(timeout=10) == "plain"
                try:
                    q.put(t.Opaque("needs pickle"))
                except actors.SerializationError as e:
                    print("QUEUE REFUSED", type(e).__name__)
                else:
                    print("QUEUE ACCEPTED", q.get(timeout=5))
                q.put("after")
                assert q.get(timeout=10) == "after"
                a, b = multiprocessing.Pipe()  # an OS-level link: local by nature
                a.send(t.Opaque("through a pipe"))
                assert b.recv() == t.Opaque("through a pipe")
                a.close()
                b.close()
            finally:
                multiprocessing.set_system(None)
        print("DONE")
''')


@pytest.mark.timeout(60)
def test_pickle_refused_on_tcp(amp, tmp_path, keys):
    """On a system bound to tcp://, a queue item that needs pickle is refused
    with SerializationError at the put, and the queue goes on (a scalar still
    travels); a Pipe, a link between two processes of this host, pickles."""
    script = tmp_path / "tcp_program.py"
    script.write_text(TCP_SCRIPT)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "tests")]))
    env.pop("ACTORS_MP_TRANSPORT", None)
    proc = subprocess.run([sys.executable, str(script), keys], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=50, check=False)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "QUEUE REFUSED SerializationError" in proc.stdout, proc.stdout + proc.stderr[-3000:]
    assert "DONE" in proc.stdout


# =============================================================================
# A drop-in: an ordinary program with `import actors.mp as multiprocessing`
# =============================================================================
DROP_IN = textwrap.dedent('''
    import os
    import actors.mp as multiprocessing


    def producer(q, n):
        for i in range(n):
            q.put(i)
        q.put(None)


    def consumer(q, out):
        total = 0
        while (item := q.get()) is not None:
            total += item
        out.put((total, multiprocessing.current_process().name, os.getpid()))


    def square(x):
        return x * x


    def pid(_):
        return os.getpid()


    def bump(counter, lock, times):
        for _ in range(times):
            with lock:
                counter.value += 1


    if __name__ == "__main__":
        q, out = multiprocessing.Queue(), multiprocessing.Queue()
        procs = [multiprocessing.Process(target=producer, args=(q, 100), name="producer"),
                 multiprocessing.Process(target=consumer, args=(q, out), name="consumer")]
        for p in procs:
            p.start()
        total, name, consumer_pid = out.get(timeout=30)
        for p in procs:
            p.join()
        assert total == sum(range(100)), total
        assert name == "consumer", name
        assert [p.exitcode for p in procs] == [0, 0]
        pids = [p.pid for p in procs]

        with multiprocessing.Pool(2) as pool:
            assert pool.map(square, range(10)) == [x * x for x in range(10)]
            pids += set(pool.map(pid, range(4)))

        counter, lock = multiprocessing.Value("i", 0), multiprocessing.Lock()
        workers = [multiprocessing.Process(target=bump, args=(counter, lock, 50)) for _ in range(2)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        pids += [w.pid for w in workers]
        assert counter.value == 100, counter.value

        import actors.mp.context
        print("TRANSPORT", actors.mp.context.system().transport)
        print("PIDS", *pids)
        print("OK", total)
''')


@pytest.mark.timeout(90)
@pytest.mark.parametrize("transport", [None, "pipe"])  # None: the default, zmq
def test_drop_in_program(amp, tmp_path, transport):
    script = tmp_path / "program.py"
    script.write_text(DROP_IN)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("ACTORS_MP_TRANSPORT", None)
    if transport is not None:
        env["ACTORS_MP_TRANSPORT"] = transport
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=80, check=False)
    assert proc.returncode == 0, proc.stderr[-4000:]
    lines = dict(line.split(" ", 1) for line in proc.stdout.splitlines() if " " in line)
    assert lines.get("OK") == str(sum(range(100))), proc.stdout
    assert lines.get("TRANSPORT") == (transport or "zmq"), proc.stdout
    pids = [int(x) for x in lines["PIDS"].split()]
    assert 5 <= len(pids) <= 6
    assert not wait_gone(pids, 10.0), "processes outlived the program"


# =============================================================================
# A manager's pool, its count of objects, and its shutdown
# =============================================================================
@pytest.mark.timeout(90)
def test_manager_pool_objects_and_shutdown(ctx):
    """Manager().Pool works like Pool; _number_of_objects counts what lives
    in the manager's process; shutdown() ends every object and pool it made
    (their handles then fail) and join() returns once its process is gone."""
    manager = ctx.Manager()
    shared, queue = manager.dict(), manager.Queue()
    shared["a"] = 1
    pool = manager.Pool(2)
    assert pool.map(t.square, range(6)) == [0, 1, 4, 9, 16, 25]
    assert pool.apply(t.square, (7,)) == 49
    assert manager._number_of_objects() == 3  # the dict, the queue, the pool's supervisor
    pid = manager._anchor.ask("pid", timeout=10)
    manager.shutdown()
    manager.join(30)
    assert wait_gone([pid], 10) == []
    with pytest.raises(actors.ActorDeadError):
        shared["a"]
    with pytest.raises(actors.ActorDeadError):
        queue.put(1)
    with pytest.raises(ValueError, match="not running"):
        pool.apply(t.square, (3,))


def test_manager_shutdown_ends_a_conditions_own_lock(ctx):
    """A Condition made by a manager has a lock of its own in the manager's
    process: shutdown() ends it too, so the process ends (join returned
    only at its timeout before)."""
    manager = ctx.Manager()
    cond = manager.Condition()
    with cond:
        assert cond.wait(0.01) is False
    pid = manager._anchor.ask("pid", timeout=10)
    manager.shutdown()
    manager.join(30)
    assert wait_gone([pid], 10) == []


# =============================================================================
# A Listener's free AF_UNIX address lives in a folder its process removes
# =============================================================================
def test_a_childs_listener_folder_is_removed_when_it_exits(amp, ctx, procs):
    """A child's Listener on a free AF_UNIX address lives in a temporary
    folder of that child, removed when it ends (forked hosts end without
    running atexit: the folder goes with the process's exit hooks). (The
    standard library's child uses its parent's folder when the parent has
    one, so this is actors.mp's own guarantee.)"""
    q = ctx.Queue()
    p = start(procs, ctx, t.listen_and_report, "actors.mp", q)
    address, existed = q.get(timeout=JOIN)
    assert existed and os.path.isabs(address)
    assert joined(p) == 0
    assert not os.path.exists(os.path.dirname(address))
