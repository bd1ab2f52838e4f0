"""The service file and the small parts of ``actors.cli``: ``actors check``
on good and bad files, and, in this process, the config loader, the reload
plan, the notify protocol, the run folder and the control protocol."""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
import sys
import textwrap
import uuid

import msgpack
import pytest

import actors
from actors.cli.config import ConfigError, LoggingConfig, SupervisorConfig, load, read_name
from actors.cli.control import ProtocolError, Request
from actors.cli.notify import Notifier
from actors.cli.reload import plan
from actors.cli.rundir import AlreadyRunning, RunDir, RunDirError, base_dir
from actors.cli.views import duration

TESTS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(TESTS)

GOOD = """\
    name = "shop"
    [system]
    transport = "pipe"
    stop_timeout = 2
    deadlock_detection = false
    [logging]
    level = "debug"
    [supervisor]
    strategy = "rest_for_one"
    max_restarts = 5
    max_seconds = 10
    [[child]]
    name = "db"
    actor = "sample_service:Recorder"
    args = ["/tmp/journal"]
    kwargs = {greeting = "hi"}
    restart = "transient"
    shutdown = 2.5
    hang_timeout = 30
    [[child]]
    name = "team"
    actor = "sample_service:Team"
    args = ["/tmp/journal"]
    shutdown = "brutal_kill"
"""

BAD = """\
    name = "my shop"
    colour = "blue"
    [system]
    transport = "carrier-pigeon"
    spares = -1
    busy_wait = 0.5
    log_level = 10
    warp = 9
    [logging]
    level = "LOUD"
    [supervisor]
    strategy = "simple_one_for_one"
    max_seconds = 0
    [[child]]
    name = "db"
    actor = "no_such_module:Database"
    [[child]]
    name = "db"
    actor = "sample_service:NotAnActor"
    [[child]]
    name = "web"
    actor = "sample_service:Recorder"
    restart = "sometimes"
    shutdown = -1
    port = 80
    [[child]]
    actor = "sample_service"
    [[child]]
    name = "two"
    actor = "sample_service:Recorder"
    args = ["/tmp/j", "label", "extra"]
"""

BAD_ERRORS = [
    "colour: unknown key",
    "name: must be 1 to 64 letters, digits, '_', '.' or '-', starting with a letter or "
    "digit; got 'my shop'",
    "system.transport: must be 'zmq' or 'pipe', got 'carrier-pigeon'",
    "system.spares: must be an integer >= 0, got -1",
    "system.busy_wait: must be a number of seconds in [0, 0.01], got 0.5",
    "system.log_level: set [logging] level instead",
    "system.warp: unknown key",
    "logging.level: must be one of CRITICAL, ERROR, WARNING, INFO, DEBUG, got 'LOUD'",
    "supervisor.strategy: simple_one_for_one cannot be the root's",
    "supervisor.max_seconds: must be a positive number of seconds, got 0",
    "child[1] (db).actor: cannot import module 'no_such_module'",
    "child[2] (db).actor: 'sample_service:NotAnActor' is not an actors.Actor subclass",
    "child[2] (db).name: 'db' is also the name of child[1]",
    "child[3] (web).port: unknown key",
    "child[3] (web).restart: must be one of permanent, transient, temporary, got 'sometimes'",
    "child[3] (web).shutdown: must be a positive number of seconds or 'brutal_kill', got -1",
    "child[3] (web): args [] and kwargs {} do not fit Recorder(journal, label=None, *, "
    "greeting=''): missing a required argument: 'journal'",
    "child[4].name: is required",
    "child[4].actor: must be 'module:Class', got 'sample_service'",
    "child[5] (two): args ['/tmp/j', 'label', 'extra'] and kwargs {} do not fit Recorder"
    "(journal, label=None, *, greeting=''): too many positional arguments",
]


def write_app(folder, text: str) -> str:
    """app.toml in ``folder``, with the sample actors beside it."""
    shutil.copy(os.path.join(TESTS, "sample_service.py"), folder)
    path = os.path.join(folder, "app.toml")
    with open(path, "w") as f:
        f.write(textwrap.dedent(text))
    return path


def actors_command(*args: str, cwd) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=ROOT, ACTORS_RUN_DIR=str(cwd / "run"))
    return subprocess.run([sys.executable, "-m", "actors", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60)


def test_check_accepts_a_good_file(tmp_path):
    """``actors check`` of a valid file exits 0, names the service and its
    children, and starts nothing (no run folder is made)."""
    path = write_app(tmp_path, GOOD)
    out = actors_command("check", path, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"{path}: ok: service 'shop', 2 children (db, team)")
    assert not (tmp_path / "run").exists()


def test_check_reports_every_error_with_key_and_value(tmp_path):
    """``actors check`` of a bad file exits 1 and lists every error at
    once, each naming its key and the bad value."""
    path = write_app(tmp_path, BAD)
    out = actors_command("check", path, cwd=tmp_path)
    assert out.returncode == 1
    assert out.stdout == ""
    lines = out.stderr.splitlines()
    assert lines[0] == f"{path}: {len(BAD_ERRORS)} errors:"
    for expected, line in zip(BAD_ERRORS, lines[1:], strict=True):
        assert line.strip().startswith(expected), (expected, line)


def test_check_reports_a_toml_syntax_error_with_its_line(tmp_path):
    """A file that is not TOML: one error, with the line and column."""
    path = write_app(tmp_path, 'name = "shop"\n[[child]\n')
    out = actors_command("check", path, cwd=tmp_path)
    assert out.returncode == 1
    assert "not valid TOML" in out.stderr and "line 2" in out.stderr


def test_check_of_a_missing_file_and_run_of_a_bad_file(tmp_path):
    """A file that does not exist is an error naming it; ``actors run`` of
    a bad file exits 1 before starting anything."""
    out = actors_command("check", str(tmp_path / "nope.toml"), cwd=tmp_path)
    assert out.returncode == 1 and "cannot read the file" in out.stderr
    path = write_app(tmp_path, BAD)
    out = actors_command("run", path, cwd=tmp_path)
    assert out.returncode == 1
    assert "system.transport: must be 'zmq' or 'pipe'" in out.stderr
    assert not (tmp_path / "run").exists()


@pytest.fixture
def keep_sys_path(monkeypatch):
    """load() puts the file's folder on sys.path: undone after the test."""
    monkeypatch.setattr(sys, "path", list(sys.path))


def test_load_gives_frozen_config_with_child_specs(tmp_path, keep_sys_path):
    """load() turns the tables into ServiceConfig and actors.ChildSpec
    values (TOML has no null: false turns deadlock detection off)."""
    config = load(write_app(tmp_path, GOOD))
    assert config.name == "shop" and config.folder == str(tmp_path)
    assert config.system == {"transport": "pipe", "stop_timeout": 2,
                             "deadlock_detection": None}
    assert config.logging == LoggingConfig(level="DEBUG")
    assert config.log_level() == 10
    assert config.supervisor == SupervisorConfig("rest_for_one", 5, 10.0)
    assert config.children == (
        actors.ChildSpec("db", "sample_service:Recorder", args=("/tmp/journal",),
                         kwargs={"greeting": "hi"}, restart="transient", shutdown=2.5,
                         hang_timeout=30),
        actors.ChildSpec("team", "sample_service:Team", args=("/tmp/journal",),
                         kwargs={}, shutdown="brutal_kill"))
    assert read_name(config.path) == "shop"


def test_load_defaults(tmp_path, keep_sys_path):
    """Only name is required; the rest has the documented defaults."""
    config = load(write_app(tmp_path, 'name = "tiny"\n'))
    assert config.system == {} and config.children == ()
    assert config.logging == LoggingConfig("INFO", None, 10 * 2**20, 5)
    assert config.supervisor == SupervisorConfig("one_for_one", 3, 5.0)
    with pytest.raises(ConfigError) as info:
        load(write_app(tmp_path, "[system]\n"))
    assert info.value.errors == ["name: is required (the service's name)"]


def test_reload_plan_compares_specs_by_name():
    """plan(): added, removed, changed (any field differs) and unchanged."""
    a = actors.ChildSpec("a", "m:A")
    b = actors.ChildSpec("b", "m:B", args=(1,))
    c = actors.ChildSpec("c", "m:C")
    result = plan([a, b, c], [actors.ChildSpec("d", "m:D"), b,
                              actors.ChildSpec("a", "m:A", shutdown=1.0)])
    assert (result.added, result.removed, result.changed, result.unchanged) == (
        ["d"], ["c"], ["a"], ["b"])


@pytest.mark.parametrize("abstract", [True, False], ids=["@abstract", "path"])
def test_notifier_sends_datagrams(tmp_path, abstract):
    """The notify protocol: one datagram of KEY=VALUE lines, to a socket
    path or an abstract name written with '@'."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    name = f"actors-notify-{uuid.uuid4().hex[:8]}"
    target = f"@{name}" if abstract else str(tmp_path / "notify")
    sock.bind("\0" + name if abstract else target)
    sock.settimeout(10)
    notifier = Notifier(target)
    try:
        notifier.ready("running: 3 actors")
        assert sock.recv(4096) == b"READY=1\nSTATUS=running: 3 actors"
        notifier.reloading()
        lines = sock.recv(4096).decode().splitlines()
        assert lines[0] == "RELOADING=1" and lines[1].startswith("MONOTONIC_USEC=")
        assert int(lines[1].split("=")[1]) > 0
        notifier.stopping()
        assert sock.recv(4096) == b"STOPPING=1\nSTATUS=stopping"
    finally:
        notifier.close()
        sock.close()
    assert not Notifier(None).send("READY=1")        # no NOTIFY_SOCKET: nothing to do


def test_run_folder_is_private_locked_and_released(tmp_path, monkeypatch):
    """RunDir: folders of mode 0700 (a wider mode of ours is narrowed), a
    pid file, a second claim refused naming the pid, all gone on release
    but the lock file."""
    base = tmp_path / "r"
    base.mkdir(mode=0o755)
    monkeypatch.setenv("ACTORS_RUN_DIR", str(base))
    assert base_dir() == str(base)
    first = RunDir("shop")
    first.claim()
    try:
        assert stat.S_IMODE(os.stat(base).st_mode) == 0o700
        assert stat.S_IMODE(os.stat(first.path).st_mode) == 0o700
        assert first.read_pid() == os.getpid()
        with pytest.raises(AlreadyRunning, match=f"already running \\(pid {os.getpid()}\\)"):
            RunDir("shop").claim()
    finally:
        first.release()
    assert sorted(os.listdir(first.path)) == ["lock"]
    second = RunDir("shop")
    second.claim()                                   # free again
    second.release()
    with pytest.raises(RunDirError, match="longer than"):
        RunDir("x" * 120).claim()


def test_base_dir_defaults(monkeypatch, tmp_path):
    """Without ACTORS_RUN_DIR: $XDG_RUNTIME_DIR/actors, else /tmp/actors-<uid>."""
    monkeypatch.delenv("ACTORS_RUN_DIR", raising=False)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    assert base_dir() == str(tmp_path / "actors")
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    assert base_dir().endswith(f"/actors-{os.getuid()}")


def test_control_requests_are_checked_field_by_field():
    """Request.decode names what is wrong with a malformed request."""
    assert Request.decode(Request("stats", timeout=0.5).encode()) == Request("stats", 0.5)
    for frame, error in [(b"\x92\x01", "not a msgpack message"),
                         (msgpack.packb("status"), "a request is a map"),
                         (msgpack.packb({"op": "status"}), r"v \(protocol version\) must be 1"),
                         (msgpack.packb({"v": 1, "op": "status", "x": 1}), "unknown fields"),
                         (msgpack.packb({"v": 1, "op": None}), "op must be one of"),
                         (msgpack.packb({"v": 1, "op": "stats", "timeout": 1e9}),
                          "timeout must be")]:
        with pytest.raises(ProtocolError, match=error):
            Request.decode(frame)


def test_duration_reads_like_uptime():
    assert [duration(s) for s in (3, 65, 7300, 200000)] == ["3s", "1m05s", "2h01m", "2d07h"]
