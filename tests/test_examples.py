"""Every example runs as a script, exits 0 and prints what it promises."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_script(*args: str, cwd: str = ROOT) -> subprocess.CompletedProcess:
    """Run a script to its end; it must exit 0."""
    env = dict(os.environ, PYTHONPATH=ROOT)
    # -X faulthandler: a script still running at the deadline gets SIGABRT,
    # which writes its threads' stacks to stderr, shown with the failure
    proc = subprocess.Popen([sys.executable, "-X", "faulthandler", *args], cwd=cwd, text=True,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        stdout, stderr = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGABRT)
        stdout, stderr = proc.communicate(timeout=30)
        raise AssertionError(f"{args} still ran after 120 s; its stacks:\n{stderr}") from None
    out = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
    assert out.returncode == 0, out.stderr
    return out


def run_example(*args: str, cwd: str = ROOT) -> str:
    return run_script(*args, cwd=cwd).stdout


def test_hello():
    """hello.py plays three rounds of ping-pong between two processes."""
    out = run_example("examples/hello.py")
    assert out.count("('pong',") == 3
    assert out.strip().endswith("all actors stopped")


@pytest.mark.parametrize("transport", ["zmq", "pipe"])
def test_pipeline(transport):
    """pipeline.py pushes 1000 values through three actors and sums them."""
    out = run_example("examples/pipeline.py", transport)
    assert "1000 values, sum of squares 332833500 (expected 332833500)" in out


@pytest.mark.parametrize("transport", ["zmq", "pipe"])
def test_backpressure(transport):
    """backpressure.py: a blocked producer delivers everything with the
    mailbox bounded; send_timeout raises MailboxFull; "drop" counts every
    dropped tell; max_frame fails at the sender."""
    out = run_example("examples/backpressure.py", transport)
    assert re.search(r"block: told 2000 in [\d.]+ s, handled 2000, peak mailbox (\d+) \(limit 100\)",
                     out), out
    peak = int(re.search(r"peak mailbox (\d+)", out).group(1))
    assert 0 < peak <= 100
    assert "send_timeout: 10 sent, then MailboxFull: no room in the mailbox" in out
    handled, dropped = map(int, re.search(r"drop: handled (\d+) \+ dead letters (\d+) = 5000",
                                          out).groups())
    assert handled >= 100 and dropped > 0
    assert "max_frame: a message of 2097161 bytes is over this system's max_frame" in out


@pytest.mark.parametrize("transport", ["zmq", "pipe"])
def test_supervised_workers(transport):
    """supervised_workers.py answers every request while its workers crash
    (exceptions, os._exit, SIGKILL), one restart per crash, and draws the tree."""
    out = run_example("examples/supervised_workers.py", transport)
    client = re.search(r"client: (\d+) requests, (\d+) answered, (\d+) retries", out)
    assert client is not None, out
    assert int(client[1]) == int(client[2]) >= 200
    chaos = re.search(r"chaos: (\d+) crashes \((\d+) exceptions, (\d+) os._exit, (\d+) SIGKILL\)",
                      out)
    assert chaos is not None, out
    assert int(chaos[1]) >= 1 and int(chaos[2]) >= 1 and int(chaos[3]) >= 1 and int(chaos[4]) >= 1
    restarts = re.search(r"restarts: pool (\d+) \(workers\), pair table (\d+) cache (\d+)", out)
    assert restarts is not None, out
    pool, table, cache = map(int, restarts.groups())
    assert pool + table == int(chaos[1])  # each crash: exactly one restart
    assert table >= 1 and cache == table  # one_for_all: the cache restarts with the table
    drawing = out.split("final tree:\n", 1)[1]
    for name, kind in [("app", "App"), ("pool", "Pool"), ("w1", "Worker"), ("w4", "Worker"),
                       ("pair", "Pair"), ("table", "Table"), ("cache", "Cache"),
                       ("chaos", "Chaos")]:
        assert f"── {name} ({kind}) pid " in drawing, drawing
    assert "│   ├── w1 (Worker)" in drawing  # nested one level under pool
    assert out.strip().endswith("every request answered")


@pytest.mark.parametrize("transport", ["zmq", "pipe"])
def test_dining_philosophers(transport):
    """dining_philosophers.py: the naive protocol deadlocks through all five
    philosophers and exactly one dinner fails with DeadlockError naming the
    cycle, quickly; the others eat. Then resource ordering lets every
    philosopher eat every round, with no deadlock reported."""
    out = run_example("examples/dining_philosophers.py", transport)
    naive, fixed = out.split("fixed protocol:", 1)
    names = re.findall(r"^  (\w+): DeadlockError: deadlock: ", naive, re.MULTILINE)
    assert len(names) == 1, out
    ate = re.findall(r"^  (\w+) ate with forks (\d) and (\d)$", naive, re.MULTILINE)
    assert len(ate) == 4 and names[0] not in [a[0] for a in ate], out
    summary = re.search(r"1 dinner failed with DeadlockError, 4 philosophers ate, in ([\d.]+) s",
                        naive)
    assert summary is not None, out
    assert float(summary[1]) < 10.0  # a cycle is reported in a fraction of a second
    # The cycle as system.deadlocks records it: five steps, each philosopher
    # waiting on its right neighbour for the fork they share, closing a ring.
    steps = re.findall(r"^    (\w+) \(pid \d+\) calls (\w+)\.finished_with\((\d)\)$", naive,
                       re.MULTILINE)
    assert len(steps) == 5, out
    seats = ["Aristotle", "Kant", "Spinoza", "Marx", "Russell"]
    assert sorted(s[0] for s in steps) == sorted(seats)
    for i, (waiter, holder, fork) in enumerate(steps):
        assert seats[(seats.index(waiter) + 1) % 5] == holder
        assert int(fork) == seats.index(holder)
        assert steps[(i + 1) % 5][0] == holder  # the next step starts where this one waits
    # The error text names the same cycle, ending with the victim's own wait.
    error = naive.split("DeadlockError: deadlock: ", 1)[1].split(". This wait", 1)[0]
    assert error.split(" -> ")[-1].startswith(f"{names[0]} (pid ")
    assert len(error.split(" -> ")) == 5
    result = re.search(r"(\d+) meals in (\d+) rounds of (\d+) philosophers, (\d+) failed, "
                       r"(\d+) deadlocks reported", fixed)
    assert result is not None, out
    meals, rounds, seated, failed, reported = map(int, result.groups())
    assert seated == 5 and rounds >= 1
    assert meals == rounds * seated and failed == 0 and reported == 0, out
    per = re.search(r"meals: (.*)", fixed)
    assert per is not None
    assert [int(m) for m in re.findall(r"\w+ (\d+)", per[1])] == [rounds] * seated


def doc_program(filename: str, page: str = "supervision.md") -> str:
    """The code block of docs/<page> that starts with ``# filename``."""
    with open(os.path.join(ROOT, "docs", page)) as f:
        text = f.read()
    blocks = [b for b in re.findall(r"```python\n(.*?)```", text, re.DOTALL)
              if b.startswith(f"# {filename}\n")]
    assert len(blocks) == 1, f"docs/{page} has {len(blocks)} blocks for {filename}"
    return blocks[0]


def test_supervision_doc_first_tree(tmp_path):
    """The first program of docs/supervision.md prints what the page says."""
    (tmp_path / "first_tree.py").write_text(doc_program("first_tree.py"))
    out = run_example("first_tree.py", cwd=str(tmp_path))
    assert out.splitlines() == [
        "w1 running 1 crashed: RuntimeError('an exception during a tell is a crash')",
        "w2 running 0 None",
        "w3 running 0 None",
    ]


def test_supervision_doc_top_fails(tmp_path):
    """The top_fails.py program of docs/supervision.md: the top gives up,
    join() raises ActorError, the program goes on to its end."""
    (tmp_path / "top_fails.py").write_text(doc_program("top_fails.py"))
    out = run_example("top_fails.py", cwd=str(tmp_path))
    assert out.startswith("the tree failed: the top-level supervisor top failed")
    assert "reached its restart intensity (0 in 5.0 s)" in out


def test_deadlocks_doc_transfer(tmp_path):
    """transfer.py of docs/deadlocks.md: a call back into a waiting caller
    fails with DeadlockError naming both steps; nothing moved."""
    (tmp_path / "transfer.py").write_text(doc_program("transfer.py", "deadlocks.md"))
    out = run_example("transfer.py", cwd=str(tmp_path))
    lines = out.splitlines()
    assert len(lines) == 3, out
    # bob's call back started after bob took up alice's request: it is the
    # youngest wait, and its request is still in alice's mailbox, so it is
    # withdrawn and bob's deposit never completes.
    assert re.fullmatch(r"victim: bob \(pid \d+\) calls alice\.get_balance\(\)", lines[2]), (
        f"the victim must be bob's call back (the youngest wait):\n{out}")
    assert re.fullmatch(r"DeadlockError: deadlock: alice \(pid \d+\) calls bob\.deposit\(30\) -> "
                        r"bob \(pid \d+\) calls alice\.get_balance\(\)\. This wait is the "
                        r"youngest of the cycle and fails to break it; the others go on\.",
                        lines[0]), out
    assert lines[1] == "balances: 100 50"


def test_deadlocks_doc_graph(tmp_path):
    """graph.py of docs/deadlocks.md: a long wait shows in wait_graph() and
    is never reported as a deadlock."""
    (tmp_path / "graph.py").write_text(doc_program("graph.py", "deadlocks.md"))
    out = run_example("graph.py", cwd=str(tmp_path))
    lines = out.splitlines()
    assert len(lines) == 4, out
    assert re.fullmatch(r"call \| main program thread 'caller' \(pid \d+\) calls "
                        r"front\.relay\(2\.0\)", lines[0]), out
    assert re.fullmatch(r"call \| front \(pid \d+\) calls back\.work\(2\.0\)", lines[1]), out
    assert re.fullmatch(r"\{'waiter': 'front', 'waiter_uid': \d+, 'target': 'back', "
                        r"'target_uid': \d+, 'kind': 'call', 'waits_on': '\.work\(2\.0\)', "
                        r"'seconds': [\d.]+, 'text': 'front \(pid \d+\) calls "
                        r"back\.work\(2\.0\)'\}", lines[2]), out
    assert lines[3] == "deadlocks: []"


def test_deadlocks_doc_jobs(tmp_path):
    """jobs.py of docs/deadlocks.md: with quiescence on, a get() answered
    after a busy producer's 2 s succeeds; a get() nothing will answer fails
    with DeadlockError listing the wait and the deferred reply."""
    (tmp_path / "jobs.py").write_text(doc_program("jobs.py", "deadlocks.md"))
    out = run_example("jobs.py", cwd=str(tmp_path))
    lines = out.splitlines()
    assert len(lines) == 2, out
    assert lines[0] == "job 1"
    assert re.fullmatch(r"DeadlockError: no progress is possible: every actor is idle or blocked "
                        r"and no message is in flight, so nothing will ever answer this wait\. "
                        r"Waiting: main program thread 'MainThread' \(pid \d+\) calls "
                        r"jobs\.get\(\); jobs \(pid \d+\) holds 1 deferred reply", lines[1]), out


def test_deadlocks_doc_hung(tmp_path):
    """hung.py of docs/deadlocks.md: a child stuck on its own lock is hung
    after its hang_timeout: its stacks are logged (the stuck frames
    included), it restarts with reason "hung"."""
    (tmp_path / "hung.py").write_text(doc_program("hung.py", "deadlocks.md"))
    done = run_script("hung.py", cwd=str(tmp_path))
    lines = done.stdout.splitlines()
    assert lines[0] == "ask failed: hung", done.stdout
    assert re.fullmatch(r"new incarnation got: ActorDeadError\(\"actor app/ledger \(pid \d+\) "
                        r"hung: its handler of 'audit' has run for [\d.]+ s, past its "
                        r"hang_timeout of 2\.0 s\"\)", lines[1]), done.stdout
    assert lines[2] == "ledger running 1 hung"
    assert re.search(r"ERROR actor app/ledger \(pid \d+\) hung: .*Python stacks of its process:",
                     done.stderr), done.stderr
    assert re.search(r'hung\.py", line \d+ in flush\n.*hung\.py", line \d+ in receive',
                     done.stderr), done.stderr


@pytest.mark.timeout(130)
@pytest.mark.parametrize("transport", ["zmq", "pipe"])
def test_mp_producer_consumer(transport, monkeypatch):
    """mp_producer_consumer.py (import actors.mp as multiprocessing): two
    producers and two consumers over a JoinableQueue with sentinels; every
    item is consumed exactly once."""
    monkeypatch.setenv("ACTORS_MP_TRANSPORT", transport)
    out = run_example("examples/mp_producer_consumer.py")
    assert "exit codes: [0, 0, 0, 0]" in out, out
    per = re.search(r"per consumer: (\d+) items, (\d+) items", out)
    assert per is not None and int(per[1]) + int(per[2]) == 2000, out
    assert out.strip().endswith(
        "consumed 2000 items (expected 2000), checksum 1999000 (expected 1999000)"), out


@pytest.mark.timeout(130)
@pytest.mark.parametrize("transport", ["zmq", "pipe"])
def test_mp_stream(transport, monkeypatch):
    """mp_stream.py: a child streams samples to the main program through a
    Queue, with the standard library and with actors.mp; every sample
    arrives once, in order, on both (the program checks each one)."""
    monkeypatch.setenv("ACTORS_MP_TRANSPORT", transport)
    out = run_example("examples/mp_stream.py", "30000")
    assert re.search(r"^multiprocessing: 30000 samples in order, [\d,]+ samples/s$", out,
                     re.MULTILINE), out
    assert re.search(r"^actors\.mp: +30000 samples in order, [\d,]+ samples/s$", out,
                     re.MULTILINE), out
    assert re.search(r"^ratio: \d+\.\d\dx", out, re.MULTILINE), out


@pytest.mark.timeout(130)
@pytest.mark.parametrize("transport", ["zmq", "pipe"])
def test_mp_pool_crash(transport, monkeypatch):
    """mp_pool_crash.py: two tasks SIGKILL their Pool worker the first time;
    the map still returns every result. A task that always kills its worker
    runs twice (once, then one retry) and fails with WorkerLost; the pool
    goes on working."""
    monkeypatch.setenv("ACTORS_MP_TRANSPORT", transport)
    out = run_example("examples/mp_pool_crash.py")
    assert re.search(r"^results: 40 of 40, sum of squares 20540 \(expected 20540\), from \d+ "
                     r"worker processes$", out, re.MULTILINE), out
    assert "tasks that killed their worker once: [7, 23]\n" in out, out
    assert re.search(r"^always_crash failed: WorkerLost: .+$", out, re.MULTILINE), out
    assert "always_crash ran 2 times (the first run and one retry)" in out, out
    assert "the pool still works: [0, 1, 4, 9, 16]\n" in out, out
    assert out.strip().endswith("worker crashes survived: 4"), out


@pytest.mark.timeout(130)
@pytest.mark.parametrize("transport", ["zmq", "pipe"])
def test_mp_shared_counter(transport, monkeypatch):
    """mp_shared_counter.py: four processes add 1 to a Value 1000 times each
    under its lock; no increment is lost. Each process released the lock
    before it ended, so none may be reported as dying while holding it."""
    monkeypatch.setenv("ACTORS_MP_TRANSPORT", transport)
    done = run_script("examples/mp_shared_counter.py")
    out = done.stdout
    assert "exit codes: [0, 0, 0, 0]" in out, out
    assert out.strip().endswith("counter = 4000 (expected 4000)"), out
    assert "which died" not in done.stderr and "cannot release" not in done.stderr, done.stderr


def test_mp_doc_producer_consumer(tmp_path):
    """docs/mp.md's producer_consumer.py: a bounded Queue between two processes."""
    (tmp_path / "producer_consumer.py").write_text(doc_program("producer_consumer.py", "mp.md"))
    out = run_example("producer_consumer.py", cwd=str(tmp_path))
    assert out.splitlines() == ["100 items, sum 328350, producer exit code 0"]


def test_mp_doc_lock_order(tmp_path):
    """docs/mp.md's lock_order.py: one process gets DeadlockError naming both
    locks and both holders, the other takes both locks; both exit 0."""
    (tmp_path / "lock_order.py").write_text(doc_program("lock_order.py", "mp.md"))
    lines = run_example("lock_order.py", cwd=str(tmp_path)).splitlines()
    assert len(lines) == 3, lines
    outcomes = sorted(line.split(": ", 1)[1] for line in lines[:2])
    assert outcomes[1] == "took both locks", lines
    report = outcomes[0]
    assert report.startswith("DeadlockError: deadlock: Lock."), report
    assert len(set(re.findall(r"Lock\.\d+\.\d+", report))) == 2, report
    assert len(set(re.findall(r"ProcessActor#\d+ \(pid (\d+)\)", report))) == 2, report
    assert lines[2] == "exit codes: [0, 0]"


def test_mp_doc_pool_crash(tmp_path):
    """docs/mp.md's pool_crash.py: a killed worker's task is retried; one that
    always kills fails with WorkerLost; the pool goes on."""
    (tmp_path / "pool_crash.py").write_text(doc_program("pool_crash.py", "mp.md"))
    out = run_example("pool_crash.py", cwd=str(tmp_path))
    assert out.splitlines() == [
        "[0, 1, 4, 9, 16, 25, 36, 49, 64, 81]",
        "WorkerLost: a pool worker died twice running this task (exit code 1); it was "
        "retried once in a new worker",
        "[0, 1, 4, 9, 16]",
    ]


@pytest.mark.parametrize("transport", ["zmq", "pipe"])
def test_crash_loop(transport):
    """crash_loop.py: 20 restarts in a row and a burst of 30 spawns, each
    in a process of its own, served by the spare pool."""
    out = run_example("examples/crash_loop.py", transport)
    assert re.search(r"crash loop: 20 restarts, median [\d.]+ ms", out), out
    burst = re.search(r"burst: 30 spawns in \d+ ms, (\d+) processes", out)
    assert burst is not None and int(burst[1]) == 30, out
    pool = re.search(r"pool: served (\d+), found empty (\d+), target (\d+) \(rest 2, max 6\), "
                     r"forked (\d+), spawned (\d+)", out)
    assert pool is not None, out
    assert int(pool[1]) >= 52  # supervisor, worker, 20 restarts, 30 spawns
    assert 2 <= int(pool[3]) <= 6
    assert int(pool[4]) + int(pool[5]) >= 52
    assert out.strip().endswith("all processes stopped")


def test_two_nodes():
    """two_nodes.py: node a meets node b (another process) over tcp with
    CURVE keys, uses b's actor by name and through a ref inside a spawn,
    and sees b leave (asks fail, the watcher is told)."""
    out = run_example("examples/two_nodes.py")
    assert out.splitlines() == [
        "met node b",
        "inventory is on node b",
        "sold one apple, 2 left",
        "apples on node b: 2",
        "after node b left: ActorDeadError",
        "the shop was told: stopped",
    ], out


def test_cluster_example(etcd):
    """examples/cluster: three nodes and an etcd on one machine (the script
    starts its own etcd; the fixture only makes sure the binary is there);
    the supervised worker moves from node b to node c when b is killed."""
    out = run_example("examples/cluster/run.py")
    lines = out.splitlines()
    assert lines[1:4] == ["members: a, b, c", lines[2], "3 * 3 = 9"], out
    assert re.fullmatch(r"the worker runs on node b \(pid \d+, 0 jobs .*\)", lines[2]), out
    assert lines[4] == "node b killed", out
    assert re.fullmatch(r"the worker runs on node c \(pid \d+, 0 jobs .*\), [\d.]+ s after "
                        r"the kill", lines[5]), out
    assert lines[6:] == ["members: a, c", "4 * 4 = 16"], out
