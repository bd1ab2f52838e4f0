"""The msgpack codec: round-trip fidelity, frames, exceptions, errors."""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import enum
import sys
import zoneinfo

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.wire import RuntimeCodec, Undecodable, find_undecodable
from strategies import FAST, Envelope, Point, same, values
from transport.codec import (
    BUDGET_FROM,
    EXT_DATACLASS,
    EXT_EXCEPTION,
    FRAME_ONE,
    FRAME_VERSION,
    MAX_EXT_DEPTH,
    Codec,
    DecodeBudgetExceeded,
    DecodeError,
    EncodeError,
)
from transport.values import RemoteException, RemoteTraceback

codec = Codec()


def roundtrip(value):
    return codec.decode(codec.encode(value))


# -- module-level classes the receiver (this same process) can find ------------

class AppError(Exception):
    """An importable exception with several constructor arguments."""

    def __init__(self, code, detail):
        super().__init__(code, detail)
        self.code = code
        self.detail = detail


class BogusModuleError(Exception):
    """An exception whose module cannot be found on the receiver."""


BogusModuleError.__module__ = "no_such_module_for_codec_tests"


@dataclasses.dataclass
class Unregistered:
    """A dataclass that was never decorated with @message."""

    a: int


class Color(enum.IntEnum):
    RED = 1


class Name(str):
    pass


class Thing:
    """A user type sent through a registered ext code."""

    def __init__(self, n):
        self.n = n


# -- the helper itself -----------------------------------------------------------

def test_same_tells_types_apart():
    """The comparison helper rejects equal values of different types and accepts nan == nan."""
    assert same(float("nan"), float("nan"))
    assert same([1, (2, {3})], [1, (2, {3})])
    assert not same((1,), [1])
    assert not same({1}, frozenset({1}))
    assert not same({True: 1}, {1: 1})
    assert not same(1, 1.0)
    assert not same(0.0, -0.0)
    assert not same(decimal.Decimal("1.0"), decimal.Decimal("1.00"))
    paris = zoneinfo.ZoneInfo("Europe/Paris")
    t = dt.datetime(2023, 10, 29, 2, 30, tzinfo=paris)
    assert not same(t, t.replace(fold=1))
    assert not same(t, t.astimezone(dt.timezone.utc))


# -- round trips -------------------------------------------------------------------

@FAST
@given(values)
def test_roundtrip_preserves_value_and_types(value):
    """decode(encode(x)) equals x with exactly the same types at every level."""
    assert same(roundtrip(value), value)


@pytest.mark.parametrize("value", [
    2**64, -(2**64), 2**63, -(2**63) - 1, 2**1000, -(2**1000) + 7, 10**100,
    float("inf"), float("-inf"), float("nan"), -0.0, complex(float("nan"), -0.0),
    {(1, "a"): 1, frozenset({2, 3}): 2, 3: 3, "s": 4, b"b": 5, None: 6, (): 7},
    [(), set(), frozenset(), {}, [], ""],
    dt.datetime(2023, 10, 29, 2, 30, fold=1, tzinfo=zoneinfo.ZoneInfo("Europe/Paris")),
    dt.datetime(2023, 10, 29, 2, 30, fold=0, tzinfo=zoneinfo.ZoneInfo("Europe/Paris")),
    dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc),
    dt.datetime(2024, 1, 1, 12, 0, 0, 5, tzinfo=dt.timezone(dt.timedelta(hours=-5, minutes=-30), "X")),
    dt.datetime(1, 1, 1), dt.datetime.max,
    dt.time(1, 2, 3, 4, fold=1), dt.time(23, 59, tzinfo=dt.timezone(dt.timedelta(seconds=-1))),
    dt.date(1, 1, 1), dt.date.max, dt.timedelta(days=-999999999), dt.timedelta.max,
    decimal.Decimal("-0"), decimal.Decimal("1.000"), decimal.Decimal("1E+400"),
    Point(1, 2.5, "p"), Envelope({Point(0, 0.0): [Envelope((1,))]}, ["t"]),
], ids=repr)
def test_roundtrip_examples(value):
    """Edge values (64-bit boundaries, special floats, fold, tz names) round-trip exactly."""
    assert same(roundtrip(value), value)


@pytest.mark.parametrize("text", ["NaN", "-NaN", "sNaN", "NaN12", "Infinity", "-Infinity"])
def test_decimal_specials_roundtrip(text):
    """Decimal NaN, signalling NaN and infinities come back with the same text and type."""
    back = roundtrip(decimal.Decimal(text))
    assert type(back) is decimal.Decimal
    assert str(back) == str(decimal.Decimal(text))


def test_registered_ext_type_roundtrips():
    """A type registered with Codec.register is rebuilt by its decode function."""
    c = Codec()
    c.register(Thing, 40, lambda t: [t.n], lambda v: Thing(*v))
    back = c.decode(c.encode({"k": (Thing(5), Thing((1, 2)))}))
    assert type(back["k"]) is tuple
    assert [type(x) for x in back["k"]] == [Thing, Thing]
    assert back["k"][0].n == 5 and back["k"][1].n == (1, 2)


@pytest.mark.parametrize("code", [-1, 0, 1, 14, 31, 128, 255])
def test_register_rejects_codes_out_of_range(code):
    """Codec.register raises ValueError for ext codes outside 32..127."""
    with pytest.raises(ValueError):
        Codec().register(Thing, code, lambda t: t.n, Thing)


def test_register_rejects_duplicate_code():
    """Codec.register raises ValueError when the ext code is already taken."""
    c = Codec()
    c.register(Thing, 32, lambda t: t.n, Thing)
    c.register(Point, 127, lambda p: [p.x], lambda v: Point(v[0], 0.0))
    with pytest.raises(ValueError):
        c.register(Unregistered, 32, lambda u: u.a, Unregistered)


# -- frames -------------------------------------------------------------------

@FAST
@given(values, values)
def test_frame_of_two_messages(a, b):
    """A frame built from two encoded messages decodes to the two messages, in order."""
    frame = codec.frame([codec.encode(a), codec.encode(b)])
    assert frame[0] == FRAME_VERSION
    out = codec.decode_frame(frame)
    assert type(out) is list and len(out) == 2
    assert same(out[0], a) and same(out[1], b)


@FAST
@given(values, values, st.data())
def test_frame_cut_inside_last_message_raises(a, b, data):
    """A frame cut anywhere inside its last message raises DecodeError instead of dropping it."""
    first = codec.encode(a)
    frame = codec.frame([first, codec.encode([b, "end"])])  # the last message is >= 2 bytes
    cut = data.draw(st.integers(1 + len(first) + 1, len(frame) - 1), label="cut")
    with pytest.raises(DecodeError):
        codec.decode_frame(frame[:cut])


@FAST
@given(st.lists(values, min_size=1, max_size=6))
def test_frame_of_any_number_of_messages(messages):
    """One message (decoded without an Unpacker) or several: all come back, in order."""
    out = codec.decode_frame(codec.frame([codec.encode(m) for m in messages]))
    assert len(out) == len(messages)
    assert all(same(a, b) for a, b in zip(out, messages))


def test_bytes_after_a_whole_message_that_are_not_one_raise():
    """A frame whose first message is whole and then holds a truncated or
    malformed one is refused whole, not cut to its first message."""
    first = codec.encode(["ask", 1])
    for rest in (b"\x92\x01", b"\xc1", codec.encode("x" * 40)[:-3]):
        with pytest.raises(DecodeError):
            codec.decode_frame(codec.frame([first, rest]))


@FAST
@given(values, st.binary(max_size=40), values)
def test_a_bad_frame_leaves_nothing_behind_for_the_next(a, junk, b):
    """Frames are decoded by an Unpacker kept per thread: a frame cut short
    or followed by junk leaves none of its bytes to the next frame."""
    cut = codec.frame([codec.encode([a, "end"])])[:-1]
    for bad in (cut, codec.frame([codec.encode(a)]) + junk):
        try:
            codec.decode_frame(bad)
        except DecodeError:
            pass
        out = codec.decode_frame(codec.frame([codec.encode(b), codec.encode(a)]))
        assert len(out) == 2 and same(out[0], b) and same(out[1], a)


@pytest.mark.parametrize("position", ["alone", "second"])
def test_a_frame_that_would_expand_past_its_budget_is_refused(position):
    """An array of a million empty maps (1 byte each on the wire, ~64 in
    memory) is refused once it would pass AMPLIFICATION x the frame's size,
    whether it is a frame's only message or follows another."""
    count = BUDGET_FROM
    bomb = b"\xdd" + count.to_bytes(4, "big") + b"\x80" * count
    encoded = [bomb] if position == "alone" else [codec.encode("hello"), bomb]
    with pytest.raises(DecodeBudgetExceeded):
        codec.decode_frame(codec.frame(encoded))
    # a frame as large made of plain bytes is within budget
    plain = codec.encode(b"\x00" * count)
    assert codec.decode_frame(codec.frame([plain])) == [b"\x00" * count]


def test_a_lone_message_has_its_own_header():
    """A frame of one message is marked as such (FRAME_ONE); one of a
    large size goes through the budgeted decoder and must hold exactly one."""
    assert codec.frame([codec.encode(1)])[0] == FRAME_ONE
    assert codec.frame([codec.encode(1), codec.encode(2)])[0] == FRAME_VERSION
    big = codec.encode(b"\x00" * BUDGET_FROM)
    assert codec.decode_frame(bytes([FRAME_ONE]) + big) == [b"\x00" * BUDGET_FROM]
    with pytest.raises(DecodeError):
        codec.decode_frame(bytes([FRAME_ONE]) + big + codec.encode(1))


def test_empty_frame_has_no_messages():
    """A frame with a header and no messages decodes to an empty list."""
    assert codec.decode_frame(codec.frame([])) == []


@pytest.mark.parametrize("data", [
    b"",
    b"\x00",
    bytes([FRAME_VERSION ^ 1]) + codec.encode(1),
    codec.encode([1, 2]),  # a message without the frame header
    bytes([FRAME_VERSION]) + codec.encode("a long enough string")[:-3],  # truncated
    bytes([FRAME_VERSION]) + codec.encode(1) + codec.encode([1, 2, 3])[:2],
    bytes([FRAME_VERSION, 0xC1]),  # never-used msgpack byte
    bytes([FRAME_VERSION, 0xDD, 0xFF, 0xFF, 0xFF, 0xFF]),  # absurd array length
    bytes([FRAME_VERSION]) + msgpack.packb(msgpack.ExtType(99, b"x")),  # unknown ext
    bytes([FRAME_VERSION]) + msgpack.packb(msgpack.ExtType(1, b"\xc1")),  # bad tuple body
    bytes([FRAME_VERSION]) + msgpack.packb(msgpack.ExtType(7, b"\x00\x00\x00\x00")),  # date 0
    bytes([FRAME_VERSION]) + msgpack.packb(msgpack.ExtType(10, b"not a number")),
    bytes([FRAME_VERSION]) + msgpack.packb(msgpack.ExtType(6, msgpack.packb(["x", 0, None]))),
    bytes([FRAME_VERSION]) + msgpack.packb(msgpack.ExtType(6, msgpack.packb(
        ["2020-01-01T00:00:00", 0, ["zone", "No/Such_Zone"]]))),
    bytes([FRAME_VERSION]) + msgpack.packb(msgpack.ExtType(12, msgpack.packb([1, 2]))),
    bytes([FRAME_VERSION]) + msgpack.packb(msgpack.ExtType(
        EXT_DATACLASS, msgpack.packb(["strategies:Point", {"nope": 1}]))),
    bytes([FRAME_VERSION]) + b"\x91" * 5000 + b"\xc0",  # very deep nesting
    # a frame of one message: decoded in one call, checked as strictly
    bytes([FRAME_ONE]),
    bytes([FRAME_ONE]) + codec.encode(1) + codec.encode(2),  # two messages
    bytes([FRAME_ONE]) + codec.encode(1) + b"\x00",  # a trailing byte
    bytes([FRAME_ONE]) + codec.encode("a long enough string")[:-3],  # truncated
    bytes([FRAME_ONE, 0xC1]),
    bytes([FRAME_ONE, 0xDD, 0xFF, 0xFF, 0xFF, 0xFF]),
    bytes([FRAME_ONE]) + msgpack.packb(msgpack.ExtType(99, b"x")),
    bytes([FRAME_ONE]) + b"\x91" * 5000 + b"\xc0",
], ids=repr)
def test_malformed_frames_raise_decode_error(data):
    """Malformed frames (empty, bad header, truncated, garbage, bad ext bodies) raise DecodeError."""
    with pytest.raises(DecodeError):
        codec.decode_frame(data)


def _nested_tuples(depth):
    value = 0
    for _ in range(depth):
        value = (value,)
    return value


def test_nesting_up_to_the_limit_roundtrips():
    """Tuples nested MAX_EXT_DEPTH deep round-trip, alone and in a frame."""
    value = _nested_tuples(MAX_EXT_DEPTH)
    assert same(roundtrip(value), value)
    assert same(codec.decode_frame(codec.frame([codec.encode(value)])), [value])


def test_nesting_beyond_the_limit_raises_encode_error():
    """Encoding ext values nested deeper than MAX_EXT_DEPTH raises EncodeError, not RecursionError."""
    for depth in (MAX_EXT_DEPTH + 1, 2000):
        with pytest.raises(EncodeError):
            codec.encode(_nested_tuples(depth))


@pytest.mark.parametrize("depth", [MAX_EXT_DEPTH + 2, 300, 3000])
def test_deeply_nested_ext_raises_decode_error(depth):
    """A crafted frame nesting tuple ext values too deep raises DecodeError instead of crashing."""
    body = msgpack.packb(0)
    for _ in range(depth):
        body = msgpack.packb(msgpack.ExtType(1, b"\x91" + body))  # a 1-tuple holding body
    with pytest.raises(DecodeError):
        codec.decode_frame(bytes([FRAME_VERSION]) + body)
    with pytest.raises(DecodeError):
        codec.decode(body)


def _decode_frame_or_decode_error(data):
    try:
        out = codec.decode_frame(data)
    except DecodeError:
        return
    assert type(out) is list


@FAST
@given(st.binary(max_size=200))
def test_fuzz_random_bytes(data):
    """decode_frame on random bytes returns a list or raises DecodeError, nothing else."""
    _decode_frame_or_decode_error(data)


@FAST
@given(st.binary(max_size=200))
def test_fuzz_random_bytes_after_valid_header(data):
    """decode_frame on a valid header followed by random bytes returns a list or raises DecodeError."""
    _decode_frame_or_decode_error(bytes([FRAME_VERSION]) + data)


@FAST
@given(values, st.data())
def test_fuzz_mutated_valid_frames(value, data):
    """decode_frame on a valid frame with one byte changed or cut returns a list or raises DecodeError."""
    frame = bytearray(codec.frame([codec.encode(value), codec.encode([value])]))
    i = data.draw(st.integers(0, len(frame) - 1))
    if data.draw(st.booleans()):
        frame[i] = data.draw(st.integers(0, 255))
    else:
        del frame[i:]
    _decode_frame_or_decode_error(bytes(frame))


@pytest.mark.parametrize("data", [b"", b"\xc1", codec.encode("abc")[:-1], codec.encode(1) + b"\x01"])
def test_decode_malformed_message_raises_decode_error(data):
    """Codec.decode raises DecodeError on empty, invalid, truncated or trailing bytes."""
    with pytest.raises(DecodeError):
        codec.decode(data)


# -- exceptions ---------------------------------------------------------------------

def _raised(exc):
    try:
        raise exc
    except BaseException as e:  # noqa: BLE001 - we want the traceback attached
        return e


def _check_remote_traceback(back, fragment="_raised"):
    assert isinstance(back.remote_traceback, str) and fragment in back.remote_traceback
    assert isinstance(back.__cause__, RemoteTraceback)
    assert back.remote_traceback in str(back.__cause__)


@pytest.mark.parametrize("exc", [
    ValueError("bad", 3, (1, 2)),
    KeyError("k"),
    ZeroDivisionError(),
    AppError(42, {"why": [1, 2]}),
    RemoteException("elsewhere.Err", "it broke", "remote tb text"),
], ids=repr)
def test_exception_roundtrips_as_its_class(exc):
    """An exception comes back as its own class with equal args, its traceback text and a __cause__."""
    original = _raised(exc)
    back = roundtrip(original)
    assert type(back) is type(exc)
    assert same(back.args, exc.args)
    if isinstance(exc, RemoteException):
        assert (back.type_name, back.message) == (exc.type_name, exc.message)
        _check_remote_traceback(back, "remote tb text")
    else:
        _check_remote_traceback(back)
    if isinstance(exc, AppError):
        assert back.code == 42 and back.detail == {"why": [1, 2]}


def test_exception_with_unencodable_args_keeps_its_class():
    """An exception whose args cannot be sent is rebuilt from its message text."""
    back = roundtrip(_raised(ValueError(object())))
    assert type(back) is ValueError
    assert "object object at" in back.args[0]


def test_exception_of_unknown_class_becomes_remote_exception():
    """An exception whose module is not found on the receiver becomes RemoteException."""
    back = roundtrip(_raised(BogusModuleError("lost", 1)))
    assert type(back) is RemoteException
    assert back.type_name == "no_such_module_for_codec_tests.BogusModuleError"
    assert back.message == str(BogusModuleError("lost", 1))
    _check_remote_traceback(back)


def test_exception_of_local_class_becomes_remote_exception():
    """An exception class that cannot be looked up by qualname becomes RemoteException."""
    class LocalError(Exception):
        pass

    back = roundtrip(_raised(LocalError("x")))
    assert type(back) is RemoteException
    assert back.type_name.endswith("LocalError") and back.message == "x"


def test_crafted_exception_wire_value_becomes_remote_exception():
    """A wire exception naming a module that is not imported here becomes RemoteException, without importing it."""
    wire = msgpack.packb(msgpack.ExtType(EXT_EXCEPTION, msgpack.packb(
        ["json.tool:NotAnError", ["m"], "m", "Traceback: remote"])))
    was_imported = "json.tool" in sys.modules
    back = codec.decode(wire)
    assert ("json.tool" in sys.modules) == was_imported
    assert type(back) is RemoteException
    assert back.type_name == "json.tool.NotAnError" and back.message == "m"
    assert back.remote_traceback == "Traceback: remote"
    assert isinstance(back.__cause__, RemoteTraceback)


# -- unsupported types -------------------------------------------------------------

@pytest.mark.parametrize(("value", "type_name"), [
    (object(), "builtins.object"),
    (lambda: 1, "builtins.function"),
    (Unregistered(1), "test_codec.Unregistered"),
    (Color.RED, "test_codec.Color"),
    (Name("x"), "test_codec.Name"),
    ([1, {"k": (2, object())}], "builtins.object"),
    ({Color.RED: 1}, "test_codec.Color"),
], ids=["object", "lambda", "dataclass", "IntEnum", "str-subclass", "nested", "key"])
def test_unsupported_types_raise_encode_error(value, type_name):
    """Unsupported values raise EncodeError naming their type, even deep inside containers."""
    with pytest.raises(EncodeError) as info:
        codec.encode(value)
    assert info.value.type_name == type_name
    assert type_name in str(info.value)
    assert isinstance(info.value, TypeError)


def test_unregistered_dataclass_error_hints_at_message():
    """Encoding an unregistered dataclass raises an EncodeError that suggests @message."""
    with pytest.raises(EncodeError, match=r"@\S*message"):
        codec.encode(Unregistered(1))


def test_codec_still_works_after_encode_error():
    """A failed encode leaves no partial state: the next encode is exact."""
    with pytest.raises(EncodeError):
        codec.encode(((1, 2), {3: object()}))
    assert same(roundtrip(((4,), {5: (6,)})), ((4,), {5: (6,)}))


# -- the runtime's lenient codec --------------------------------------------------------

def test_lenient_codec_isolates_unregistered_dataclass():
    """The runtime's codec turns an unregistered-dataclass value into Undecodable and decodes the rest of the frame."""
    lenient = RuntimeCodec(lambda *fields: fields, allow_pickle=False)
    bad_value = msgpack.ExtType(EXT_DATACLASS, lenient.encode(["test_codec:Unregistered", {"a": 1}]))
    missing = msgpack.ExtType(EXT_DATACLASS, lenient.encode(["no_such_module_xyz:Gone", {}]))
    frame = lenient.frame([
        lenient.encode(["first", (1, 2)]),
        lenient.encode(["second", bad_value, 3]),
        lenient.encode({"third": missing}),
        lenient.encode(Point(1, 2.0)),
    ])
    out = lenient.decode_frame(frame)
    assert len(out) == 4
    assert same(out[0], ["first", (1, 2)])
    assert out[1][0] == "second" and out[1][2] == 3
    assert isinstance(out[1][1], Undecodable)
    assert isinstance(out[1][1].error, DecodeError)
    assert find_undecodable(out[2]) is out[2]["third"]
    assert same(out[3], Point(1, 2.0))
    assert lenient.bad == 2


def test_strict_codec_rejects_unregistered_dataclass():
    """The plain Codec raises DecodeError for a dataclass value that is not registered."""
    wire = codec.frame([codec.encode(1), msgpack.packb(msgpack.ExtType(
        EXT_DATACLASS, codec.encode(["test_codec:Unregistered", {"a": 1}])))])
    with pytest.raises(DecodeError, match="not registered"):
        codec.decode_frame(wire)
