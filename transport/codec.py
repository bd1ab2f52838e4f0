"""msgpack codec with round-trip fidelity, an ext-type registry and frames.

Layering: ``transport`` knows nothing about actors. ``actors`` registers its
own ext types (``ActorRef``) on a :class:`Codec` instance it owns.

Fidelity (what comes out equals what went in, same type): None, bool, int of
any size, float, str, bytes, list, tuple, dict with any hashable keys, set,
frozenset, complex, datetime/date/time/timedelta, Decimal, UUID, exceptions
(rebuilt as their own class when it is importable, else ``RemoteException``),
and dataclasses registered with :func:`message`. Anything else raises
:class:`EncodeError` naming the type, at the sender.

:class:`Pickled` wraps any picklable value for the local-only pickle
extension (``EXT_PICKLE``): a codec carries it only when ``allow_pickle`` is
set (links that stay on this host and this user, as ``multiprocessing``
itself trusts them). Otherwise encoding it raises :class:`EncodeError` and
receiving it is a :class:`DecodeError`, so a peer that may not send pickle
cannot make this process unpickle anything.

A *frame* is one header byte (:data:`FRAME_VERSION`) followed by one or more
msgpack objects back to back; that lets a sender pack many messages in one
transport send; a frame of exactly one (an ask, its reply) has its own
header byte (:data:`FRAME_ONE`) and decodes in one call, in a quarter of
the time.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import threading
import traceback
import uuid
from collections.abc import Callable
from typing import Any

import msgpack

from transport.values import (
    Pickled,
    RemoteException,
    RemoteTraceback,
    class_path,
    exception_from_wire,
    find_class,
    message,
    registered_dataclass,
    tz_from_wire,
    tz_to_wire,
)

__all__ = [
    "Codec",
    "DecodeBudgetExceeded",
    "DecodeError",
    "EncodeError",
    "FRAME_ONE",
    "FRAME_VERSION",
    "MANY_HEADER",
    "ONE_HEADER",
    "Pickled",
    "RemoteException",
    "RemoteTraceback",
    "class_path",
    "find_class",
    "message",
]

FRAME_VERSION = 0xA2  # 0xA2: REPLY envelopes name the uid that answers
FRAME_ONE = 0xB2  # the same version, a frame holding exactly one message
MANY_HEADER, ONE_HEADER = bytes((FRAME_VERSION,)), bytes((FRAME_ONE,))

# Built-in ext codes (0..31 reserved for transport, 32..127 for users of it).
EXT_TUPLE = 1
EXT_SET = 2
EXT_FROZENSET = 3
EXT_BIGINT = 4
EXT_COMPLEX = 5
EXT_DATETIME = 6
EXT_DATE = 7
EXT_TIME = 8
EXT_TIMEDELTA = 9
EXT_DECIMAL = 10
EXT_UUID = 11
EXT_EXCEPTION = 12
EXT_DATACLASS = 13
EXT_PICKLE = 14  # reserved for the local-only pickle extension (actors.mp)
FIRST_USER_EXT = 32

# Decoding a frame of at least BUDGET_FROM bytes counts what it builds: every
# array, map and ext value at an estimate of its size in memory (64 bytes a
# container plus 8 a slot, 16 a map entry). Past AMPLIFICATION times the
# frame's size the frame is refused, so no frame expands without bound
# (an array of empty maps would otherwise cost ~72 bytes per byte sent).
BUDGET_FROM = 1 << 20
AMPLIFICATION = 10

# Ext values (tuple, set, dataclass...) nest by recursive packing/unpacking;
# each level of unpacking costs ~40 KB of C stack in msgpack, so a deeper
# value would crash the receiver (segfault) instead of raising.
MAX_EXT_DEPTH = 100


class EncodeError(TypeError):
    """An object cannot be put on the wire; ``.type_name`` names its type."""

    def __init__(self, message: str, type_name: str = "") -> None:
        super().__init__(message)
        self.type_name = type_name


class DecodeError(ValueError):
    """Bytes that are not a well-formed frame or message."""


class DecodeBudgetExceeded(DecodeError):
    """A frame that would take more than AMPLIFICATION times its size in
    memory: refused whole (a lenient decoder must not turn it into parts)."""


# -- the codec ---------------------------------------------------------------

Encoder = Callable[[Any], Any]
Decoder = Callable[[Any], Any]


class Codec:
    """Packs and unpacks objects; one instance per process-level runtime.

    ``register(cls, code, encode, decode)`` adds an ext type: ``encode(obj)``
    returns a msgpack-able value, ``decode(value)`` rebuilds the object.
    Instances are safe to use from several threads.
    """

    def __init__(self) -> None:
        self._by_type: dict[type, tuple[int, Encoder]] = {}
        self._by_code: dict[int, Decoder] = {}
        self._local = threading.local()
        self.allow_pickle = False  # the local-only pickle extension (Pickled)
        # what an exception whose class cannot be rebuilt here arrives as (a
        # subclass of RemoteException taking the same arguments)
        self.remote_exception: type[RemoteException] = RemoteException

    # registry
    def register(self, cls: type, code: int, encode: Encoder, decode: Decoder) -> None:
        if not FIRST_USER_EXT <= code <= 127:
            raise ValueError(f"ext code must be in {FIRST_USER_EXT}..127, got {code}")
        if code in self._by_code:
            raise ValueError(f"ext code {code} is already registered")
        if cls in self._by_type:
            raise ValueError(f"{cls.__qualname__} is already registered "
                             f"(ext code {self._by_type[cls][0]})")
        self._by_type[cls] = (code, encode)
        self._by_code[code] = decode

    # packing
    def _packer(self, depth: int) -> msgpack.Packer:
        packers = getattr(self._local, "packers", None)
        if packers is None:
            packers = self._local.packers = []
        while len(packers) <= depth:
            packers.append(msgpack.Packer(default=self._default, strict_types=True,
                                          use_bin_type=True, autoreset=True))
        return packers[depth]

    def _nested(self, value: Any) -> bytes:
        local = self._local
        depth = getattr(local, "depth", 0) + 1
        if depth > MAX_EXT_DEPTH:
            raise EncodeError(f"value nested more than {MAX_EXT_DEPTH} levels deep",
                              type(value).__name__)
        local.depth = depth
        try:
            return self._packer(depth).pack(value)
        finally:
            local.depth = depth - 1

    def _default(self, obj: Any) -> Any:
        t = type(obj)
        ext = ExtType = msgpack.ExtType  # noqa: N806 (local alias on the hot path)
        if t is tuple:
            return ext(EXT_TUPLE, self._nested(list(obj)))
        if t is Pickled:  # (second: actors.mp sends one per queue item)
            return ext(EXT_PICKLE, self.pickled(obj))
        if t is set:
            return ext(EXT_SET, self._nested(list(obj)))
        if t is frozenset:
            return ext(EXT_FROZENSET, self._nested(list(obj)))
        if t is int:  # too big for msgpack's 64 bits
            size = (obj.bit_length() + 8) // 8
            return ext(EXT_BIGINT, obj.to_bytes(size, "big", signed=True))
        if t is complex:
            return ext(EXT_COMPLEX, self._nested([obj.real, obj.imag]))
        if t is dt.datetime:
            return ExtType(EXT_DATETIME, self._nested(
                [obj.replace(tzinfo=None).isoformat(), obj.fold, _tz(obj.tzinfo)]))
        if t is dt.date:
            return ExtType(EXT_DATE, obj.toordinal().to_bytes(4, "big"))
        if t is dt.time:
            return ExtType(EXT_TIME, self._nested(
                [obj.replace(tzinfo=None).isoformat(), obj.fold, _tz(obj.tzinfo)]))
        if t is dt.timedelta:
            return ExtType(EXT_TIMEDELTA, self._nested([obj.days, obj.seconds, obj.microseconds]))
        if t is decimal.Decimal:
            return ExtType(EXT_DECIMAL, str(obj).encode())
        if t is uuid.UUID:
            return ExtType(EXT_UUID, obj.bytes)
        entry = self._by_type.get(t)
        if entry is not None:
            code, encode = entry
            return ExtType(code, self._nested(encode(obj)))
        if isinstance(obj, BaseException):
            return ExtType(EXT_EXCEPTION, self._nested(self._exception_to_wire(obj)))
        if dataclasses.is_dataclass(obj) and registered_dataclass(class_path(t)) is t:
            fields = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
            return ExtType(EXT_DATACLASS, self._nested([class_path(t), fields]))
        hint = ""
        if dataclasses.is_dataclass(obj):
            hint = " (register the dataclass with the @message decorator)"
        raise EncodeError(
            f"cannot send an object of type {t.__module__}.{t.__qualname__}{hint}",
            f"{t.__module__}.{t.__qualname__}")

    def _exception_to_wire(self, exc: BaseException) -> list[Any]:
        if isinstance(exc, RemoteException):
            return [exc.type_name, [exc.message], exc.message, exc.remote_traceback]
        tb = getattr(exc, "remote_traceback", None)
        if tb is None:
            tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        args: Any = list(exc.args)
        try:
            self._nested(args)
        except Exception:
            args = [str(exc)]
        return [class_path(type(exc)), args, str(exc), tb]

    def pickled(self, obj: Pickled) -> bytes:
        """The bytes the pickle extension carries for ``obj`` (pickled once,
        then kept); raises :class:`EncodeError` as :meth:`encode` would."""
        if not self.allow_pickle:
            raise EncodeError("pickle is refused on this link: the pickle extension is "
                              "local-only (this host, this user)", type(obj._value).__qualname__)
        try:
            return obj.dump()
        except Exception as e:
            name = type(obj._value).__qualname__
            raise EncodeError(f"cannot pickle {name}: {e}", name) from None

    def encode(self, obj: Any) -> bytes:
        """One object as msgpack bytes; raises :class:`EncodeError`."""
        try:
            try:
                packer = self._local.top
            except AttributeError:
                packer = self._local.top = self._packer(0)
            return packer.pack(obj)
        except EncodeError:
            raise
        except (TypeError, ValueError, OverflowError) as e:  # pragma: no cover - msgpack limits
            raise EncodeError(f"cannot encode {type(obj).__name__}: {e}", type(obj).__name__) from e

    # unpacking
    def _ext_hook(self, code: int, data: bytes) -> Any:
        if code == EXT_TUPLE:
            return tuple(self._unpack_one(data))
        if code == EXT_SET:
            return set(self._unpack_one(data))
        if code == EXT_FROZENSET:
            return frozenset(self._unpack_one(data))
        if code == EXT_BIGINT:
            return int.from_bytes(data, "big", signed=True)
        if code == EXT_COMPLEX:
            real, imag = self._unpack_one(data)
            return complex(real, imag)
        if code == EXT_DATETIME:
            text, fold, tz = self._unpack_one(data)
            return dt.datetime.fromisoformat(text).replace(fold=fold, tzinfo=tz_from_wire(tz))
        if code == EXT_DATE:
            return dt.date.fromordinal(int.from_bytes(data, "big"))
        if code == EXT_TIME:
            text, fold, tz = self._unpack_one(data)
            return dt.time.fromisoformat(text).replace(fold=fold, tzinfo=tz_from_wire(tz))
        if code == EXT_TIMEDELTA:
            days, seconds, micros = self._unpack_one(data)
            return dt.timedelta(days=days, seconds=seconds, microseconds=micros)
        if code == EXT_DECIMAL:
            return decimal.Decimal(data.decode())
        if code == EXT_UUID:
            return uuid.UUID(bytes=data)
        if code == EXT_EXCEPTION:
            path, args, text, tb = self._unpack_one(data)
            return exception_from_wire(path, args, text, tb, self.remote_exception)
        if code == EXT_DATACLASS:
            path, fields = self._unpack_one(data)
            cls = registered_dataclass(path)
            if cls is None:
                raise DecodeError(f"unknown message type {path!r}: not registered with @message here")
            return cls(**fields)
        if code == EXT_PICKLE:
            if not self.allow_pickle:
                raise DecodeError("a pickled value was refused: pickle is accepted only on "
                                  "local links")
            return Pickled(data=bytes(data))
        decode = self._by_code.get(code)
        if decode is None:
            raise DecodeError(f"unknown ext type {code}")
        return decode(self._unpack_one(data))

    def _unpack_one(self, data: bytes) -> Any:
        local = self._local
        depth = getattr(local, "unpack_depth", 0)
        if depth > MAX_EXT_DEPTH:
            raise DecodeError(f"value nested more than {MAX_EXT_DEPTH} levels deep")
        local.unpack_depth = depth + 1
        try:
            if getattr(local, "budget", None) is None:
                return msgpack.unpackb(data, ext_hook=self._ext_hook, strict_map_key=False,
                                       raw=False, use_list=True)
            self._spend(64)
            return msgpack.unpackb(data, ext_hook=self._ext_hook, strict_map_key=False,
                                   raw=False, use_list=True, list_hook=self._list_spent,
                                   object_hook=self._map_spent)
        finally:
            local.unpack_depth = depth

    # decode budget (see AMPLIFICATION)
    def _spend(self, cost: int) -> None:
        local = self._local
        local.budget -= cost
        if local.budget < 0:
            raise DecodeBudgetExceeded(f"a frame of {local.frame_size} bytes would take more "
                                       f"than {AMPLIFICATION}x its size in memory")

    def _list_spent(self, items: list[Any]) -> list[Any]:
        self._spend(64 + 8 * len(items))
        return items

    def _map_spent(self, entries: dict[Any, Any]) -> dict[Any, Any]:
        self._spend(64 + 16 * len(entries))
        return entries

    def decode(self, data: bytes) -> Any:
        """One object from msgpack bytes; raises :class:`DecodeError`."""
        try:
            return self._unpack_one(data)
        except DecodeError:
            raise
        except Exception as e:
            raise DecodeError(f"malformed message: {e}") from e

    # frames
    def frame(self, encoded: list[bytes]) -> bytes:
        """A frame holding already-encoded messages, in order."""
        if len(encoded) == 1:
            return ONE_HEADER + encoded[0]
        return MANY_HEADER + b"".join(encoded)

    def decode_frame(self, frame: bytes) -> list[Any]:
        """All messages of a frame, or :class:`DecodeError` and none of them."""
        size = len(frame)
        one = size > 1 and frame[0] == FRAME_ONE
        if one and size < BUDGET_FROM:
            try:
                return [msgpack.unpackb(memoryview(frame)[1:], ext_hook=self._ext_hook,
                                        strict_map_key=False, raw=False, use_list=True)]
            except DecodeError:
                raise
            except Exception as e:  # (trailing bytes: msgpack.ExtraData)
                raise DecodeError(f"malformed frame: {e}") from e
        if not one and (not size or frame[0] != FRAME_VERSION):
            raise DecodeError(f"not a frame (header byte {frame[:1]!r})")
        if size == 1:
            return []
        local = self._local
        if size >= BUDGET_FROM:  # count what it builds (see AMPLIFICATION)
            local.budget, local.frame_size = AMPLIFICATION * size, size
            unpacker = msgpack.Unpacker(ext_hook=self._ext_hook, strict_map_key=False, raw=False,
                                        use_list=True, max_buffer_size=size,
                                        list_hook=self._list_spent, object_hook=self._map_spent)
        else:
            # One Unpacker per thread for frames below BUDGET_FROM, taken out
            # while in use and kept only after a frame decoded whole: making
            # one per frame cost more than decoding a small frame (2.2 us
            # against 1.0 for one message, 2.9 against 2.1 for ten).
            unpacker = local.__dict__.pop("unpacker", None) or msgpack.Unpacker(
                ext_hook=self._ext_hook, strict_map_key=False, raw=False, use_list=True,
                max_buffer_size=BUDGET_FROM)
        start = end = unpacker.tell()
        messages = []
        try:
            unpacker.feed(memoryview(frame)[1:])
            # tell() after the loop also counts a truncated array/map's parsed
            # prefix, so check where the last complete message ended instead.
            for obj in unpacker:
                end = unpacker.tell()
                messages.append(obj)
        except DecodeError:
            raise
        except Exception as e:
            raise DecodeError(f"malformed frame: {e}") from e
        finally:
            local.budget = None
        if end - start != size - 1:
            raise DecodeError("frame ends inside a message")
        if one and len(messages) != 1:
            raise DecodeError(f"a frame of one message holds {len(messages)}")
        if size < BUDGET_FROM:
            local.unpacker = unpacker  # whole: nothing of this frame is left in it
        return messages


def _tz(tz: dt.tzinfo | None) -> Any:
    try:
        return tz_to_wire(tz)
    except TypeError as e:
        raise EncodeError(str(e), type(tz).__name__) from None
