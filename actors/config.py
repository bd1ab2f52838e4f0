"""Configuration as validated, frozen values.

:class:`SystemConfig` holds what ``ActorSystem(...)`` takes; every check
names the argument and the bad value and runs before anything starts.
:class:`HostBoot` is what the node hands a new host process (it travels as
the spawned process's argument, pickled by ``multiprocessing`` itself).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import sys
from typing import Any

from actors.errors import ConfigError
from actors.hostboot import HostBoot  # (a module of its own: a host imports only it)

__all__ = ["HostBoot", "SystemConfig", "TRANSPORTS", "tcp_host"]

TRANSPORTS = ("zmq", "pipe")
TEMPLATE_SUPPORTED = sys.platform.startswith("linux") and hasattr(os, "fork")
WHEN_FULL = ("block", "drop")
NODE_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}\Z")
_TCP = re.compile(r"tcp://(?P<host>[^:/]+|\[[0-9A-Fa-f:]+\])(:(?P<port>\d{1,5}))?\Z")
_WILDCARDS = ("*", "0.0.0.0", "[::]", "[0:0:0:0:0:0:0:0]")
# checked in full (endpoints, prefix) by actors.cluster.etcd.parse_url
_CLUSTER = re.compile(r"etcds?://[^/\s]+/[A-Za-z0-9_./-]+\Z")


def tcp_host(bind: str) -> str:
    """``tcp://HOST`` of a ``tcp://HOST[:PORT]`` bind (where a node's other
    processes bind, each on a free port)."""
    match = _TCP.match(bind)
    return f"tcp://{match['host']}" if match is not None else bind


def _check_tcp(bind: str, keys: Any) -> None:
    match = _TCP.match(bind)
    if match is None or (match["port"] is not None and not 0 < int(match["port"]) < 65536):
        raise ConfigError(f"bind must be 'ipc', 'tcp://HOST' or 'tcp://HOST:PORT', got {bind!r}")
    if match["host"] in _WILDCARDS:
        raise ConfigError(f"bind={bind!r}: a wildcard address is refused; bind the address "
                          f"other nodes reach this one at (it is also what refs carry), "
                          f"e.g. tcp://10.0.0.5:7000")
    if keys is None:
        raise ConfigError(f"bind={bind!r} needs keys: every tcp link is authenticated and "
                          f"encrypted with CurveZMQ. Make a keys folder with "
                          f"'actors keys new DIR' and pass keys=DIR (docs/cluster.md)")


def _seconds(label: str, value: Any) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"{label} must be a positive number of seconds, got {value!r}")


def _delay(label: str, value: Any) -> None:
    if value is not None and (not isinstance(value, (int, float)) or isinstance(value, bool)
                              or not 0 < value < 3600):
        raise ValueError(f"{label} must be None or a number of seconds in (0, 3600), "
                         f"got {value!r}")


def _count(label: str, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{label} must be an int >= 0, got {value!r}")


@dataclasses.dataclass(frozen=True)
class SystemConfig:
    """The settings of one ActorSystem (see ``ActorSystem`` for each).

    Defaults: zmq over ipc sockets in a private folder, 5 s stop timeout,
    60 s spawn timeout, log level of the root logger, 2 warm spares at rest
    (up to 8 under demand, back to 2 after 10 s without a spawn), hosts
    forked from a template process on Linux, a
    restart buffer of 10,000 messages per address, deadlock detection
    within 0.2 s, quiescence off; frames of at most 64 MiB; at most 10,000
    tells from one process queued in one actor's mailbox, a sender that
    would pass it waiting for room (``when_full="block"``, no time limit);
    a thread waiting for a reply busy-waits up to 200 us before sleeping.
    """

    transport: str = "zmq"
    bind: str = "ipc"
    stop_timeout: float = 5.0
    spawn_timeout: float = 60.0
    log_level: int | str | None = None   # a logging level or its name
    spares: int = 2
    max_spares: int | None = None        # None: max(8, spares)
    spares_idle: float = 10.0
    template: bool | None = None         # None: on where supported (Linux)
    restart_buffer: int = 10_000
    deadlock_detection: float | None = 0.2
    quiescence: float | None = None
    max_frame: int = 64 << 20
    mailbox_size: int = 10_000
    when_full: str = "block"
    send_timeout: float | None = None
    node: str | None = None              # this node's name (refs carry it)
    keys: str | None = None              # the keys folder (tcp: required)
    link_timeout: float = 1.5            # a silent link to a node is lost after it
    busy_wait: float = 0.0002            # s a thread waiting for a reply polls before sleeping
    cluster: str | None = None           # etcd://HOST:PORT[,...]/PREFIX (actors.cluster)
    lease_ttl: int = 5                   # s of the node's etcd lease

    def _check_cluster(self) -> None:
        if not isinstance(self.lease_ttl, int) or isinstance(self.lease_ttl, bool) \
                or not 1 <= self.lease_ttl <= 3600:
            raise ValueError(f"lease_ttl must be a whole number of seconds in [1, 3600] "
                             f"(etcd leases count whole seconds), got {self.lease_ttl!r}")
        if self.cluster is None:
            return
        if not isinstance(self.cluster, str) or not _CLUSTER.match(self.cluster):
            raise ConfigError(f"cluster must be 'etcd://HOST:PORT[,HOST:PORT...]/PREFIX' "
                              f"(etcds:// for TLS), got {self.cluster!r}")
        if self.node is None or self.keys is None:
            raise ConfigError("cluster= needs node=NAME, bind='tcp://HOST:PORT' and keys=DIR: "
                              "members link to each other over CURVE (docs/cluster.md)")

    def __post_init__(self) -> None:
        if self.transport not in TRANSPORTS:
            raise ValueError(f"transport must be one of {TRANSPORTS}, got {self.transport!r}")
        if not isinstance(self.bind, str) or (self.bind != "ipc"
                                              and not self.bind.startswith("tcp://")):
            raise ValueError(f"bind must be 'ipc' or 'tcp://HOST', got {self.bind!r}")
        if self.transport == "pipe" and self.bind != "ipc":
            raise ValueError("bind applies to the zmq transport only")
        if self.node is not None and (not isinstance(self.node, str)
                                      or not NODE_NAME.match(self.node)):
            raise ConfigError(f"node must be a name of letters, digits, '_' or '-', "
                              f"got {self.node!r}")
        if self.keys is not None and isinstance(self.keys, os.PathLike):
            object.__setattr__(self, "keys", os.fspath(self.keys))
        if self.keys is not None and (not isinstance(self.keys, str) or self.bind == "ipc"):
            raise ConfigError(f"keys={self.keys!r}: keys are for tcp links "
                              f"(bind='tcp://HOST:PORT'); ipc needs none")
        if self.bind != "ipc":
            _check_tcp(self.bind, self.keys)
        _seconds("link_timeout", self.link_timeout)
        self._check_cluster()
        if not isinstance(self.busy_wait, (int, float)) or isinstance(self.busy_wait, bool) \
                or not 0 <= self.busy_wait <= 0.01:
            raise ValueError(f"busy_wait must be a number of seconds in [0, 0.01] (0: off), "
                             f"got {self.busy_wait!r}")
        _seconds("stop_timeout", self.stop_timeout)
        _seconds("spawn_timeout", self.spawn_timeout)
        _delay("deadlock_detection", self.deadlock_detection)
        _delay("quiescence", self.quiescence)
        _count("spares", self.spares)
        if self.max_spares is None:
            object.__setattr__(self, "max_spares", max(8, self.spares))
        _count("max_spares", self.max_spares)
        if self.max_spares < self.spares:  # type: ignore[operator]
            raise ValueError(f"max_spares must be >= spares ({self.spares}), "
                             f"got {self.max_spares!r}")
        _seconds("spares_idle", self.spares_idle)
        if self.template is None:
            object.__setattr__(self, "template", TEMPLATE_SUPPORTED)
        elif not isinstance(self.template, bool):
            raise ValueError(f"template must be None, True or False, got {self.template!r}")
        elif self.template and not TEMPLATE_SUPPORTED:
            raise ValueError("template=True needs Linux (a forked host must die with its "
                             "parent: PR_SET_PDEATHSIG)")
        _count("restart_buffer", self.restart_buffer)
        if not isinstance(self.max_frame, int) or isinstance(self.max_frame, bool) \
                or not 4096 <= self.max_frame <= 1 << 31:
            raise ValueError(f"max_frame must be an int of bytes in [4096, 2**31], "
                             f"got {self.max_frame!r}")
        if not isinstance(self.mailbox_size, int) or isinstance(self.mailbox_size, bool) \
                or self.mailbox_size < 2:
            raise ValueError(f"mailbox_size must be an int >= 2, got {self.mailbox_size!r}")
        if self.when_full not in WHEN_FULL:
            raise ValueError(f"when_full must be one of {WHEN_FULL}, got {self.when_full!r}")
        if self.send_timeout is not None:
            _seconds("send_timeout", self.send_timeout)
        # normalized: floats for seconds, a concrete level
        for name in ("stop_timeout", "spawn_timeout", "link_timeout", "spares_idle",
                     "busy_wait"):
            object.__setattr__(self, name, float(getattr(self, name)))
        for name in ("deadlock_detection", "quiescence", "send_timeout"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, float(value))
        if self.log_level is None:
            object.__setattr__(self, "log_level", logging.getLogger().getEffectiveLevel())
