"""``actors run``: a supervision tree from a file, run as a service.

One process, the *service process*, runs the node (an ActorSystem) and the
root supervisor named after the service, whose children are the file's
``[[child]]`` tables (named ``NAME/child``). Its threads:

    main       owns the service's state: every event (signal, control
               command, tree started, reload done, system failed) arrives
               in one queue and is handled here, one at a time
    start      spawns the root supervisor (the whole tree) and says Started
    reload     one reload at a time (``actors.cli.reload``), says ReloadDone
    failure    waits in ``system.join()``; says SystemFailed if the root
               supervisor gave up (its restart intensity was exceeded)
    control    serves ``actors status|tree|top|nodes|reload|stop`` (queries
               on its own thread; reload and stop go to the main thread)
    watchdog   ``WATCHDOG=1`` to systemd while the root supervisor answers

Signal handlers only put an event in the queue (``SimpleQueue.put`` is
reentrant), so a signal never interrupts the service in the middle of
anything. SIGTERM and SIGINT stop in order; SIGHUP reloads.

Exit status: 0 after an orderly stop; 1 when the tree could not start, the
root supervisor gave up, or the service could not run at all (bad file,
already running, run folder unusable).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import queue
import signal
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import actors
from actors.cli.config import ServiceConfig
from actors.cli.control import ControlServer, Request, Respond
from actors.cli.notify import Notifier, Watchdog, watchdog_interval
from actors.cli.reload import Reloader, ReloadReport
from actors.cli.rundir import RunDir, RunDirError

__all__ = ["Service", "plain_tree"]

log = logging.getLogger("actors.service")

MEMBER_FIELDS = ("name", "node_id", "address", "lease", "lease_left", "self", "host", "pid")
SIGNALS = {signal.SIGTERM: "SIGTERM", signal.SIGINT: "SIGINT", signal.SIGHUP: "SIGHUP"}


# -- events (to the main thread) ----------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Signalled:
    name: str


@dataclasses.dataclass(frozen=True)
class Command:
    op: str              # "reload" or "stop", from the control endpoint
    respond: Respond


@dataclasses.dataclass(frozen=True)
class Started:
    root: actors.ActorRef


@dataclasses.dataclass(frozen=True)
class StartFailed:
    error: BaseException


@dataclasses.dataclass(frozen=True)
class ReloadDone:
    report: ReloadReport
    waiting: list[Respond | None]


@dataclasses.dataclass(frozen=True)
class SystemFailed:
    error: BaseException


def plain_tree(entries: list[dict[str, Any]], cluster: bool = False) -> list[dict[str, Any]]:
    """``system.tree()`` as plain data (no refs), for the control replies;
    in a cluster, each entry also names the ``node`` it runs on."""
    return [{"name": e["name"], "uid": e["uid"], "class": e["class"], "pid": e["pid"],
             "state": e["state"], "supervisor": e["supervisor"], "restart": e["restart"],
             "restarts": e["restarts"], "last_exit": e["last_exit"],
             # a node id is NAME.INCARNATION
             **({"node": e["ref"].node.partition(".")[0]} if cluster else {}),
             "children": plain_tree(e["children"], cluster)} for e in entries]


def flatten(entries: list[dict[str, Any]], depth: int = 0) -> list[dict[str, Any]]:
    """A plain tree as a list in tree order, each entry with its ``depth``."""
    found = []
    for entry in entries:
        found.append({**{k: v for k, v in entry.items() if k != "children"}, "depth": depth})
        found.extend(flatten(entry["children"], depth + 1))
    return found


class Service:
    """One run of a service file (see module doc)."""

    def __init__(self, config: ServiceConfig) -> None:
        self.config = config
        self.name = config.name
        self.state = "starting"   # running | reloading | stopping
        self.started_at = time.time()
        self.root: actors.ActorRef | None = None
        self.system: actors.ActorSystem | None = None
        self.events: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.notifier = Notifier.from_environment()
        self.watchdog_interval = watchdog_interval()
        self.watchdog: Watchdog | None = None
        self.reloader: Reloader | None = None
        self.reloads_waiting: list[Respond | None] = []   # for the next reload
        self.reloading: list[Respond | None] = []         # for the one under way
        self.last_reload: dict[str, Any] | None = None

    # -- the run --------------------------------------------------------------------
    def run(self) -> int:
        """Run until stopped or failed; return the exit status."""
        rundir = RunDir(self.name)
        try:
            rundir.claim()
        except RunDirError as e:
            log.error("%s", e)
            return 1
        log.info("service %s: starting from %s (pid %d)", self.name, self.config.path,
                 os.getpid())
        previous = {sig: signal.signal(sig, self._on_signal) for sig in SIGNALS}
        control = None
        try:
            try:
                self.system = actors.ActorSystem(**self.config.system_kwargs())
            except Exception as e:  # noqa: BLE001 - said in one line, not a traceback
                log.error("service %s: cannot start the actor system: %s", self.name, e)
                return 1
            control = ControlServer(rundir.endpoint, self._control)
            control.start()
            self._thread("actors-start", self._start_tree)
            self._thread("actors-failure", self._watch_failure)
            return self._loop()
        finally:
            if self.watchdog is not None:
                self.watchdog.stop()
            if self.system is not None:
                self.system.shutdown()
            if control is not None:
                control.close()
            rundir.release()
            self.notifier.close()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _thread(self, name: str, target: Callable[[], None]) -> None:
        threading.Thread(target=target, name=name, daemon=True).start()

    def _on_signal(self, signum: int, frame: Any) -> None:
        self.events.put(Signalled(SIGNALS[signal.Signals(signum)]))

    def _start_tree(self) -> None:
        config, system = self.config, self.system
        assert system is not None
        sup = config.supervisor
        try:
            root = system.spawn(actors.Supervisor, list(config.children),
                                strategy=sup.strategy, max_restarts=sup.max_restarts,
                                max_seconds=sup.max_seconds, name=self.name)
        except BaseException as e:  # noqa: BLE001 - handed to the main thread
            self.events.put(StartFailed(e))
        else:
            self.events.put(Started(root))

    def _watch_failure(self) -> None:
        assert self.system is not None
        try:
            self.system.join()
        except actors.ActorError as e:
            self.events.put(SystemFailed(e))

    # -- the main thread's events --------------------------------------------------------
    def _loop(self) -> int:
        while True:
            event = self.events.get()
            match event:
                case Started(root):
                    self._started(root)
                case StartFailed(error):
                    log.error("service %s failed to start: %s: %s; exiting with status 1",
                              self.name, type(error).__name__, error)
                    self.notifier.status(f"failed to start: {error}")
                    self._no_reload("the service failed to start")
                    return 1
                case Signalled("SIGHUP"):
                    log.info("service %s: SIGHUP: reloading %s", self.name, self.config.path)
                    self._want_reload(None)
                case Signalled(name):
                    return self._stop(name)
                case Command("reload", respond):
                    log.info("service %s: reload asked through the control endpoint", self.name)
                    self._want_reload(respond)
                case Command("stop", respond):
                    respond({"ok": True, "pid": os.getpid()})
                    return self._stop("asked through the control endpoint")
                case ReloadDone(report, waiting):
                    self._reloaded(report, waiting)
                case SystemFailed(error):
                    log.critical("service %s failed, exiting with status 1: %s",
                                 self.name, error)
                    self.notifier.status(f"failed: {error}")
                    self._no_reload("the service failed")
                    return 1

    def _started(self, root: actors.ActorRef) -> None:
        self.root = root
        self.reloader = Reloader(self.config, root)
        self.state = "running"
        count = len(self._actors())
        log.info("service %s started: %d actors, pid %d", self.name, count, os.getpid())
        self.notifier.ready(f"running: {count} actors")
        if self.watchdog_interval is not None and self.notifier.enabled:
            self.watchdog = Watchdog(self.notifier, self.watchdog_interval, self._probe)
            self.watchdog.start()
        if self.reloads_waiting:  # asked while starting
            self._begin_reload()

    def _stop(self, why: str) -> int:
        self.state = "stopping"
        log.info("service %s: stopping (%s)", self.name, why)
        self.notifier.stopping()
        if self.watchdog is not None:
            self.watchdog.stop()
        assert self.system is not None
        self.system.shutdown()
        self._no_reload("the service stopped")
        log.info("service %s stopped", self.name)
        return 0

    def _no_reload(self, why: str) -> None:
        """Answer the reloads asked for that will not be done."""
        for respond in self.reloading + self.reloads_waiting:
            if respond is not None:
                respond({"ok": False, "error": f"{why} before the reload was done"})
        self.reloading, self.reloads_waiting = [], []

    def _want_reload(self, respond: Respond | None) -> None:
        self.reloads_waiting.append(respond)
        if self.state == "running":
            self._begin_reload()
        # starting: once started; reloading: once this one is done (the
        # file may have changed since it was read)

    def _begin_reload(self) -> None:
        self.state = "reloading"
        self.notifier.reloading()
        waiting, self.reloads_waiting = self.reloads_waiting, []
        self.reloading = waiting
        reloader = self.reloader
        assert reloader is not None

        def work() -> None:
            try:
                report = reloader.reload()
            except Exception as e:  # noqa: BLE001 - the root died meanwhile, say so
                report = ReloadReport(ok=False, errors=[f"{type(e).__name__}: {e}"])
            self.events.put(ReloadDone(report, waiting))
        self._thread("actors-reload", work)

    def _reloaded(self, report: ReloadReport, waiting: list[Respond | None]) -> None:
        self.reloading = []
        if report.ok:
            log.info("service %s reloaded: %s", self.name, report.summary())
        elif not (report.added or report.removed or report.changed):
            log.error("service %s: reload refused, nothing changed:\n  %s", self.name,
                      "\n  ".join(report.errors))
        else:
            log.error("service %s: reload partly applied (%s):\n  %s", self.name,
                      report.summary(), "\n  ".join(report.errors))
        for warning in report.warnings:
            log.warning("service %s: %s", self.name, warning)
        self.last_reload = {"time": time.time(), **report.as_dict()}
        for respond in waiting:
            if respond is not None:
                respond({"ok": report.ok, "reload": report.as_dict(),
                         **({} if report.ok else {"error": "; ".join(report.errors)})})
        if self.reloads_waiting:
            self._begin_reload()
        else:
            self.state = "running"
            self.notifier.ready(f"running: {len(self._actors())} actors")

    # -- the control endpoint's thread -----------------------------------------------------
    def _control(self, request: Request, respond: Respond) -> None:
        op = request.op
        if op in ("reload", "stop"):
            if self.state == "stopping":
                respond({"ok": op == "stop", "error": "the service is stopping",
                         "pid": os.getpid()})
            else:
                self.events.put(Command(op, respond))
            return
        reply: dict[str, Any] = {"ok": True, "name": self.name, "pid": os.getpid(),
                                 "state": self.state, "started": self.started_at,
                                 "uptime": time.time() - self.started_at,
                                 "config": self.config.path, "last_reload": self.last_reload,
                                 "cluster": self._cluster()}
        if op == "status":
            reply["actors"] = self._actors()
        elif op == "tree":
            reply["tree"] = self._tree()
        elif op == "stats":
            reply["actors"] = self._stats(1.0 if request.timeout is None else request.timeout)
        elif op == "nodes":
            reply["members"] = self._members()
        respond(reply)

    def _cluster(self) -> dict[str, Any] | None:
        """In a cluster: the etcd URL, this node's name and the live members'."""
        system, cluster = self.system, self.config.cluster
        if system is None or cluster is None:
            return None
        try:
            members = system.nodes()
        except actors.ActorError:  # left the cluster (stopping, fenced)
            members = []
        return {"etcd": cluster.etcd, "node": self.config.system.get("node"),
                "members": members}

    def _members(self) -> list[dict[str, Any]]:
        """``system.members()`` as plain data (empty outside a cluster); the
        service's own row gets its host and pid too."""
        system = self.system
        if system is None:
            return []
        rows = []
        for row in system.members():
            if row.get("self"):
                row = {"host": socket.gethostname(), "pid": os.getpid(), **row}
            rows.append({key: row.get(key) for key in MEMBER_FIELDS})
        return rows

    def _tree(self) -> list[dict[str, Any]]:
        system = self.system
        if system is None:
            return []
        return plain_tree(system.tree(), cluster=self.config.cluster is not None)

    def _actors(self) -> list[dict[str, Any]]:
        return flatten(self._tree())

    def _stats(self, timeout: float) -> list[dict[str, Any]]:
        system = self.system
        if system is None:
            return []
        counts = {e["uid"]: e for e in system.statistics(timeout)}
        found = []
        for entry in self._actors():
            numbers = counts.get(entry["uid"], {})
            found.append({**entry, "mailbox": numbers.get("mailbox"),
                          "handled": numbers.get("handled")})
        return found

    # -- the watchdog's thread -------------------------------------------------------------
    def _probe(self, timeout: float) -> bool:
        """The node and the root supervisor answer within ``timeout``: a
        call to the root that reads the node's tree (answered by the node's
        loop) and comes back."""
        root = self.root
        if root is None or self.state == "stopping":
            return False
        try:
            root.proxy(timeout=timeout).count_children()
        except actors.ActorError:
            return False
        return True
