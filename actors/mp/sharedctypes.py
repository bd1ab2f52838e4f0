"""Value and Array: shared data held by an actor (no shared memory).

``Value(typecode_or_type, *args, lock=True)`` and ``Array(typecode_or_type,
size_or_initializer, lock=True)`` take the typecodes and ctypes types of
``multiprocessing``; values are converted (and checked) through the ctypes
type in the process that sets them. Each read and each write is one atomic
message; ``get_lock()`` returns the RLock the value's actor serves, for
read-modify-write sequences such as ``v.value += 1``.
"""

from __future__ import annotations

import ctypes
from typing import Any

from actors.mp.board import board_lend
from actors.mp.leases import lease_of
from actors.mp.lending import Loan
from actors.mp.locks import SemLock, value_lock
from actors.mp.lockserver import LockServer
from actors.mp.primitive import Handle

__all__ = ["Array", "RawArray", "RawValue", "Value", "copy", "synchronized"]


DATA_OPS = frozenset({"get", "set", "getitem", "setitem", "add", "fetch"})
NUMBERS = "bBhHiIlLqQfd"  # ctypes whose values travel with the lock's lease


class ValueServer(LockServer):
    """Value and Array: the data, and the RLock ``get_lock()`` returns.

    A Value's number goes with its lock's lease (``actors.mp.leases``):
    the lease holder reads and writes it locally. A read or write from
    elsewhere meanwhile waits for the number to come back (a "data"
    recall, answered at once: the lock's lease stays where it is)."""

    label = "Value"

    def __init__(self, data: Any, is_array: bool, name: str = "") -> None:
        super().__init__("rlock", 1, name)
        self.label = "Array" if is_array else "Value"
        self.data = data
        self.data_wait: list[tuple[Any, Any]] = []  # (reply, message) while the number is out
        self.lends = self.lend_id = 0  # lends of the number so far, the one out (lend_data)

    def receive(self, message: Any) -> Any:
        loan = self.loan
        if (loan is not None and loan.data_out and isinstance(message, (tuple, list))
                and message[0] in DATA_OPS):
            self.data_wait.append((self.defer_reply(), message))
            if not loan.data_recalled:
                loan.data_recalled = True
                self.recall("data")
            return None
        return super().receive(message)

    def lend_data(self, loan: Loan) -> Any:
        """[number, lend] (this lend's number, 1 to 2**32 - 1: the holder's
        board says which lend its number is of), or None (not lent)."""
        if loan.fmt and type(self.data) in (int, float):
            loan.data_out = True
            self.lends += 1
            self.lend_id = self.lends % 0xFFFFFFFF + 1
            return [self.data, self.lend_id]
        return None

    def loan_gone(self, ref: Any) -> bool:
        """As Lending's; and if the number was lent to the dead process but
        its board is not of that lend (it died before it arrived), the
        number here stands."""
        loan = self.loan
        if (loan is not None and loan.ref == ref and loan.data_out
                and board_lend(loan.board, loan.slot) != self.lend_id):
            loan.data_out = False
        return super().loan_gone(ref)

    def data_back(self, loan: Loan, data: Any) -> None:
        if loan.data_out:
            loan.data_out = False
            if data is not None:
                self.data = data
        waiting, self.data_wait = self.data_wait, []
        for reply, message in waiting:
            if message[0] == "fetch":  # others wanted it too: not lent again now
                reply.send([self.data, 0])
                continue
            try:
                reply.send(getattr(self, "do_" + message[0])(*message[1:]))
            except Exception as e:  # noqa: BLE001 - the asker's error
                reply.fail(e)

    def do_data_back(self, epoch: int, data: Any) -> None:
        """A lease holder sends the number back (it keeps the lock)."""
        loan = self.loan
        if loan is not None and loan.epoch == epoch:
            self.data_back(loan, data)

    def do_get(self) -> Any:
        return self.data

    def do_fetch(self, epoch: int) -> list[Any]:
        """A read by the process the lock is lent to, which gave the number
        back (a "data" recall): [number, lend]; lent (lend > 0), it is
        there again."""
        loan = self.loan
        if loan is not None and loan.epoch == epoch:
            lent = self.lend_data(loan)
            if lent is not None:
                loan.data_recalled = False
                return lent
        return [self.data, 0]

    def do_set(self, value: Any) -> None:
        self.data = value

    def do_getitem(self, index: Any) -> Any:
        if isinstance(index, list):
            index = slice(*index)
        return self.data[index]

    def do_setitem(self, index: Any, value: Any) -> None:
        if isinstance(index, list):
            index = slice(*index)
            if len(range(*index.indices(len(self.data)))) != len(value):
                raise ValueError("Can only assign sequence of same size")
        self.data[index] = value

    def do_add(self, delta: Any) -> Any:
        """value += delta, atomically (not in the stdlib API; used by tests)."""
        self.data += delta
        return self.data

TYPECODES: dict[str, Any] = {
    "c": ctypes.c_char, "u": ctypes.c_wchar, "b": ctypes.c_byte, "B": ctypes.c_ubyte,
    "h": ctypes.c_short, "H": ctypes.c_ushort, "i": ctypes.c_int, "I": ctypes.c_uint,
    "l": ctypes.c_long, "L": ctypes.c_ulong, "q": ctypes.c_longlong,
    "Q": ctypes.c_ulonglong, "f": ctypes.c_float, "d": ctypes.c_double,
}


def ctype_of(typecode_or_type: Any) -> Any:
    if isinstance(typecode_or_type, str):
        try:
            return TYPECODES[typecode_or_type]
        except KeyError:
            raise TypeError(f"unknown typecode {typecode_or_type!r} (use one of "
                            f"{''.join(TYPECODES)} or a ctypes type)") from None
    if isinstance(typecode_or_type, type) and issubclass(typecode_or_type, ctypes._SimpleCData):
        return typecode_or_type
    raise TypeError(f"actors.mp shares typecodes and simple ctypes types, got "
                    f"{typecode_or_type!r}")


def _int_range(ctype: Any) -> tuple[int, int]:
    bits = 8 * ctypes.sizeof(ctype)
    if ctype(-1).value < 0:
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1


INT_RANGES = {ctype: _int_range(ctype) for code, ctype in TYPECODES.items() if code in "bBhHiIlLqQ"}
NO_BOUNDS = (1, 0)  # not an integer type: every value is converted


def convert(ctype: Any, value: Any) -> Any:
    """``value`` as the ctypes type stores it (TypeError if it cannot)."""
    bounds = INT_RANGES.get(ctype)
    if bounds is not None and type(value) is int and bounds[0] <= value <= bounds[1]:
        return value  # as it is (the common case, without making a ctypes object)
    return ctype(value).value


class RawValue(Handle):
    """A shared value without a lock."""

    _local_fields = ("_lease", "_bounds")

    def __init__(self, typecode_or_type: Any, *args: Any) -> None:
        ctype = ctype_of(typecode_or_type)
        initial = ctype(*args).value
        super().__init__(self._spawn(ValueServer, initial, False))
        self._ctype = ctype
        self._init_local()

    def _init_local(self) -> None:
        # while this process has the lease of the value's own lock, the
        # number is here (see ValueServer)
        ctype = self.__dict__.get("_ctype")
        self._lease = None
        self._bounds = INT_RANGES.get(ctype, NO_BOUNDS)  # what goes in as it is
        if ctype is not None and ctype._type_ in NUMBERS:
            self._lease = lease_of(self._ref.uid)
            self._lease.fmt = "@" + ctype._type_

    @property
    def value(self) -> Any:
        lease = self._lease
        if lease is not None:
            try:
                return lease.box[0]  # the number is here (see Lease.box)
            except IndexError:
                pass
            if lease.epoch:  # the lock is lent here, not the number: ask for it again
                return self._fetch(lease, lease.epoch)
        return self._ask(("get",))

    def _fetch(self, lease: Any, epoch: int) -> Any:
        # (not in the getter: its closure would slow every read)
        return self._wait(("fetch", epoch), None, lambda future: lease.fetched(future, epoch))[0]

    @value.setter
    def value(self, new: Any) -> None:
        low, high = self._bounds
        if type(new) is not int or not low <= new <= high:
            new = convert(self._ctype, new)
        lease = self._lease
        if lease is not None:
            box = lease.box
            if box:
                # The board first (for the server, should this process die),
                # then the number: a write to a box a recall emptied fails
                # (IndexError) and goes by message, after the number it took.
                lease.cell[0] = new
                try:
                    box[0] = new
                    return
                except IndexError:
                    pass
        self._ask(("set", new))

    def __repr__(self) -> str:  # as a ctypes value's: c_int(3)
        return f"{self._ctype.__name__}({self.value!r})"


class Synchronized:
    """``get_lock()`` and the lock's methods, for Value and Array: the RLock
    their own actor serves, or the lock given."""

    _ref: Any

    def _use_lock(self, lock: Any) -> None:
        self._lock = value_lock(self._ref) if lock is True else lock

    def get_lock(self) -> SemLock:
        return self._lock

    def acquire(self, *args: Any) -> bool:
        return self._lock.acquire(*args)

    def release(self) -> None:
        self._lock.release()

    def __enter__(self) -> bool:
        return self._lock.__enter__()

    def __exit__(self, *args: Any) -> None:
        self._lock.__exit__(*args)

    def __repr__(self) -> str:  # as the standard library's wrappers
        name = "Synchronized" if isinstance(self, RawValue) else "SynchronizedArray"
        return f"<{name} wrapper for {super().__repr__()}>"


class SynchronizedValue(Synchronized, RawValue):
    """A shared value with ``get_lock()`` (what ``Value`` returns)."""

    def __init__(self, typecode_or_type: Any, *args: Any, lock: Any = True) -> None:
        super().__init__(typecode_or_type, *args)
        self._use_lock(lock)

    def get_obj(self) -> Any:
        """A ctypes copy of the current value (not shared)."""
        return self._ctype(self.value)


def Value(typecode_or_type: Any, *args: Any, lock: Any = True, ctx: Any = None) -> Any:  # noqa: N802
    """A shared value; with ``lock`` (default) it has ``get_lock()``."""
    if lock is False:
        return RawValue(typecode_or_type, *args)
    if lock is None:  # as the standard library: a lock of its own
        lock = True
    if lock is not True and not isinstance(lock, SemLock):
        raise AttributeError(f"{lock!r} has no method 'acquire'")
    return SynchronizedValue(typecode_or_type, *args, lock=lock)


class RawArray(Handle):
    """A shared array without a lock."""

    def __init__(self, typecode_or_type: Any, size_or_initializer: Any) -> None:
        ctype = ctype_of(typecode_or_type)
        if isinstance(size_or_initializer, int):
            data = [ctype().value] * size_or_initializer
        else:
            data = [convert(ctype, v) for v in size_or_initializer]
        super().__init__(self._spawn(ValueServer, data, True))
        self._ctype = ctype
        self._length = len(data)

    def __len__(self) -> int:
        return self._length

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            items = self._ask(("getitem", [index.start, index.stop, index.step]))
            return b"".join(items) if self._ctype is ctypes.c_char else items
        return self._ask(("getitem", self._index(index)))

    def __setitem__(self, index: Any, value: Any) -> None:
        if isinstance(index, slice):
            values = [convert(self._ctype, v) for v in
                      (value if not isinstance(value, bytes) else [bytes([b]) for b in value])]
            self._ask(("setitem", [index.start, index.stop, index.step], values))
        else:
            self._ask(("setitem", self._index(index), convert(self._ctype, value)))

    def _index(self, index: int) -> int:
        if not isinstance(index, int):
            raise TypeError(f"array indices must be integers, got {type(index).__name__}")
        if index < 0:
            index += self._length
        if not 0 <= index < self._length:
            raise IndexError("invalid index")
        return index

    def __iter__(self) -> Any:
        return iter(self[:])

    @property
    def value(self) -> Any:
        """For a 'c' array: the bytes up to the first NUL."""
        if self._ctype is not ctypes.c_char:
            raise AttributeError("value is for arrays of typecode 'c'")
        return self[:].split(b"\0", 1)[0]

    @value.setter
    def value(self, new: bytes) -> None:
        if self._ctype is not ctypes.c_char:
            raise AttributeError("value is for arrays of typecode 'c'")
        if len(new) > self._length:
            raise ValueError("byte string too long")
        data = new + (b"\0" if len(new) < self._length else b"")
        self[0:len(data)] = data

    @property
    def raw(self) -> bytes:
        if self._ctype is not ctypes.c_char:
            raise AttributeError("raw is for arrays of typecode 'c'")
        return self[:]

    def __repr__(self) -> str:  # as a ctypes array's
        return f"<{__name__}.{self._ctype.__name__}_Array_{self._length} object at {id(self):#x}>"


class SynchronizedArray(Synchronized, RawArray):
    """A shared array with ``get_lock()`` (what ``Array`` returns)."""

    def __init__(self, typecode_or_type: Any, size_or_initializer: Any,
                 lock: Any = True) -> None:
        super().__init__(typecode_or_type, size_or_initializer)
        self._use_lock(lock)

    def get_obj(self) -> Any:
        return (self._ctype * self._length)(*self[:])


def Array(typecode_or_type: Any, size_or_initializer: Any, *, lock: Any = True,  # noqa: N802
          ctx: Any = None) -> Any:
    """A shared array; with ``lock`` (default) it has ``get_lock()``."""
    if lock is False:
        return RawArray(typecode_or_type, size_or_initializer)
    if lock is None:  # as the standard library: a lock of its own
        lock = True
    if lock is not True and not isinstance(lock, SemLock):
        raise AttributeError(f"{lock!r} has no method 'acquire'")
    return SynchronizedArray(typecode_or_type, size_or_initializer, lock=lock)



def copy(obj: Any) -> Any:
    """A new shared value (or array) holding what ``obj`` holds now, as
    ``multiprocessing.sharedctypes.copy``; a plain ctypes object is copied
    as a plain ctypes object (nothing is shared here anyway)."""
    if isinstance(obj, RawArray):
        return RawArray(obj._ctype, obj[:] if obj._ctype is not ctypes.c_char else
                        [bytes([b]) for b in obj[:]])
    if isinstance(obj, RawValue):
        return RawValue(obj._ctype, obj.value)
    return type(obj).from_buffer_copy(obj)


def synchronized(obj: Any, lock: Any = None, ctx: Any = None) -> Any:
    """``obj`` (a RawValue or RawArray) behind a lock: the same shared
    data, with ``get_lock()`` (its own lock, or ``lock``)."""
    if isinstance(obj, Synchronized):
        raise TypeError(f"{obj!r} is synchronized already")
    if not isinstance(obj, (RawValue, RawArray)):
        raise TypeError(f"cannot synchronize {type(obj).__name__}: only an actors.mp "
                        "RawValue or RawArray")
    cls = SynchronizedArray if isinstance(obj, RawArray) else SynchronizedValue
    wrapped = cls.__new__(cls)
    wrapped.__dict__.update(obj.__dict__)
    wrapped._use_lock(True if lock is None else lock)
    return wrapped
