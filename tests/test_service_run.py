"""``actors run`` as an operator runs it: a service in a subprocess, its
notify socket bound by the test, and ``status``/``tree``/``top``/``stop``
as subprocesses; real signals, real processes."""

from __future__ import annotations

import os
import re
import signal
import stat

import msgpack
import pytest
import zmq

from service_harness import ServiceRun, services

pytestmark = pytest.mark.timeout(90)

APP = """\
    name = "shop"
    [system]
    spares = 0
    [logging]
    level = "INFO"
    [[child]]
    name = "db"
    actor = "sample_service:Recorder"
    args = ["{journal}"]
    kwargs = {{greeting = "hello from db"}}
    [[child]]
    name = "team"
    actor = "sample_service:Team"
    args = ["{journal}"]
    [[child]]
    name = "web"
    actor = "sample_service:Recorder"
    args = ["{journal}"]
    shutdown = 3
"""
# without the subtree, for the tests that need no more (fewer processes)
SMALL = APP.replace('    [[child]]\n    name = "team"\n    actor = "sample_service:Team"\n    args = ["{journal}"]\n', "")
ACTORS = ["shop", "shop/db", "shop/team", "shop/team/a", "shop/team/b", "shop/web"]
STOPS = ["stop web", "stop b", "stop a", "stop db"]  # reverse start order, children first


@pytest.fixture
def service(tmp_path):
    """A factory of services (APP by default), cleaned up after the test."""
    yield from services(tmp_path, APP)


def assert_stopped_in_order(run: ServiceRun) -> None:
    """Every on_stop ran, the last started first; no process is left; the
    service is not running any more for ``status`` (LSB 3)."""
    assert run.stops() == STOPS
    assert "Traceback" not in run.stderr()
    from conftest import wait_gone
    assert wait_gone(sorted(run.known_pids), 10) == []
    status = run.cli("status", "shop")
    assert status.returncode == 3, status
    assert "not running" in status.stderr
    assert not os.path.exists(os.path.join(run.rundir, "shop", "pid"))


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_stops_the_service_in_order_and_exits_0(service, sig):
    """READY=1 comes once the whole tree has started; SIGTERM or SIGINT sends
    STOPPING=1, stops every actor in reverse start order (on_stop ran),
    and the service exits 0 without a traceback, leaving no process."""
    run = service().start()
    assert "STATUS=running: 6 actors" in run.messages[-1]
    starts = [line.split()[1] for line in run.journal() if line.startswith("start ")]
    assert starts == ["db", "a", "b", "web"]   # all of them before READY=1
    run.signal(sig)
    run.wait_message(lambda m: "STOPPING=1" in m, "STOPPING=1")
    assert run.wait_exit() == 0, run.stderr()
    assert_stopped_in_order(run)
    log = run.stderr()
    assert f"stopping ({signal.Signals(sig).name})" in log


def test_stop_command_stops_in_order_and_waits_for_the_exit(service):
    """``actors stop FILE`` returns once the service process has exited
    (status 0), after an orderly stop; a second stop finds nothing to do."""
    run = service().start()
    out = run.cli("stop", run.path, "--timeout", "30")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "service 'shop' stopped"
    assert run.proc.poll() == 0        # already exited when stop returned
    assert_stopped_in_order(run)
    again = run.cli("stop", "shop")
    assert again.returncode == 0 and "nothing to stop" in again.stdout


def test_status_tree_top_and_a_killed_child_restarted(service):
    """While running: ``status`` prints one line per actor (exit 0),
    ``tree --json`` gives name, class, pid, state, restarts and last exit,
    ``top --once`` a row per actor; a child killed with SIGKILL is
    restarted and ``tree --json`` shows its new pid, 1 restart and why."""
    run = service().start()
    status = run.cli("status", "shop")
    assert status.returncode == 0, status.stderr
    lines = status.stdout.splitlines()
    assert re.match(rf"shop: running, pid {run.pid}, up \d+s, 6 actors \(", lines[0])
    assert [line.split()[0] for line in lines[1:]] == ACTORS
    assert all(" running " in line for line in lines[1:])

    tree = run.tree()
    assert sorted(tree) == sorted(ACTORS)
    db = tree["shop/db"]
    assert db["class"] == "sample_service.Recorder"
    assert tree["shop/team"]["class"] == "sample_service.Team"
    assert tree["shop"]["supervisor"] and tree["shop/team"]["supervisor"]
    assert all(e["state"] == "running" and e["restarts"] == 0 and e["last_exit"] is None
               and isinstance(e["pid"], int) for e in tree.values())
    assert len({e["pid"] for e in tree.values()} | {run.pid}) == 7

    text = run.cli("tree", "shop")
    assert text.returncode == 0
    assert "└── web [sample_service.Recorder] pid" in text.stdout
    assert "│   ├── a [sample_service.Recorder]" in text.stdout

    top = run.cli("top", "shop", "--once", "--interval", "0.2")
    assert top.returncode == 0, top.stderr
    rows = top.stdout.splitlines()
    assert rows[0].startswith(f"shop: running, pid {run.pid}")
    assert rows[1].split() == ["NAME", "PID", "STATE", "MBOX", "MSG/S", "CPU%", "RSS",
                               "RESTARTS", "CLASS"]
    for name, row in zip(ACTORS, rows[2:], strict=True):
        cells = row.split()
        assert cells[0] == name and int(cells[1]) == tree[name]["pid"]
        assert cells[2] == "running" and cells[3] == "0" and cells[7] == "0"
        assert cells[6].endswith("M")       # resident memory, from psutil

    old = db["pid"]
    os.kill(old, signal.SIGKILL)
    run.known_pids.add(old)

    def restarted() -> dict | None:
        entry = run.tree().get("shop/db")
        # the new pid shows while its on_start still runs ("starting"):
        # wait for the restart to be complete, not only begun
        return entry if entry and entry["restarts"] == 1 and entry["pid"] not in (None, old) \
            and entry["state"] == "running" else None
    from conftest import wait_for
    entry = wait_for(restarted, 30, "shop/db restarted and running")
    assert entry["last_exit"] == "killed by SIGKILL"
    run.remember()
    run.signal(signal.SIGTERM)
    assert run.wait_exit() == 0


def test_run_folder_second_run_and_malformed_requests(service):
    """The run folders are mode 0700 and hold the pid file; a second
    ``run`` of the same name is refused (exit 1) and the first runs on;
    malformed control requests get an error or are dropped, never stop
    the service. Killed with SIGKILL, the service leaves its pid file
    (``status`` exits 1) but not its lock: the next ``run`` starts."""
    run = service(SMALL).start()
    base = run.rundir
    assert stat.S_IMODE(os.stat(base).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(os.path.join(base, "shop")).st_mode) == 0o700
    with open(os.path.join(base, "shop", "pid")) as f:
        assert int(f.read()) == run.pid

    second = run.cli("run", run.path)
    assert second.returncode == 1
    assert f"service 'shop' is already running (pid {run.pid})" in second.stderr

    endpoint = f"ipc://{base}/shop/control"
    context = zmq.Context()
    try:
        for frame, error in [(b"\xc1garbage", "not a msgpack message"),
                             (msgpack.packb([1, 2]), "a request is a map"),
                             (msgpack.packb({"v": 1, "op": "explode"}), "op must be one of"),
                             (msgpack.packb({"v": 9, "op": "status"}), "protocol version"),
                             (msgpack.packb({"v": 1, "op": "stats", "timeout": "x"}),
                              "timeout must be")]:
            sock = context.socket(zmq.REQ)
            sock.setsockopt(zmq.LINGER, 0)
            sock.connect(endpoint)
            sock.send(frame)
            assert sock.poll(10_000), f"no reply to {frame!r}"
            reply = msgpack.unpackb(sock.recv())
            sock.close()
            assert reply["ok"] is False and error in reply["error"], reply
        big = context.socket(zmq.REQ)      # past the size limit: ZeroMQ drops it
        big.setsockopt(zmq.LINGER, 0)
        big.connect(endpoint)
        big.send(b"x" * 200_000)
        assert big.poll(500) == 0
        big.close()
    finally:
        context.term()
    status = run.cli("status", "shop")
    assert status.returncode == 0, status.stderr
    assert run.proc.poll() is None

    # killed outright: its lock goes with it, its pid file stays (LSB 1)
    run.remember()
    run.signal(signal.SIGKILL)
    assert run.wait_exit() == -signal.SIGKILL
    from conftest import wait_gone
    assert wait_gone(sorted(run.known_pids), 10) == []   # the actors died with it
    status = run.cli("status", "shop")
    assert status.returncode == 1
    assert "died without stopping" in status.stderr
    run.start()                                          # a new run takes over
    assert run.cli("status", "shop").returncode == 0
    run.signal(signal.SIGTERM)
    assert run.wait_exit() == 0


def test_watchdog_pings_only_while_the_root_supervisor_answers(service):
    """With WATCHDOG_USEC, WATCHDOG=1 comes every WATCHDOG_USEC/2; while the
    root supervisor's process is stopped (SIGSTOP: wedged) none comes; once
    it runs again (SIGCONT) they resume."""
    run = service(SMALL, watchdog_usec=300_000).start()
    for _ in range(3):
        run.wait_message(lambda m: m == "WATCHDOG=1", "WATCHDOG=1", timeout=10)
    root = run.tree()["shop"]["pid"]
    os.kill(root, signal.SIGSTOP)
    try:
        run.drain()  # sent before the stop, not read yet
        # a probe answered just before the stop may still be reported ...
        assert run.collect(0.5).count("WATCHDOG=1") <= 1
        # ... but then none: 1.5 s is five watchdog intervals
        assert run.collect(1.5).count("WATCHDOG=1") == 0
    finally:
        os.kill(root, signal.SIGCONT)
    run.wait_message(lambda m: m == "WATCHDOG=1", "WATCHDOG=1 again", timeout=10)
    assert "watchdog: the node or the root supervisor did not answer" in run.stderr()
    run.signal(signal.SIGTERM)
    assert run.wait_exit() == 0


def test_root_that_gives_up_exits_non_zero(service):
    """A root supervisor past its restart intensity (0 restarts allowed
    here) shuts the service down: exit status 1 and a log line that says
    so, without a traceback, and no process left."""
    run = service(SMALL.replace("[logging]", "[supervisor]\n    max_restarts = 0\n"
                                            "    [logging]")).start()
    victim = run.tree()["shop/web"]["pid"]
    os.kill(victim, signal.SIGKILL)
    assert run.wait_exit() == 1
    log = run.stderr()
    assert re.search(r"CRITICAL node\[\d+\] actors.service: service shop failed, exiting "
                     r"with status 1: .*shop reached its restart intensity", log), log
    from conftest import wait_gone
    assert wait_gone(sorted(run.known_pids), 10) == []


def test_child_that_cannot_start_fails_the_run(service):
    """A child whose on_start raises: the tree cannot start, the service
    says why and exits 1 (no READY=1)."""
    run = service(SMALL.replace('args = ["{journal}"]\n    shutdown = 3',
                              'args = ["{folder}/missing/journal"]')).start(ready=False)
    assert run.wait_exit() == 1
    log = run.stderr()
    assert "service shop failed to start" in log and "FileNotFoundError" in log
    assert not any("READY=1" in m for m in run.drain())


def test_logging_to_a_rotated_file_tags_every_record(service):
    """With [logging] file, records go to that file: the service's own
    tagged node[pid], the actors' tagged with their name and pid."""
    run = service(SMALL.replace('level = "INFO"',
                                'level = "INFO"\n    file = "logs/shop.log"'))
    os.mkdir(os.path.join(run.folder, "logs"))
    run.start()
    db = run.tree()["shop/db"]["pid"]
    run.signal(signal.SIGTERM)
    assert run.wait_exit() == 0
    with open(os.path.join(run.folder, "logs", "shop.log")) as f:
        log = f.read()
    assert f"WARNING shop/db[{db}] sample_service: db says hello from db" in log
    assert re.search(rf"INFO node\[{run.pid}\] actors.service: service shop started", log)
    assert "service shop stopped" in log
    assert "db says" not in run.stderr()
