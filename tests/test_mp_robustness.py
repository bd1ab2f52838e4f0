"""actors.mp when things go wrong around the program: the process hosting
the primitives is killed (new primitives work again, handles on the lost
ones fail with PrimitiveLost naming the primitive), and a consumer that
drained a queue and exited normally is not reported as having lost items.

Each scenario runs as a program of its own (``import actors.mp as
multiprocessing``, the implicit system), over both transports."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import textwrap

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent


def run_program(tmp_path: pathlib.Path, source: str, transport: str,
                timeout: float = 80) -> subprocess.CompletedProcess:
    script = tmp_path / "program.py"
    script.write_text(textwrap.dedent(source))
    env = dict(os.environ, PYTHONPATH=str(ROOT), ACTORS_MP_TRANSPORT=transport)
    return subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=timeout, check=False)


HOST_KILLED = '''
    import os, signal, time
    import actors.mp as multiprocessing
    from actors.mp import context


    def child_put(q):
        q.put("from a child")


    def lost(call):
        """Call until it raises PrimitiveLost (the death is news that travels)."""
        deadline = time.monotonic() + 20
        while True:
            try:
                call()
            except multiprocessing.PrimitiveLost as e:
                return str(e)
            if time.monotonic() > deadline:
                raise AssertionError(f"{call} did not fail")
            time.sleep(0.01)  # between two attempts (the deadline above bounds the wait)


    if __name__ == "__main__":
        q, lock, event = multiprocessing.Queue(), multiprocessing.Lock(), multiprocessing.Event()
        q.put(1)
        assert q.get(timeout=10) == 1
        host = context.anchor().ask("pid", timeout=10)
        os.kill(host, signal.SIGKILL)
        print("QUEUE", lost(q.qsize))
        print("PUT", lost(lambda: q.put(2)))
        print("LOCK", lost(lambda: lock.acquire(timeout=5)))
        print("EVENT", lost(event.set))
        q2 = multiprocessing.Queue()
        p = multiprocessing.Process(target=child_put, args=(q2,))
        p.start()
        assert q2.get(timeout=30) == "from a child"
        p.join(30)
        assert p.exitcode == 0, p.exitcode
        lock2 = multiprocessing.Lock()
        assert lock2.acquire(timeout=10)
        lock2.release()
        print("NEW_HOST", context.anchor().ask("pid", timeout=10) != host)
'''


@pytest.mark.timeout(100)
@pytest.mark.parametrize("transport", ["zmq", "pipe"])
def test_primitives_host_killed_then_new_primitives_work(tmp_path, transport):
    """The primitives' host is SIGKILLed: each old handle fails with
    PrimitiveLost naming its primitive; new primitives (used from a child
    too) work, in a new host process; the loss is logged once."""
    proc = run_program(tmp_path, HOST_KILLED, transport)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-4000:]
    lines = dict(line.split(" ", 1) for line in proc.stdout.splitlines() if " " in line)
    for key, name in (("QUEUE", "Queue."), ("PUT", "Queue."), ("LOCK", "Lock."),
                      ("EVENT", "Event.")):
        assert lines[key].startswith(name) and "is lost" in lines[key], lines
        assert "SIGKILL" in lines[key], lines
    assert lines["NEW_HOST"] == "True"
    assert proc.stderr.count("the process that hosted the primitives died") == 1, proc.stderr


DRAINED = '''
    import actors.mp as multiprocessing

    N = 3000


    def drain(q, done):
        got = [q.get(timeout=30) for _ in range(N)]
        done.put(sum(got))


    if __name__ == "__main__":
        q, done = multiprocessing.Queue(), multiprocessing.Queue()
        for i in range(N):
            q.put(i)
        consumers = []
        for _ in range(2):  # the second drains nothing the first did not leave
            p = multiprocessing.Process(target=drain, args=(q, done))
            p.start()
            p.join(60)
            assert p.exitcode == 0, p.exitcode
            print("SUM", done.get(timeout=30))
            for i in range(N):
                q.put(i)
        print("LEFT", q.qsize())
'''


@pytest.mark.timeout(100)
@pytest.mark.parametrize("transport", ["zmq", "pipe"])
def test_drained_queue_exit_reports_no_loss(tmp_path, transport):
    """A consumer that takes every item (in lent batches) and exits normally
    is not reported as having lost any; the queue's count stays right."""
    proc = run_program(tmp_path, DRAINED, transport)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-4000:]
    expected = sum(range(3000))
    assert proc.stdout.split() == ["SUM", str(expected), "SUM", str(expected),
                                   "LEFT", "3000"], proc.stdout
    assert "were lost" not in proc.stderr, proc.stderr[-4000:]


SMALL_FRAMES = '''
    import actors
    import actors.mp as multiprocessing

    if __name__ == "__main__":
        with actors.ActorSystem(max_frame=65536) as system:
            multiprocessing.set_system(system)
            q = multiprocessing.Queue()
            for i in range(2000):  # 300 bytes each: 256 of them are over a frame
                q.put("x" * 300 + str(i))
            q.put(("y" * 60000,))  # alone, it fits
            got = [q.get(timeout=10) for _ in range(2001)]
            print("ORDER", got[:2000] == ["x" * 300 + str(i) for i in range(2000)])
            print("BIG", got[2000] == ("y" * 60000,))
            try:
                q.put("z" * 70000)
            except actors.MessageTooLarge:
                print("REFUSED")
            print("EMPTY", q.empty())
'''


@pytest.mark.timeout(60)
def test_queue_batches_and_loans_fit_a_small_max_frame(tmp_path):
    """With max_frame=64 KB, neither a batch of puts nor a loan of items
    grows past a frame (each used to: the loan's answer failed in the
    queue's process); an item too big alone fails at its put."""
    proc = run_program(tmp_path, SMALL_FRAMES, "zmq")
    assert proc.returncode == 0, proc.stdout + proc.stderr[-4000:]
    assert proc.stdout.split() == ["ORDER", "True", "BIG", "True", "REFUSED", "EMPTY",
                                   "True"], proc.stdout + proc.stderr[-4000:]


LEASES = '''
    import os, signal, time
    import actors.mp as multiprocessing

    N = 2000


    def count(value):
        lock = value.get_lock()
        for _ in range(N):
            with lock:
                value.value += 1


    def lease_and_hang(lock, leased, hold):
        lock.acquire()
        if not hold:
            lock.release()  # the lock stays lent here, free
        leased.set()
        time.sleep(60)  # killed


    def killed(lock, hold):
        leased = multiprocessing.Event()
        p = multiprocessing.Process(target=lease_and_hang, args=(lock, leased, hold))
        p.start()
        assert leased.wait(30)
        os.kill(p.pid, signal.SIGKILL)
        p.join(30)
        assert lock.acquire(timeout=30)
        died = lock.owner_died
        lock.release()
        return died


    if __name__ == "__main__":
        value = multiprocessing.Value("i", 0)
        workers = [multiprocessing.Process(target=count, args=(value,)) for _ in range(2)]
        for p in workers:
            p.start()
        for p in workers:
            p.join(60)
            assert p.exitcode == 0, p.exitcode
        print("COUNT", value.value)
        lock = multiprocessing.Lock()
        print("LEASING", killed(lock, False))
        print("HOLDING", killed(lock, True))
'''


@pytest.mark.timeout(100)
@pytest.mark.parametrize("transport", ["zmq", "pipe"])
def test_leases_counter_and_killed_holders(tmp_path, transport):
    """Two processes' 2 x N increments under a Value's lock end at 2N; a
    process killed after taking and releasing the lock (it keeps the
    lease) leaves it free (no owner_died), one killed holding it leaves
    it released with owner_died."""
    proc = run_program(tmp_path, LEASES, transport)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-4000:]
    assert proc.stdout.split() == ["COUNT", "4000", "LEASING", "False", "HOLDING", "True"], \
        proc.stdout + proc.stderr[-4000:]


RECALLS = '''
    import actors.mp as multiprocessing

    N = 10000


    def count(value, go, done):
        lock = value.get_lock()
        go.wait(30)
        for _ in range(N):
            with lock:
                value.value += 1
        done.set()


    if __name__ == "__main__":
        value = multiprocessing.Value("i", 0)
        go = multiprocessing.Event()
        done = [multiprocessing.Event() for _ in range(2)]
        workers = [multiprocessing.Process(target=count, args=(value, go, d)) for d in done]
        for p in workers:
            p.start()
        go.set()
        # read without the lock while they count: each read calls the number
        # back from the process that has the lease, racing its writes
        seen, reads = 0, 0
        while True:
            now = value.value
            assert now >= seen, (now, seen)  # only increments: never backwards
            seen, reads = now, reads + 1
            if all(d.is_set() for d in done):
                break
        for p in workers:
            p.join(60)
            assert p.exitcode == 0, p.exitcode
        print("COUNT", value.value, "READ", reads > 0)
'''


@pytest.mark.timeout(100)
@pytest.mark.parametrize("transport", ["zmq", "pipe"])
def test_value_recalls_racing_increments_lose_nothing(tmp_path, transport):
    """Two processes' 2 x N increments under a Value's lock, while a third
    reads the number without the lock (calling it back from whichever
    holds the lease, between and during their writes): exactly 2N at the
    end, and the reads never go backwards."""
    proc = run_program(tmp_path, RECALLS, transport)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-4000:]
    assert proc.stdout.split() == ["COUNT", "20000", "READ", "True"], \
        proc.stdout + proc.stderr[-4000:]
