"""Manager, SyncManager and BaseManager: shared objects served by actors.

A manager is a process of its own (an anchor actor). Every object it makes
(a dict, a list, a Namespace, a registered type, or a Queue, Lock, Event...)
is an actor hosted in that process, and the proxies are handles on those
actors, usable from any process they are passed to. ``shutdown()`` (or
leaving the ``with`` block) ends the manager's process and its objects.
Remote managers (``address``/``connect``/``serve_forever``) are not
supported: an actors node will span machines instead.
"""

from __future__ import annotations

from collections.abc import Callable
from multiprocessing.managers import RemoteError  # the standard library's class
from typing import Any

import psutil

from actors.launcher import exitcode_of
from actors.mp import conditions, context, locks, pool, queues
from actors.mp.proxies import (
    ArrayProxy,
    AutoProxy,
    BaseProxy,
    DictProxy,
    ListProxy,
    ManagedValue,
    Namespace,
    NamespaceProxy,
    ObjectServer,
    ValueProxy,
    make_array,
)
from transport.codec import Pickled

# the standard library's proxy class of each typeid (their reprs name it)
PROXY_NAMES = {"Queue": "AutoProxy[Queue]", "JoinableQueue": "AutoProxy[JoinableQueue]",
               "Lock": "AcquirerProxy", "RLock": "AcquirerProxy", "Semaphore": "AcquirerProxy",
               "BoundedSemaphore": "AcquirerProxy", "Event": "EventProxy",
               "Condition": "ConditionProxy", "Barrier": "BarrierProxy"}

__all__ = ["BaseManager", "BaseProxy", "DictProxy", "ListProxy", "Namespace",
           "NamespaceProxy", "RemoteError", "SyncManager", "ValueProxy"]


class ManagerAnchor(context.Anchor):
    """The first actor of a manager's process."""


class ManagerProcess:
    """A manager's process as the standard library's ``manager._process``
    shows it: its pid, whether it runs, and its exit code once it ended (as
    the node that launched it saw it; None where this process's node did
    not launch it)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        node = getattr(context.system(), "_node", None)
        launcher = getattr(node, "launcher", None)
        hosts = launcher.live_hosts() if launcher is not None else []
        self._host = next((h for h in hosts if h.pid == pid), None)

    @property
    def exitcode(self) -> int | None:
        if self._host is None or not self._host.exited.is_set():
            return None
        return exitcode_of(self._host.exit_reason)

    def is_alive(self) -> bool:
        return psutil.pid_exists(self.pid) if self._host is None else \
            not self._host.exited.is_set()

    def join(self, timeout: float | None = None) -> None:
        if self._host is not None:
            self._host.exited.wait(timeout)
            return
        try:
            psutil.Process(self.pid).wait(timeout)
        except (psutil.NoSuchProcess, psutil.TimeoutExpired):
            pass


class BaseManager:
    """Starts a manager process; ``register()`` adds types it can make."""

    _registry: dict[str, tuple[Any, Any, Any]] = {}

    def __init__(self, address: Any = None, authkey: bytes | None = None,
                 serializer: str = "pickle", ctx: Any = None, *,
                 shutdown_timeout: float = 1.0) -> None:
        if address is not None:
            raise ValueError("actors.mp managers are local: address is not supported "
                             "(an actors node spans machines instead)")
        self._anchor: Any = None
        self._objects: list[Any] = []  # refs of the objects behind proxies
        self._made: list[Any] = []     # primitives and pools made here
        self._pid: int | None = None   # the manager's process, once shut down
        self._process: ManagerProcess | None = None
        self._shutdown_timeout = shutdown_timeout
        self._state = "initial"

    def start(self, initializer: Callable[..., Any] | None = None,
              initargs: tuple[Any, ...] = ()) -> None:
        if self._state == "started":
            raise RuntimeError("Already started server")
        if self._state == "shutdown":
            raise RuntimeError("Manager has shut down")
        if initializer is not None and not callable(initializer):
            raise TypeError("initializer must be a callable")
        self._anchor = context.spawn(ManagerAnchor, colocate=False)
        self._process = ManagerProcess(self._anchor.ask("pid", timeout=30))
        if initializer is not None:
            self._make(ObjectServer, Pickled(initializer), Pickled(tuple(initargs)), Pickled({}))
        self._state = "started"

    def _make(self, server: type, *args: Any) -> Any:
        return context.spawn(server, *args, colocate=False) if self._anchor is None else \
            self._spawn_here(server, *args)

    def _spawn_here(self, server: type, *args: Any) -> Any:
        with context.placed(self._anchor):
            ref = context.spawn(server, *args)
        self._objects.append(ref)
        return ref

    def _check(self) -> None:
        if self._state != "started":
            raise RuntimeError("Manager is not running (call start() or use it as a context "
                               "manager)" if self._state == "initial" else
                               "Manager has shut down")

    def _create(self, typeid: str, *args: Any, **kwds: Any) -> Any:
        self._check()
        factory, proxytype, exposed = self._registry[typeid]
        if proxytype is None:
            proxytype = AutoProxy
        # what the manager lets proxies call: as the standard library's
        allowed = (exposed or getattr(proxytype, "_exposed_", None)
                   or getattr(proxytype, "_exposed", None) or "public")
        allowed = allowed if allowed == "public" else list(allowed)
        ref = self._spawn_here(ObjectServer, Pickled(factory), Pickled(args), Pickled(kwds),
                               allowed)
        proxy = proxytype(ref, typeid)
        if exposed is not None:
            proxy._exposed = tuple(exposed)
        return proxy

    def _placed(self, typeid: str, make: Callable[..., Any], *args: Any, **kwds: Any) -> Any:
        self._check()
        with context.placed(self._anchor):
            made = make(*args, **kwds)
        self._made.append(made)
        if typeid in PROXY_NAMES:
            made._proxy = (PROXY_NAMES[typeid], typeid)
        return made

    @classmethod
    def register(cls, typeid: str, callable: Callable[..., Any] | None = None,  # noqa: A002
                 proxytype: Any = None, exposed: Any = None, method_to_typeid: Any = None,
                 create_method: bool = True) -> None:
        """Let this manager class make ``typeid`` objects: ``callable(*args)``
        runs in the manager's process; the method ``typeid`` returns a proxy."""
        if "_registry" not in cls.__dict__:
            cls._registry = dict(cls._registry)
        cls._registry[typeid] = (callable, proxytype, exposed)
        if create_method:
            def create(self: BaseManager, *args: Any, **kwds: Any) -> Any:
                return self._create(typeid, *args, **kwds)
            create.__name__ = typeid
            setattr(cls, typeid, create)

    def shutdown(self) -> None:
        if self._state != "started":
            self._state = "shutdown"
            return
        self._state = "shutdown"
        try:
            self._pid = self._anchor.ask("pid", timeout=5.0)
        except Exception:
            self._pid = None  # gone already
        # Everything made here ends: pools (and their workers), primitives,
        # shared objects, then the anchor, and so the process.
        for made in self._made:
            try:
                if isinstance(made, pool.Pool):
                    made.terminate()
                else:
                    made._ref.stop(timeout=5.0)
                    if isinstance(made, conditions.Condition):  # and its lock
                        made._lock._ref.stop(timeout=5.0)
            except Exception:
                pass  # gone already
        for ref in [*self._objects, self._anchor]:
            try:
                ref.stop(timeout=5.0)
            except Exception:
                pass
        if self._process is not None:  # as the standard library's, for a moment
            self._process.join(self._shutdown_timeout)

    def _number_of_objects(self) -> int:
        """How many shared objects live in the manager's process now (they
        live until it shuts down: proxies are not reference-counted). As
        the standard library's, for tests; from the program that started it."""
        return len(self._hosted())

    def _debug_info(self) -> str:
        """One line per object the manager's process holds."""
        return "\n".join(f"  {entry['name'] or '#' + str(entry['uid'])}"
                         for entry in self._hosted())

    def _hosted(self) -> list[dict[str, Any]]:
        """The statistics of the actors in the manager's process, but its anchor."""
        self._check()
        pid = self._anchor.ask("pid", timeout=10)
        return [entry for entry in context.system().statistics()
                if entry["pid"] == pid and entry["uid"] != self._anchor.uid]

    def join(self, timeout: float | None = None) -> None:
        """Wait (up to ``timeout`` s) until the manager's process has ended,
        after :meth:`shutdown`."""
        if self._pid is None:
            return
        try:
            psutil.Process(self._pid).wait(timeout)
        except (psutil.NoSuchProcess, psutil.TimeoutExpired):
            pass

    def connect(self) -> None:
        raise NotImplementedError("actors.mp managers are local: connect() is not supported")

    def __enter__(self) -> BaseManager:
        if self._state == "initial":
            self.start()
        self._check()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.shutdown()

    @property
    def address(self) -> Any:
        return self._anchor


class SyncManager(BaseManager):
    """What ``Manager()`` returns: shared dict, list, Namespace, Value, Array
    and the synchronisation primitives, in the manager's process."""

    def Queue(self, maxsize: int = 0) -> queues.JoinableQueue:  # noqa: N802
        """As the standard library's proxy of a ``queue.Queue``: it has
        ``task_done()`` and ``join()``."""
        return self._placed("Queue", queues.JoinableQueue, maxsize)

    def JoinableQueue(self, maxsize: int = 0) -> queues.JoinableQueue:  # noqa: N802
        return self._placed("JoinableQueue", queues.JoinableQueue, maxsize)

    def Lock(self) -> locks.Lock:  # noqa: N802
        return self._placed("Lock", locks.Lock)

    def RLock(self) -> locks.RLock:  # noqa: N802
        return self._placed("RLock", locks.RLock)

    def Semaphore(self, value: int = 1) -> locks.Semaphore:  # noqa: N802
        return self._placed("Semaphore", locks.Semaphore, value)

    def BoundedSemaphore(self, value: int = 1) -> locks.BoundedSemaphore:  # noqa: N802
        return self._placed("BoundedSemaphore", locks.BoundedSemaphore, value)

    def Event(self) -> conditions.Event:  # noqa: N802
        return self._placed("Event", conditions.Event)

    def Condition(self, lock: Any = None) -> conditions.Condition:  # noqa: N802
        return self._placed("Condition", conditions.Condition, lock)

    def Barrier(self, parties: int, action: Any = None,  # noqa: N802
                timeout: float | None = None) -> conditions.Barrier:
        return self._placed("Barrier", conditions.Barrier, parties, action, timeout)

    def Pool(self, processes: int | None = None,  # noqa: N802
             initializer: Callable[..., Any] | None = None, initargs: tuple[Any, ...] = (),
             maxtasksperchild: int | None = None) -> pool.Pool:
        """A process pool whose supervisor lives in the manager's process:
        the pool, and its workers, end when the manager shuts down."""
        return self._placed("Pool", pool.Pool, processes, initializer, initargs, maxtasksperchild)

    def Value(self, typecode: Any, value: Any, lock: bool = True) -> Any:  # noqa: N802
        return self._create("Value", typecode, value, lock)

    def Array(self, typecode: Any, sequence: Any, lock: bool = True) -> Any:  # noqa: N802
        return self._create("Array", typecode, sequence, lock)


SyncManager.register("dict", dict, DictProxy)
SyncManager.register("list", list, ListProxy)
SyncManager.register("Namespace", Namespace, NamespaceProxy)
SyncManager.register("Value", ManagedValue, ValueProxy, create_method=False)
SyncManager.register("Array", make_array, ArrayProxy, create_method=False)


