"""The values the codec carries beyond msgpack's own: how classes are named
across processes, registered dataclasses, pickled values for local links,
remote exceptions, and time zones. Knows nothing of actors."""

from __future__ import annotations

import dataclasses
import datetime as dt
import importlib
import pickle
import sys
import threading
import zoneinfo
from typing import Any

__all__ = ["Pickled", "RemoteException", "RemoteTraceback", "class_path", "exception_from_wire",
           "find_class", "message", "registered_dataclass", "tz_from_wire", "tz_to_wire"]


class RemoteException(Exception):
    """An exception from another process whose class could not be rebuilt."""

    def __init__(self, type_name: str, message: str, remote_traceback: str = "") -> None:
        super().__init__(f"{type_name}: {message}")
        self.type_name = type_name
        self.message = message
        self.remote_traceback = remote_traceback

    def __reduce__(self) -> Any:
        return (type(self), (self.type_name, self.message, self.remote_traceback))


# -- class naming ------------------------------------------------------------

def class_path(cls: type) -> str:
    """``module:qualname`` of a class, with a spawned child's ``__mp_main__``
    written as ``__main__`` so both sides of a link agree."""
    module = cls.__module__
    if module == "__mp_main__":
        module = "__main__"
    return f"{module}:{cls.__qualname__}"


def find_class(path: str, *, import_missing: bool = True) -> type | None:
    """The class named by :func:`class_path`, or None if it cannot be found.

    With ``import_missing=False`` nothing is imported, not even lazily: the
    module must be in ``sys.modules`` already, and names are read from the
    module's and classes' own ``__dict__`` (a module ``__getattr__``, which
    may import on demand, is never called). Frames are looked up this way.
    """
    if not isinstance(path, str):
        return None
    module_name, _, qualname = path.partition(":")
    module = sys.modules.get(module_name)
    if module is None and module_name == "__main__":
        module = sys.modules.get("__mp_main__")
    if module is None:
        if not import_missing:
            return None
        try:
            module = importlib.import_module(module_name)
        except Exception:
            return None
    obj: Any = module
    for part in qualname.split("."):
        if import_missing:
            obj = getattr(obj, part, None)
        else:
            try:
                found = vars(obj).get(part)
            except TypeError:  # no __dict__
                return None
            if found is None and obj is module:
                found = _lazy_name(module, part)
            obj = found
        if obj is None:
            return None
    return obj if isinstance(obj, type) else None


def _lazy_name(module: Any, name: str) -> Any:
    """A name a package loads on first use (its ``_LAZY_NAMES``: name ->
    home module), if that home module is loaded already; never imports."""
    home = vars(module).get("_LAZY_NAMES", {}).get(name)
    loaded = sys.modules.get(home) if isinstance(home, str) else None
    return None if loaded is None else vars(loaded).get(name)


# -- registered dataclasses -------------------------------------------------

_registry_lock = threading.Lock()
_dataclasses: dict[str, type] = {}


def message(cls: type) -> type:
    """Class decorator: let a dataclass travel in messages.

    Fields are sent by name; the receiver rebuilds the class by its
    ``module:qualname``, so the class's module must already be imported
    there (a class in the main script, or in an actor's module, is: spawned
    children import both). A frame never makes the receiver import anything.
    """
    if not dataclasses.is_dataclass(cls) or not isinstance(cls, type):
        raise TypeError(f"message() takes a dataclass, got {cls!r}")
    with _registry_lock:
        _dataclasses[class_path(cls)] = cls
    return cls


def registered_dataclass(path: str) -> type | None:
    # Never import a module because a frame named it: the receiver must have
    # imported the class's module (and so run its decorator) already.
    return _dataclasses.get(path)


class Pickled:
    """A value sent with pickle (see the module doc). Decoding yields a
    ``Pickled`` holding the bytes; :meth:`load` unpickles them, where and
    when the receiver chooses (a relay forwards them without unpickling)."""

    __slots__ = ("_value", "data")

    def __init__(self, value: Any = None, *, data: bytes | None = None) -> None:
        self._value = value
        self.data = data

    def dump(self) -> bytes:
        if self.data is None:
            self.data = pickle.dumps(self._value, pickle.HIGHEST_PROTOCOL)
        return self.data

    def load(self) -> Any:
        if self.data is None:
            return self._value
        return pickle.loads(self.data)

    def __repr__(self) -> str:
        size = "?" if self.data is None else len(self.data)
        return f"<Pickled {size} bytes>"


def tz_to_wire(tz: dt.tzinfo | None) -> Any:
    if tz is None:
        return None
    key = getattr(tz, "key", None)  # zoneinfo.ZoneInfo
    if isinstance(key, str):
        return ["zone", key]
    if isinstance(tz, dt.timezone):
        offset = tz.utcoffset(None)
        name = tz.tzname(None)
        return ["offset", offset.days * 86400 + offset.seconds, offset.microseconds, name]
    raise TypeError(f"cannot send a datetime with tzinfo of type {type(tz).__name__}")


def tz_from_wire(value: Any) -> dt.tzinfo | None:
    """A time zone as :func:`tz_to_wire` sent it (zoneinfo is imported with
    this module, never because a frame named a zone)."""
    if value is None:
        return None
    if value[0] == "zone":
        return zoneinfo.ZoneInfo(value[1])
    _, seconds, micros, name = value
    offset = dt.timedelta(seconds=seconds, microseconds=micros)
    if offset == dt.timedelta(0) and name == "UTC":
        return dt.timezone.utc
    return dt.timezone(offset, name)


class RemoteTraceback(Exception):
    """Carries a remote traceback's text as an exception's ``__cause__``."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        return f"\n\nRemote traceback:\n{self.text}"


def exception_from_wire(path: str, args: list[Any], message: str, tb: str,
                         remote: type[RemoteException]) -> BaseException:
    # Only classes already imported here are rebuilt: a frame must not be able
    # to make the receiver import arbitrary modules.
    cls = find_class(path, import_missing=False)
    exc: BaseException | None = None
    # Only Exceptions: a SystemExit, KeyboardInterrupt or GeneratorExit rebuilt
    # here would unwind whoever receives it; those arrive as remote errors.
    if cls is not None and issubclass(cls, Exception):
        try:
            exc = cls(*args)
        except Exception:
            exc = None
    if exc is None:
        exc = remote(str(path).replace(":", "."), str(message), str(tb))
    else:
        try:
            exc.remote_traceback = tb  # type: ignore[attr-defined]
        except AttributeError:
            pass
    if tb:
        exc.__cause__ = RemoteTraceback(tb)
    return exc
