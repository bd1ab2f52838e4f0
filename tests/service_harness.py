"""Running ``actors`` as an operator would, for the service tests: the
service in a subprocess (``python -m actors run``), a NOTIFY_SOCKET the test
binds, the other commands as subprocesses, and cleanup of every process by
the pid it was started with."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import psutil

from conftest import wait_gone

TESTS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(TESTS)
CLI_TIMEOUT = 60.0


def journal(path: str) -> list[str]:
    """The lines of a Recorder journal (none if it does not exist yet)."""
    try:
        with open(path) as f:
            return f.read().splitlines()
    except FileNotFoundError:
        return []


def flat(tree: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """``actors tree --json`` as {name: entry}."""
    found = {}
    for entry in tree:
        found[entry["name"]] = entry
        found.update(flat(entry["children"]))
    return found


class ServiceRun:
    """One service in a folder of its own: its app.toml (written from
    ``toml``, ``{journal}`` and ``{folder}`` filled in), the sample actor
    module beside it (or an existing file at ``path``), a run folder of its
    own, and a notify socket."""

    def __init__(self, folder: str, toml: str | None, watchdog_usec: int | None = None,
                 path: str | None = None) -> None:
        self.folder = folder
        self.journal_path = os.path.join(folder, "journal")
        if path is not None:   # an existing service file, run where it is
            self.path = path
        else:
            self.path = os.path.join(folder, "app.toml")
            self.write(toml or "")
            shutil.copy(os.path.join(TESTS, "sample_service.py"), folder)
        # short: a Unix socket path holds ~100 bytes, and tmp_path is long
        self.rundir = tempfile.mkdtemp(prefix="ar-", dir="/tmp")
        self.notify_name = f"actors-test-{uuid.uuid4().hex[:12]}"
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind("\0" + self.notify_name)   # abstract: "@name" in NOTIFY_SOCKET
        self.messages: list[str] = []
        self.env = dict(os.environ, PYTHONPATH=ROOT, ACTORS_RUN_DIR=self.rundir,
                        NOTIFY_SOCKET="@" + self.notify_name)
        for key in ("WATCHDOG_USEC", "WATCHDOG_PID", "XDG_RUNTIME_DIR"):
            self.env.pop(key, None)
        if watchdog_usec is not None:
            self.env["WATCHDOG_USEC"] = str(watchdog_usec)
        self.proc: subprocess.Popen | None = None
        self.stderr_path = os.path.join(folder, "service.err")
        self.known_pids: set[int] = set()

    def write(self, toml: str) -> None:
        text = textwrap.dedent(toml).format(journal=os.path.join(self.folder, "journal"),
                                            folder=self.folder)
        with open(self.path, "w") as f:
            f.write(text)

    # -- the service process ------------------------------------------------------------
    def start(self, ready: bool = True) -> ServiceRun:
        """Start ``actors run``; with ``ready``, return once READY=1 came."""
        with open(self.stderr_path, "w") as err:
            self.proc = subprocess.Popen([sys.executable, "-m", "actors", "run", self.path],
                                         cwd=self.folder, env=self.env,
                                         stdout=subprocess.DEVNULL, stderr=err)
        if ready:
            self.wait_message(lambda m: "READY=1" in m, "READY=1")
            self.remember()
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stderr(self) -> str:
        with open(self.stderr_path) as f:
            return f.read()

    def remember(self) -> set[int]:
        """Note every process of the service now (to check none is left)."""
        try:
            found = {p.pid for p in psutil.Process(self.pid).children(recursive=True)}
        except psutil.NoSuchProcess:
            found = set()
        self.known_pids |= found
        return found

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def wait_exit(self, timeout: float = 30.0) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def cleanup(self) -> None:
        """Kill what is left, by the pids this run started or saw."""
        if self.proc is not None and self.proc.poll() is None:
            self.remember()
            self.proc.kill()
            self.proc.wait(10)
        for pid in wait_gone(sorted(self.known_pids), 5.0):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.notify.close()
        shutil.rmtree(self.rundir, ignore_errors=True)

    # -- the notify socket ---------------------------------------------------------------
    def wait_message(self, predicate: Callable[[str], bool], what: str,
                     timeout: float = 30.0) -> str:
        """The first datagram (new since the last wait) that satisfies
        ``predicate``; fails after ``timeout`` or if the service exits."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {what} within {timeout} s; got {self.messages}; "
                                     f"service stderr:\n{self.stderr()}")
            self.notify.settimeout(min(left, 0.5))
            try:
                message = self.notify.recv(4096).decode()
            except TimeoutError:
                if self.proc is not None and self.proc.poll() is not None:
                    raise AssertionError(f"the service exited ({self.proc.returncode}) "
                                         f"before {what}:\n{self.stderr()}") from None
                continue
            self.messages.append(message)
            if predicate(message):
                return message

    def collect(self, seconds: float) -> list[str]:
        """Every datagram that arrives within the next ``seconds`` (to check
        that something does *not* come: the window is the assertion)."""
        deadline = time.monotonic() + seconds
        got = []
        while (left := deadline - time.monotonic()) > 0:
            self.notify.settimeout(left)
            try:
                got.append(self.notify.recv(4096).decode())
            except TimeoutError:
                break
        self.messages.extend(got)
        return got

    def drain(self) -> list[str]:
        """The datagrams already queued, without waiting."""
        got = []
        self.notify.setblocking(False)
        try:
            while True:
                got.append(self.notify.recv(4096).decode())
        except BlockingIOError:
            pass
        self.messages.extend(got)
        return got

    # -- the other commands ------------------------------------------------------------------
    def cli(self, *args: str, timeout: float = CLI_TIMEOUT) -> subprocess.CompletedProcess:
        """Run ``python -m actors ARGS`` with this service's environment."""
        return subprocess.run([sys.executable, "-m", "actors", *args], cwd=self.folder,
                              env=self.env, capture_output=True, text=True, timeout=timeout)

    def tree(self) -> dict[str, dict[str, Any]]:
        """``actors tree NAME --json``, flattened by name."""
        out = self.cli("tree", self.path, "--json")
        assert out.returncode == 0, out.stderr
        return flat(json.loads(out.stdout))

    def journal(self) -> list[str]:
        return journal(self.journal_path)

    def stops(self) -> list[str]:
        return [line for line in self.journal() if line.startswith("stop ")]


def services(tmp_path: Any, default: str) -> Iterator[Callable[..., ServiceRun]]:
    """The body of a ``service`` fixture: a factory of ServiceRun objects
    (``make(toml=default, watchdog_usec=...)``), each cleaned up after the
    test."""
    runs: list[ServiceRun] = []

    def make(toml: str = default, **kwargs: Any) -> ServiceRun:
        folder = tmp_path / f"svc{len(runs)}"
        folder.mkdir()
        run = ServiceRun(str(folder), toml, **kwargs)
        runs.append(run)
        return run
    yield make
    for run in runs:
        run.cleanup()
