"""Hypothesis strategies for the values ``transport.codec`` promises to round-trip,
and :func:`same`, an equality that also demands identical types, recursively."""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import math
import warnings
import zoneinfo
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from transport.codec import message

# When a property fails, hypothesis's pytest plugin imports libcst to suggest a
# patch; that import warns (mypy_extensions.TypedDict is deprecated) and the
# pyproject's filterwarnings=error turns it into an INTERNALERROR that hides
# the real failure. Import it once here with that warning silenced.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    try:
        import hypothesis.extra._patching  # noqa: F401
    except ImportError:  # libcst is optional
        pass

# Shared settings: no per-example deadline (the first zoneinfo load or a big
# nested value can be slow on a loaded machine), no example database on disk.
FAST = settings(deadline=None, database=None, max_examples=150,
                suppress_health_check=[HealthCheck.too_slow])


@message
@dataclasses.dataclass(frozen=True)
class Point:
    """A registered, hashable message type."""

    x: int
    y: float
    label: str = ""


@message
@dataclasses.dataclass
class Envelope:
    """A registered message type holding an arbitrary payload."""

    payload: Any
    tags: list[str] = dataclasses.field(default_factory=list)


# -- equality with exact types ----------------------------------------------

def _same_tz(a: dt.tzinfo | None, b: dt.tzinfo | None) -> bool:
    if a is None or b is None:
        return a is b
    if type(a) is not type(b):
        return False
    if isinstance(a, zoneinfo.ZoneInfo):
        return a.key == b.key  # type: ignore[attr-defined]
    return a.utcoffset(None) == b.utcoffset(None) and a.tzname(None) == b.tzname(None)


def same(a: Any, b: Any) -> bool:
    """``a == b`` with the same type at every level; nan equals nan, Decimals
    must have the same text, datetimes the same tzinfo and fold."""
    t = type(a)
    if t is not type(b):
        return False
    if t is float:
        if math.isnan(a):
            return math.isnan(b)
        return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)
    if t is complex:
        return same(a.real, b.real) and same(a.imag, b.imag)
    if t is decimal.Decimal:
        return str(a) == str(b)
    if t in (list, tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if t is dict:
        return len(a) == len(b) and all(
            same(ka, kb) and same(va, vb)
            for (ka, va), (kb, vb) in zip(a.items(), b.items()))
    if t in (set, frozenset):
        if len(a) != len(b):
            return False
        members = {y: y for y in b}
        return all(x in members and same(x, members[x]) for x in a)
    if t in (dt.datetime, dt.time):
        return (_same_tz(a.tzinfo, b.tzinfo) and a.fold == b.fold
                and a.replace(tzinfo=None) == b.replace(tzinfo=None))
    if dataclasses.is_dataclass(a) and not isinstance(a, type):
        return all(same(getattr(a, f.name), getattr(b, f.name))
                   for f in dataclasses.fields(a))
    return bool(a == b)


# -- scalars -----------------------------------------------------------------

INT64_EDGES = [0, 1, -1, 2**31, 2**63 - 1, 2**63, 2**64 - 1, 2**64, 2**64 + 1,
               -(2**63), -(2**63) - 1, -(2**64), -(2**64) - 1]

ints = st.one_of(
    st.integers(),
    st.integers(min_value=-(2**300), max_value=2**300),
    st.sampled_from(INT64_EDGES),
)
floats = st.floats()  # includes nan, +-inf, -0.0, subnormals
finite_floats = st.floats(allow_nan=False)
texts = st.text()  # hypothesis leaves out lone surrogates, which UTF-8 cannot carry
binaries = st.binary()
complexes = st.complex_numbers()
finite_decimals = st.decimals(allow_nan=False, allow_infinity=False)
uuids = st.uuids()
dates = st.dates()
timedeltas = st.timedeltas()

ZONE_KEYS = ["Europe/Paris", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata", "UTC"]

fixed_offsets = st.builds(
    lambda offset, name: dt.timezone(offset) if name is None else dt.timezone(offset, name),
    st.timedeltas(min_value=dt.timedelta(hours=-23, minutes=-59, seconds=-59, microseconds=-999999),
                  max_value=dt.timedelta(hours=23, minutes=59, seconds=59, microseconds=999999)),
    st.none() | st.text(min_size=1, max_size=8),
)

timezones = st.one_of(
    st.just(dt.timezone.utc),
    fixed_offsets,
    st.sampled_from(ZONE_KEYS).map(zoneinfo.ZoneInfo),
)

naive_datetimes = st.datetimes()
aware_datetimes = st.datetimes(timezones=timezones)
datetimes = st.builds(lambda d, fold: d.replace(fold=fold),
                      naive_datetimes | aware_datetimes, st.sampled_from([0, 1]))
times = st.builds(lambda t, fold: t.replace(fold=fold),
                  st.times() | st.times(timezones=timezones), st.sampled_from([0, 1]))

points = st.builds(Point, x=ints, y=finite_floats, label=texts)

scalars = st.one_of(
    st.none(), st.booleans(), ints, floats, texts, binaries, complexes,
    datetimes, dates, times, timedeltas, finite_decimals, uuids, points,
)

# -- hashables (dict keys, set members); nan is left out because nan != nan --

hashable_scalars = st.one_of(
    st.none(), st.booleans(), ints, finite_floats, texts, binaries,
    st.complex_numbers(allow_nan=False), finite_decimals, uuids, dates,
    naive_datetimes, timedeltas,
    st.builds(Point, x=ints, y=finite_floats, label=texts),
)

hashables = st.recursive(
    hashable_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4).map(tuple),
        st.frozensets(inner, max_size=4),
    ),
    max_leaves=8,
)


# -- nested values -------------------------------------------------------------

def _containers(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.lists(inner, max_size=5),
        st.lists(inner, max_size=5).map(tuple),
        st.dictionaries(hashables, inner, max_size=5),
        st.sets(hashables, max_size=5),
        st.frozensets(hashables, max_size=5),
        st.builds(Envelope, payload=inner, tags=st.lists(texts, max_size=3)),
    )


values = st.recursive(scalars, _containers, max_leaves=20)
