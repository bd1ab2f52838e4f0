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
from typing import Any

from actors.mp import context, queues, synchronize
from actors.mp.handles import Handle, unpack
from actors.mp.servers import ObjectServer
from transport.codec import Pickled

__all__ = ["BaseManager", "BaseProxy", "DictProxy", "ListProxy", "Namespace",
           "NamespaceProxy", "SyncManager", "ValueProxy"]


class ManagerAnchor(context.Anchor):
    """The first actor of a manager's process."""


class BaseProxy(Handle):
    """A handle on a managed object: ``_callmethod(name, args, kwds)``."""

    _exposed: tuple[str, ...] | None = None

    def __init__(self, ref: Any, typeid: str = "") -> None:
        super().__init__(ref)
        self._typeid = typeid

    def _callmethod(self, methodname: str, args: tuple[Any, ...] = (),
                    kwds: dict[str, Any] | None = None) -> Any:
        if self._exposed is not None and methodname not in self._exposed:
            raise AttributeError(f"method {methodname!r} of {self._typeid!r} is not exposed")
        return unpack(self._ask(("call", methodname, Pickled((tuple(args), dict(kwds or {}))))))

    def _getvalue(self) -> Any:
        """A copy of the referent."""
        return unpack(self._ask(("copy",)))

    def __repr__(self) -> str:
        return f"<{type(self).__name__} object, typeid {self._typeid!r} #{self._ref.uid}>"

    def __str__(self) -> str:
        return self._callmethod("__repr__")


def _method(name: str) -> Callable[..., Any]:
    def call(self: BaseProxy, *args: Any, **kwds: Any) -> Any:
        return self._callmethod(name, args, kwds)
    call.__name__ = name
    return call


def proxy_class(name: str, methods: tuple[str, ...]) -> type:
    namespace: dict[str, Any] = {name_: _method(name_) for name_ in methods}
    namespace["_exposed"] = methods
    return type(name, (BaseProxy,), namespace)


DICT_METHODS = ("__contains__", "__delitem__", "__getitem__", "__len__", "__setitem__",
                "clear", "copy", "get", "items", "keys", "pop", "popitem", "setdefault",
                "update", "values", "__repr__")
LIST_METHODS = ("__add__", "__contains__", "__delitem__", "__getitem__", "__len__",
                "__mul__", "__reversed__", "__rmul__", "__setitem__", "append", "count",
                "extend", "index", "insert", "pop", "remove", "reverse", "sort", "__imul__",
                "__iadd__", "__repr__")


class DictProxy(proxy_class("DictProxyBase", DICT_METHODS)):  # type: ignore[misc]
    def keys(self) -> list[Any]:
        return list(self._callmethod("keys"))

    def values(self) -> list[Any]:
        return list(self._callmethod("values"))

    def items(self) -> list[Any]:
        return list(self._callmethod("items"))

    def __iter__(self) -> Any:
        return iter(self.keys())


class ListProxy(proxy_class("ListProxyBase", LIST_METHODS)):  # type: ignore[misc]
    def __iadd__(self, value: Any) -> ListProxy:
        self._callmethod("extend", (value,))
        return self

    def __imul__(self, value: int) -> ListProxy:
        self._callmethod("__imul__", (value,))
        return self

    def __iter__(self) -> Any:
        return iter(self._getvalue())


class Namespace:
    """A bag of attributes (what ``Manager().Namespace()`` shares)."""

    def __init__(self, **kwds: Any) -> None:
        self.__dict__.update(kwds)

    def __repr__(self) -> str:
        items = ", ".join(f"{k}={v!r}" for k, v in self.__dict__.items()
                          if not k.startswith("_"))
        return f"Namespace({items})"


class NamespaceProxy(BaseProxy):
    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return unpack(self._ask(("getattr", name)))

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("_"):
            object.__setattr__(self, name, value)
        else:
            self._ask(("setattr", name, context.pack(value)))

    def __delattr__(self, name: str) -> None:
        if name.startswith("_"):
            object.__delattr__(self, name)
        else:
            self._ask(("delattr", name))


class ManagedValue:
    def __init__(self, typecode: Any, value: Any, lock: bool = True) -> None:
        self._typecode = typecode
        self._value = value

    def get(self) -> Any:
        return self._value

    def set(self, value: Any) -> None:
        self._value = value

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._typecode!r}, {self._value!r})"


class ValueProxy(proxy_class("ValueProxyBase", ("get", "set", "__repr__"))):  # type: ignore[misc]
    @property
    def value(self) -> Any:
        return self._callmethod("get")

    @value.setter
    def value(self, new: Any) -> None:
        self._callmethod("set", (new,))


def _array(typecode: Any, sequence: Any, lock: bool = True) -> list[Any]:
    return list(sequence)


ArrayProxy = proxy_class("ArrayProxy", ("__len__", "__getitem__", "__setitem__", "__repr__"))


class AutoProxy(BaseProxy):
    """The proxy of a registered type: its public methods, called remotely."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return lambda *args, **kwds: self._callmethod(name, args, kwds)


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
        self._objects: list[Any] = []
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
        ref = self._spawn_here(ObjectServer, Pickled(factory), Pickled(args), Pickled(kwds))
        if proxytype is None:
            proxytype = AutoProxy
        proxy = proxytype(ref, typeid)
        if exposed is not None:
            proxy._exposed = tuple(exposed)
        return proxy

    def _placed(self, make: Callable[..., Any], *args: Any, **kwds: Any) -> Any:
        self._check()
        with context.placed(self._anchor):
            return make(*args, **kwds)

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
            self._anchor.stop()  # its process ends with the objects it hosts
        except Exception:
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

    def Queue(self, maxsize: int = 0) -> queues.Queue:  # noqa: N802
        return self._placed(queues.Queue, maxsize)

    def JoinableQueue(self, maxsize: int = 0) -> queues.JoinableQueue:  # noqa: N802
        return self._placed(queues.JoinableQueue, maxsize)

    def Lock(self) -> synchronize.Lock:  # noqa: N802
        return self._placed(synchronize.Lock)

    def RLock(self) -> synchronize.RLock:  # noqa: N802
        return self._placed(synchronize.RLock)

    def Semaphore(self, value: int = 1) -> synchronize.Semaphore:  # noqa: N802
        return self._placed(synchronize.Semaphore, value)

    def BoundedSemaphore(self, value: int = 1) -> synchronize.BoundedSemaphore:  # noqa: N802
        return self._placed(synchronize.BoundedSemaphore, value)

    def Event(self) -> synchronize.Event:  # noqa: N802
        return self._placed(synchronize.Event)

    def Condition(self, lock: Any = None) -> synchronize.Condition:  # noqa: N802
        return self._placed(synchronize.Condition, lock)

    def Barrier(self, parties: int, action: Any = None,  # noqa: N802
                timeout: float | None = None) -> synchronize.Barrier:
        return self._placed(synchronize.Barrier, parties, action, timeout)

    def Value(self, typecode: Any, value: Any, lock: bool = True) -> Any:  # noqa: N802
        return self._create("Value", typecode, value, lock)

    def Array(self, typecode: Any, sequence: Any, lock: bool = True) -> Any:  # noqa: N802
        return self._create("Array", typecode, sequence, lock)


SyncManager.register("dict", dict, DictProxy)
SyncManager.register("list", list, ListProxy)
SyncManager.register("Namespace", Namespace, NamespaceProxy)
SyncManager.register("Value", ManagedValue, ValueProxy, create_method=False)
SyncManager.register("Array", _array, ArrayProxy, create_method=False)


