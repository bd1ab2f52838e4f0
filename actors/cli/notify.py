"""systemd's notify protocol, spoken directly (sd_notify(3); no libsystemd).

A service started with ``NOTIFY_SOCKET`` in its environment tells the
service manager about its state in datagrams of ``KEY=VALUE`` lines sent to
that Unix socket (a path, or an abstract name written ``@name``):
``READY=1``, ``RELOADING=1`` with ``MONOTONIC_USEC=``, ``STOPPING=1``,
``STATUS=...`` and ``WATCHDOG=1``. With ``WATCHDOG_USEC`` set (and
``WATCHDOG_PID`` naming this process, or unset), ``WATCHDOG=1`` is due every
``WATCHDOG_USEC / 2``; :class:`Watchdog` sends it only while a probe of the
service succeeds, so a wedged service is restarted by systemd.

The variables are removed from the environment once read, so that the
actors' processes (which inherit it) do not speak for the service.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable

__all__ = ["Notifier", "Watchdog", "watchdog_interval"]

log = logging.getLogger("actors.service")


class Notifier:
    """Sends notify datagrams to ``address`` (None: does nothing)."""

    def __init__(self, address: str | None) -> None:
        self.address = address
        self._target: str | bytes | None = None
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        self._warned = False
        if address:
            if address.startswith("@"):
                self._target = "\0" + address[1:]   # abstract namespace
            elif address.startswith("/"):
                self._target = address
            else:
                log.warning("NOTIFY_SOCKET=%r is not a Unix socket path or @name: "
                            "not notifying the service manager", address)
                self.address = None
            if self._target is not None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)

    @classmethod
    def from_environment(cls) -> Notifier:
        """The notifier ``NOTIFY_SOCKET`` asks for (removed from the
        environment, see module doc)."""
        return cls(os.environ.pop("NOTIFY_SOCKET", None))

    @property
    def enabled(self) -> bool:
        return self._sock is not None

    def send(self, *fields: str) -> bool:
        """Send one datagram of ``KEY=VALUE`` lines; False if it failed (a
        failure is logged once, never raised: the service runs on)."""
        if self._sock is None:
            return False
        data = "\n".join(fields).encode()
        try:
            with self._lock:
                self._sock.sendto(data, self._target)  # type: ignore[arg-type]
            return True
        except OSError as e:
            if not self._warned:
                self._warned = True
                log.warning("cannot notify the service manager at %s: %s", self.address, e)
            return False

    def ready(self, status: str) -> None:
        self.send("READY=1", f"STATUS={status}")

    def reloading(self) -> None:
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        self.send("RELOADING=1", f"MONOTONIC_USEC={usec}", "STATUS=reloading")

    def stopping(self) -> None:
        self.send("STOPPING=1", "STATUS=stopping")

    def status(self, text: str) -> None:
        self.send(f"STATUS={text}")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def watchdog_interval() -> float | None:
    """Seconds between two ``WATCHDOG=1`` (half of ``WATCHDOG_USEC``), or
    None when no watchdog is asked of this process (variables removed)."""
    usec = os.environ.pop("WATCHDOG_USEC", None)
    pid = os.environ.pop("WATCHDOG_PID", None)
    if not usec:
        return None
    try:
        value = int(usec)
        if pid is not None and int(pid) != os.getpid():
            return None
    except ValueError:
        log.warning("WATCHDOG_USEC=%r or WATCHDOG_PID=%r is not a number: no watchdog",
                    usec, pid)
        return None
    return value / 2e6 if value > 0 else None


class Watchdog:
    """Sends ``WATCHDOG=1`` every ``interval`` seconds while ``probe(timeout)``
    returns True within the interval (see module doc)."""

    def __init__(self, notifier: Notifier, interval: float,
                 probe: Callable[[float], bool]) -> None:
        self.notifier = notifier
        self.interval = interval
        self.probe = probe
        self.sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="actors-watchdog", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(self.interval + 5.0)

    def _run(self) -> None:
        interval = self.interval
        next_at = time.monotonic()
        was_healthy = True
        while not self._stop.is_set():
            began = time.monotonic()
            try:
                healthy = self.probe(interval)
            except Exception:  # noqa: BLE001 - a failing probe is an unhealthy service
                log.exception("the watchdog probe failed")
                healthy = False
            if healthy and not self._stop.is_set():
                self.notifier.send("WATCHDOG=1")
                self.sent += 1
            if healthy != was_healthy:  # said once per change, not every interval
                if healthy:
                    log.warning("watchdog: the service answers again")
                else:
                    log.warning("watchdog: the node or the root supervisor did not answer "
                                "within %.2f s: not telling the service manager it is alive",
                                interval)
                was_healthy = healthy
            next_at = max(next_at + interval, began)
            self._stop.wait(max(0.0, next_at - time.monotonic()))
