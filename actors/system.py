"""ActorSystem: a node of the runtime, the main program's handle on it."""

from __future__ import annotations

import atexit
import importlib
from multiprocessing import spawn as _stdlib_spawn
from typing import Any

from actors.actor import Actor, spec_for
from actors.config import SystemConfig
from actors.errors import ActorError, ConfigError
from actors.node import Node
from actors.protocol import ActorSpec
from actors.ref import ActorRef
from actors.signals import StopOnSigterm
from actors.statistics import collect, counters

__all__ = ["ActorSystem"]


class ActorSystem:
    """A node: spawns actors in processes, finds them by name, stops them.

    Args:
        transport: ``"zmq"`` (default; msgpack frames over ZeroMQ) or
            ``"pipe"`` (multiprocessing Pipes, relayed through this process).
        bind: for zmq, ``"ipc"`` (Unix sockets in a private temporary
            directory; the default) or ``"tcp://HOST:PORT"`` (this node's
            service there, its processes on free ports of HOST;
            ``tcp://HOST``: a free port too), which needs ``keys``.
        stop_timeout: seconds an actor gets to run ``on_stop`` and end before
            its process is killed (default 5).
        spawn_timeout: seconds a new process gets to construct its actor.
        log_level: lowest level children ship to this process's logging
            (default: the root logger's effective level here).
        spares: warm spare processes kept ready once the first actor is
            spawned (default 2; 0: none). A spawn or a restart that finds a
            spare skips the process start-up.
        max_spares: how far the pool grows under demand (default None:
            ``max(8, spares)``): a spawn or restart that finds it empty
            raises its target.
        spares_idle: seconds without a spawn after which a grown pool
            shrinks back to ``spares`` (default 10).
        template: fork new processes from a template process started with
            spawn (a clean interpreter with the runtime imported, no thread):
            a few ms each instead of an interpreter start. Default None: on
            where supported (Linux); False: every process is spawned. See
            docs/supervision.md.
        restart_buffer: messages each process holds for a supervised actor
            while it restarts (default 10,000); past it they are dead letters.
        deadlock_detection: seconds within which a cycle of blocking waits
            is reported (default 0.2): the youngest wait of the cycle fails
            with :class:`DeadlockError` naming it. None turns it off.
        quiescence: opt-in grace period in seconds (default None: off).
            When a thread of the main program has waited this long on an
            ask while every actor is idle or blocked and no message is in
            flight, its wait fails with :class:`DeadlockError` instead of
            hanging (see docs/deadlocks.md for what it cannot see).
        max_frame: the largest frame in bytes (default 64 MiB); a message
            whose encoding is bigger raises :class:`MessageTooLarge` where it
            is sent, and inboxes refuse bigger frames.
        mailbox_size: how many tells from one process may wait in one
            actor's mailbox (default 10,000); past it the sender is slowed
            down (see ``when_full``). docs/security.md has the bounds.
        when_full: ``"block"`` (default): a tell waits for room, up to
            ``send_timeout``, then raises :class:`MailboxFull`; ``"drop"``:
            the tell is dropped and counted as a dead letter.
        send_timeout: seconds a blocked tell waits (None: as long as it takes).
        node: this node's name (letters, digits, ``_``, ``-``); refs of its
            actors name it (``ref.node`` is the name and the incarnation).
        keys: the keys folder (``actors keys new DIR``); required with
            ``bind="tcp://..."``: every tcp link is CurveZMQ, and only
            nodes with the same folder get a frame through.
        link_timeout: seconds of silence after which a link to another
            node is lost (ZMTP heartbeats every third of it; default 1.5):
            asks pending on its actors fail with :class:`ActorDeadError`
            and watchers get :class:`Terminated`. docs/cluster.md.
        busy_wait: seconds, in [0, 0.01], a thread that waits for its
            reply (``ask``, ``result()``; not a wait on another process's
            progress, as an ``actors.mp`` lock, queue item or join) keeps
            polling before it sleeps (default 0.0002; 0 turns it off), as
            Erlang's schedulers
            busy-wait: CPU time for a faster round trip. One budget per
            wait, only in the thread that reads the replies (the waiting
            thread of the main program, a host's handler thread), and only
            while replies come that fast: in each process, a wait that
            took longer turns it off until one is quick again.
            docs/performance.md.
        cluster: ``"etcd://HOST:PORT[,HOST:PORT...]/PREFIX"`` (``etcds://``:
            TLS): join that cluster (needs ``node``, tcp ``bind``, ``keys``): names
            unique in it, ``spawn(..., node=...)``, one "down" decision
            per node, fencing (:class:`ClusterError`). docs/cluster.md.
        lease_ttl: whole seconds of this node's etcd lease (default 5).

    Leaving the ``with`` block (or ``shutdown()``, or interpreter exit) stops
    every actor, children before parents and the last started first, then
    ends every process it started.

    SIGTERM: a system created in the main thread of a program that left
    SIGTERM to its default action makes the first SIGTERM raise
    ``SystemExit(143)`` in the main thread (as Ctrl-C raises
    KeyboardInterrupt): the ``with`` block is left and every actor stops in
    order, then the program exits with status 143, without a traceback. A
    program that installed its own SIGTERM handler (or ignores SIGTERM)
    keeps it.
    """

    __module__ = "actors"

    def __init__(self, transport: str = "zmq", *, bind: str = "ipc",
                 stop_timeout: float = 5.0, spawn_timeout: float = 60.0,
                 log_level: int | None = None, spares: int = 2,
                 max_spares: int | None = None, spares_idle: float = 10.0,
                 template: bool | None = None,
                 restart_buffer: int = 10_000, deadlock_detection: float | None = 0.2,
                 quiescence: float | None = None, max_frame: int = 64 << 20,
                 mailbox_size: int = 10_000, when_full: str = "block",
                 send_timeout: float | None = None, node: str | None = None,
                 keys: str | None = None, link_timeout: float = 1.5,
                 busy_wait: float = 0.0002, cluster: str | None = None,
                 lease_ttl: int = 5) -> None:
        # A spawned child re-importing a script without the
        # ``if __name__ == "__main__":`` guard: fail at once, with the standard
        # library's own error, before any thread or process is started.
        _stdlib_spawn._check_not_importing_main()
        self.config = SystemConfig(
            transport=transport, bind=bind, stop_timeout=stop_timeout,
            spawn_timeout=spawn_timeout, log_level=log_level, spares=spares,
            max_spares=max_spares, spares_idle=spares_idle, template=template,
            restart_buffer=restart_buffer, deadlock_detection=deadlock_detection,
            quiescence=quiescence, max_frame=max_frame, mailbox_size=mailbox_size,
            when_full=when_full, send_timeout=send_timeout, node=node, keys=keys,
            link_timeout=link_timeout, busy_wait=busy_wait, cluster=cluster,
            lease_ttl=lease_ttl)
        self.transport = transport
        self._node = Node(self.config)
        if cluster is not None:  # a layer above the core, loaded by name (architecture.md)
            try:
                importlib.import_module("actors.cluster").join(self._node)
            except BaseException:
                self._node.shutdown(None)
                raise
        # The node itself, not this object: a system dropped without shutdown
        # must still be stopped at exit (its loop thread keeps the node alive).
        atexit.register(self._node.shutdown, None)
        self._sigterm = StopOnSigterm.attach(self._node)

    def spawn(self, actor_class: type[Actor], *args: Any, name: str | None = None,
              colocate_with: ActorRef | None = None, node: str | list[str] | None = None,
              **kwargs: Any) -> ActorRef:
        """Start ``actor_class(*args, **kwargs)`` in a new process and return
        its ref once ``on_start`` has run.

        Args:
            name: a unique name for :meth:`lookup` (in a cluster: unique in
                the cluster).
            colocate_with: host the actor in the same process as this actor
                instead of a new one (many small actors, one process).
            node: in a cluster, where it runs: a member's name, a list of
                names (the first live one), or ``"*"`` (any other live
                member). Its class must be imported on that node too.

        Raises:
            SerializationError: an argument cannot be sent.
            ValueError: the name is taken.
            SpawnError: the process died or timed out while starting.
            Exception: whatever the constructor or ``on_start`` raised.
        """
        if not (isinstance(actor_class, type) and issubclass(actor_class, Actor)):
            raise TypeError(f"spawn() takes an Actor subclass, got {actor_class!r}")
        return self._node.spawn_spec(spec_for(actor_class, args, kwargs, name, None,
                                              colocate_with, node=node))

    def spawn_spec(self, spec: ActorSpec) -> ActorRef:
        """Start an actor from a spec made by :func:`actors.actor.spec_for`
        (the low-level form of :meth:`spawn` layers above the core use)."""
        return self._node.spawn_spec(spec)

    def lookup(self, name: str) -> ActorRef | None:
        """The ref of the live actor named ``name``, or None."""
        return self._node.lookup(name)

    def connect(self, address: str, timeout: float = 10.0) -> str:
        """Meet the node whose address is ``address`` (its ``bind``,
        ``tcp://HOST:PORT``) and return its name: from then on refs cross
        between the two, :meth:`lookup` finds the other's names, and the
        deaths of each one's actors (and of the node itself) reach the
        other. Both need ``bind="tcp://..."`` and the same keys folder.

        Raises:
            ConfigError: this system is not bound to tcp://, or the other
                node has the same name.
            ActorError: no node answered within ``timeout`` seconds (down,
                elsewhere, or other keys: CURVE refuses a stranger
                silently).
        """
        remotes = self._node.remotes
        if remotes is None:
            raise ConfigError("connect() needs a system bound to tcp:// with keys "
                              "(ActorSystem(node=..., bind='tcp://HOST:PORT', keys=DIR))")
        return remotes.connect(address, timeout)

    def nodes(self) -> list[str]:
        """The names of the nodes this one has met and not lost; in a
        cluster, every live member, this one included."""
        node = self._node
        return node.cluster.nodes() if node.cluster is not None else (
            [] if node.remotes is None else node.remotes.nodes())

    def members(self) -> list[dict[str, Any]]:
        """In a cluster, every live member: ``name``, ``node_id``,
        ``address``, ``lease``, ``lease_left`` (s; None: etcd did not
        answer), ``self``; others also ``host`` and ``pid``."""
        return [] if self._node.cluster is None else self._node.cluster.members()

    @property
    def address(self) -> str:
        """Where this node's service listens (what other nodes connect to)."""
        return self._node.runtime.address

    @property
    def node(self) -> str:
        """This node's id: its name (if given) and incarnation; refs of its
        actors carry it (``ref.node``)."""
        return self._node.runtime.node_id

    def shutdown(self, timeout: float | None = None) -> None:
        """Stop every actor in order and end every process (idempotent).

        ``timeout`` bounds each actor's stop (default: ``stop_timeout``).
        """
        self._node.shutdown(timeout)
        atexit.unregister(self._node.shutdown)
        if self._sigterm is not None:
            self._sigterm.detach(self._node)

    @property
    def dead_letters(self) -> int:
        """Messages that found no live actor, counted across all processes."""
        return self._node.dead_letters

    def actors(self) -> list[dict[str, Any]]:
        """Every live actor as data: name, uid, ref, class, pid, parent, children."""
        return self._node.registry.listing()

    def tree(self) -> list[dict[str, Any]]:
        """The live actors as a tree of plain data, top-level actors first in
        start order: each a dict with ``name``, ``uid``, ``ref``, ``class``,
        ``pid`` (None while restarting), ``state`` (``"running"``,
        ``"starting"`` or ``"restarting"``), ``supervisor`` (bool),
        ``restart`` (its restart type, None if unsupervised), ``restarts``,
        ``last_exit`` (why its last incarnation ended) and ``children``."""
        return self._node.registry.tree()

    def statistics(self, timeout: float = 1.0) -> list[dict[str, Any]]:
        """Per-actor counters, one dict per live actor in tree order
        (parents before their children, in start order): ``name``,
        ``uid``, ``pid`` (None while restarting), ``mailbox`` (messages
        queued in its mailbox now) and ``handled`` (messages taken from its
        mailbox since this incarnation started) and ``peak`` (the most
        messages its mailbox held at once). Every host process is
        asked at once; one that does not answer within ``timeout`` seconds
        (a handler that does not return to its loop) leaves ``mailbox`` and
        ``handled`` None for its actors. ``actors top`` reads these.
        """
        if not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or timeout < 0:
            raise ValueError(f"timeout must be a number of seconds >= 0, got {timeout!r}")
        node = self._node
        return collect(node.runtime, node.registry, node.launcher, float(timeout))

    def counters(self, timeout: float = 1.0) -> dict[str, int]:
        """What the node and its processes dropped, and why, summed:
        ``malformed`` (frames or envelopes that could not be used),
        ``forged`` (answers naming a uid their call did not go to),
        ``refused`` (messages to addresses of no process of this node),
        ``flow_dropped`` and ``flow_blocked`` (tells dropped, or that
        waited, for want of room in a mailbox) and ``dead_letters``. A
        process that does not answer within ``timeout`` is left out. See
        docs/security.md."""
        node = self._node
        return counters(node.runtime, node.launcher, float(timeout))

    def spare_pool(self) -> dict[str, Any]:
        """The pool of spare processes and how processes started: ``ready``
        (spares waiting), ``starting``, ``target`` (what it refills to now),
        ``spares`` and ``max_spares`` (its bounds), ``taken`` (spawns and
        restarts that asked it), ``misses`` (of those, how many found no
        spare ready), ``grown`` and ``shrunk`` (times the target rose, and
        spares ended when idle), ``forked`` and ``spawned`` (processes
        started from the template or from spawn), ``template`` (its pid, or
        None when it does not serve) and ``template_problem`` (why not)."""
        return self._node.launcher.stats()

    def wait_graph(self) -> list[dict[str, Any]]:
        """The current wait-for graph as data: one dict per edge, oldest
        first, for waits older than a quarter of the detection delay:
        ``waiter`` and ``target`` (names), ``waiter_uid``/``target_uid``
        (None for a thread of the main program, or the node), ``kind``
        (``"ask"``, ``"call"``, ``"spawn"``, ``"restart"``, ``"stack"`` or
        ``"service"``), ``waits_on`` (the message or call), ``seconds``
        (how long so far) and ``text`` (one readable line). Empty when
        ``deadlock_detection`` is None (no wait is reported then)."""
        return self._node.detector.graph.view()

    @property
    def deadlocks(self) -> list[dict[str, Any]]:
        """The deadlocks broken so far (the last 100): each a dict with
        ``cycle`` (its steps, as in :attr:`DeadlockError.cycle`), ``victim``
        (the wait that failed) and ``time``."""
        return list(self._node.detector.reports)

    def join(self, timeout: float | None = None) -> bool:
        """Wait until the system has shut down (False if ``timeout`` passed
        first). The main program of a service blocks here.

        Raises:
            ActorError: a top-level supervisor failed (it gave up restarting
                its children, or its process died) and the system was shut
                down because of it; uncaught, the program exits non-zero.
        """
        if not self._node.finished.wait(timeout):
            return False
        if self._node.failure is not None:
            raise self._node.failure
        return True

    @property
    def failure(self) -> ActorError | None:
        """Why the system shut itself down (a top-level supervisor failed),
        or None."""
        return self._node.failure

    def __enter__(self) -> ActorSystem:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.shutdown()

    def __repr__(self) -> str:
        return f"<ActorSystem {self._node.runtime.node_id} transport={self.transport!r}>"

