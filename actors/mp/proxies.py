"""Proxies of a Manager's shared objects, and the actor that serves each
object (``ObjectServer``, in the manager's process): a dict, a list, a
Namespace, a Value, an Array or a registered type, called by messages."""

from __future__ import annotations

import itertools
import pickle
import threading
from collections.abc import Callable, ItemsView, KeysView, ValuesView
from multiprocessing.managers import RemoteError
from typing import Any

from actors.host import running_host
from actors.mp import context
from actors.mp.primitive import Handle, Primitive, unpack
from actors.mp.values import pack
from actors.mp.values import unpack as unpack_value
from transport.codec import Pickled

__all__ = ["ArrayProxy", "AutoProxy", "BaseProxy", "DictProxy", "ListProxy", "ManagedValue",
           "Namespace", "NamespaceProxy", "ObjectServer", "ValueProxy", "make_array"]


class ObjectServer(Primitive):
    """A Manager's shared object (dict, list, Namespace or a registered
    type): method calls with pickled arguments and results."""

    label = "object"

    def __init__(self, factory: Any, args: Any, kwargs: Any, exposed: Any = None,
                 name: str = "") -> None:
        super().__init__(name)
        self.obj = _unpack(factory)(*_unpack(args), **_unpack(kwargs))
        self.label = type(self.obj).__name__
        self.lock = threading.Lock()
        # the methods proxies may call: all (None: a dict, a list...), or,
        # for a registered type, its `exposed` or its public methods
        if exposed == "public":
            exposed = [n for n in dir(self.obj)
                       if not n.startswith("_") and callable(getattr(self.obj, n, None))]
        self.exposed = None if exposed is None else {*exposed, "__repr__", "__str__"}
        self.iterators: dict[int, Any] = {}
        self.numbers = itertools.count(1)

    def do_call(self, method: str, args: Any) -> Any:
        if self.exposed is not None and method not in self.exposed:
            raise RemoteError(f"method {method!r} of {self.label!r} object is not in the "
                              f"list of allowed methods")
        args, kwargs = _unpack(args)
        if method == "__getattribute__" and args and args[0].startswith("__"):
            raise AttributeError(args[0])
        result = getattr(self.obj, method)(*args, **kwargs)
        if isinstance(result, (KeysView, ValuesView, ItemsView)):
            result = list(result)  # a view cannot travel; its contents can
        return pack(result)

    def do_iter(self) -> int:
        """An iterator over the object, kept here: its number."""
        number = next(self.numbers)
        self.iterators[number] = iter(self.obj)
        return number

    def do_next(self, number: int) -> Any:
        """[True, the next item], or [False, None] once the iterator is
        exhausted (and forgotten). An error (a dict changed size) is raised."""
        iterator = self.iterators.get(number)
        if iterator is None:
            return [False, None]
        try:
            return [True, pack(next(iterator))]
        except StopIteration:
            del self.iterators[number]
            return [False, None]
        except BaseException:
            del self.iterators[number]
            raise

    def do_drop(self, number: int) -> None:
        self.iterators.pop(number, None)

    def do_getattr(self, name: str) -> Any:
        return pack(getattr(self.obj, name))

    def do_setattr(self, name: str, value: Any) -> None:
        setattr(self.obj, name, _unpack(value))

    def do_delattr(self, name: str) -> None:
        delattr(self.obj, name)

    def do_copy(self) -> Any:
        return pack(pickle.loads(pickle.dumps(self.obj)))


def _unpack(value: Any) -> Any:
    """A value sent to a primitive, back (primitives live in host processes)."""
    return unpack_value(value, running_host().runtime)  # type: ignore[union-attr]


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
        return f"<{type(self).__name__} object, typeid {self._typeid!r} at {id(self):#x}>"

    def __str__(self) -> str:
        return self._callmethod("__repr__")


def _method(name: str) -> Callable[..., Any]:
    def call(self: BaseProxy, *args: Any, **kwds: Any) -> Any:
        return self._callmethod(name, args, kwds)
    call.__name__ = name
    return call


def proxy_class(name: str, methods: tuple[str, ...]) -> type:
    # __repr__ is exposed (str() calls it) but repr() stays the proxy's own,
    # as in the standard library
    namespace: dict[str, Any] = {name_: _method(name_) for name_ in methods
                                 if name_ != "__repr__"}
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
        """Keys, one at a time from an iterator in the manager (as the
        standard library's: a dict changed meanwhile raises RuntimeError)."""
        return _remote_iter(self)


def _remote_iter(proxy: BaseProxy) -> Any:
    return _next_of(proxy, proxy._ask(("iter",)))  # made now, read lazily


def _next_of(proxy: BaseProxy, number: int) -> Any:
    done = False
    try:
        while True:
            more, item = proxy._ask(("next", number))
            if not more:
                done = True
                return
            yield unpack(item)
    except BaseException:
        done = True  # the manager dropped it, or is gone
        raise
    finally:
        if not done:  # abandoned: the manager forgets it
            try:
                proxy._tell(("drop", number))
            except Exception:
                pass


class ListProxy(proxy_class("ListProxyBase", LIST_METHODS)):  # type: ignore[misc]
    def __iadd__(self, value: Any) -> ListProxy:
        self._callmethod("extend", (value,))
        return self

    def __imul__(self, value: int) -> ListProxy:
        self._callmethod("__imul__", (value,))
        return self

    def __iter__(self) -> Any:
        """Item by item, as the standard library's (a change made meanwhile
        is seen)."""
        index = 0
        while True:
            try:
                item = self[index]
            except IndexError:
                return
            yield item
            index += 1


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


def make_array(typecode: Any, sequence: Any, lock: bool = True) -> list[Any]:
    return list(sequence)


ArrayProxy = proxy_class("ArrayProxy", ("__len__", "__getitem__", "__setitem__", "__repr__"))


class AutoProxy(BaseProxy):
    """The proxy of a registered type: its public methods (or the ones
    registered as ``exposed``), called remotely."""

    def __getattr__(self, name: str) -> Any:
        exposed = self.__dict__.get("_exposed")
        if (name not in exposed) if exposed is not None else name.startswith("_"):
            raise AttributeError(name)
        return lambda *args, **kwds: self._callmethod(name, args, kwds)
