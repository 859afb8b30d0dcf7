"""PostgreSQL column types: which ones tradevault carries exactly, and how their values
become the Python values of the change stream.

One value domain serves the full snapshot (binary COPY, psycopg's loaders) and the change
stream (wal2json's text, parsed here), so a row reads the same either way:

=========================  ==============================================================
PostgreSQL                 Python value
=========================  ==============================================================
smallint/integer/bigint    int
numeric                    Decimal, every digit and the scale (``1.10`` stays ``1.10``)
real                       float (the float4 value widened to a double, bit-exact)
double precision           float, bit for bit (PostgreSQL >= 12 prints the shortest
                           representation that reads back to the same double)
boolean                    bool
text/varchar/char          str
bytea                      bytes
uuid                       uuid.UUID
date                       datetime.date
timestamp                  naive datetime.datetime
timestamptz                aware datetime.datetime in UTC
time / timetz              datetime.time (with tzinfo for timetz)
interval                   timedelta when it is exactly one (no months, time part in
                           [0, 24 h)); otherwise the text ``"M mons D days U microseconds"``,
                           which PostgreSQL reads back to the identical interval (a
                           timedelta cannot tell ``1 mon`` from ``30 days``)
json / jsonb               str: the document's text as PostgreSQL stores it (parsing it
                           would lose number digits and, for json, key order/whitespace)
arrays of the above        list (nested for multi-dimensional arrays; lower bounds other
                           than 1 are not kept)
=========================  ==============================================================

Every other type (enums, domains, composite, range and multirange types, extension types
such as citext, inet or hstore, money, bit strings, xml, tsvector, ... and arrays of any of
them) **travels as its exact text**: a str holding what PostgreSQL prints for the value,
which it reads back to the identical value (``'value'::type``). A table holding such a
column is copied in COPY's text format (binary COPY of composites and arrays names type
oids, which differ from one database to another), and the definitions of the types it
uses travel with the backup (``type_definitions.py``). A date or timestamp Python's
datetime cannot hold (``infinity``, ``-infinity``, BC, a year past 9999) is the str
PostgreSQL reads back to it (``temporal_text``), as an interval that is no timedelta is:
an application's "valid until infinity" stopped every incremental before.

wal2json 2.5 (Debian 12) prints NaN and +-Infinity of real/double/numeric columns as JSON
``null``: through the change stream those values arrive as NULL. The full snapshot carries
them exactly. (wal2json >= 2.6 has ``numeric-data-types-as-string``; the capture uses it
when the plugin accepts it, which makes them exact in the stream too.)
"""

from __future__ import annotations

import datetime as dt
import decimal
import re
import struct
import uuid
from typing import Any, Callable

from msgspec.msgpack import Ext
from psycopg import adapt
from psycopg.adapt import AdaptersMap, Loader
from psycopg.pq import Format

from trade_stream.errors import BadInputError
from trade_stream.values import EXT_DECIMAL, to_wire

# base type name (format_type without typmod) -> (type oid, array type oid, family)
BASE_TYPES: dict[str, tuple[int, int, str]] = {
    "smallint": (21, 1005, "integer"),
    "integer": (23, 1007, "integer"),
    "bigint": (20, 1016, "integer"),
    "numeric": (1700, 1231, "numeric"),
    "real": (700, 1021, "float"),
    "double precision": (701, 1022, "float"),
    "boolean": (16, 1000, "boolean"),
    "text": (25, 1009, "text"),
    "character varying": (1043, 1015, "text"),
    "character": (1042, 1014, "text"),
    "bytea": (17, 1001, "blob"),
    "uuid": (2950, 2951, "uuid"),
    "date": (1082, 1182, "date"),
    "timestamp without time zone": (1114, 1115, "datetime"),
    "timestamp with time zone": (1184, 1185, "datetime"),
    "time without time zone": (1083, 1183, "time"),
    "time with time zone": (1266, 1270, "time"),
    "interval": (1186, 1187, "interval"),
    "json": (114, 199, "json"),
    "jsonb": (3802, 3807, "json"),
}
ARRAY_FAMILY = "array"
_TYPMOD = re.compile(r"\(\d+(?:,\d+)?\)")
_DAY_US = 86_400_000_000


def base_name(declared: str) -> tuple[str, bool]:
    """("numeric", False) for "numeric(10,2)"; ("character varying", True) for
    "character varying(20)[]"; typmods may sit inside the name ("timestamp(3) with ...")."""
    name = _TYPMOD.sub("", declared).strip()
    is_array = name.endswith("[]")
    while name.endswith("[]"):
        name = name[:-2]
    return name, is_array


TEXT_OID = 25


def travels_as_text(declared: str) -> bool:
    """A type outside BASE_TYPES: its values are the exact text PostgreSQL prints."""
    return base_name(declared)[0] not in BASE_TYPES


def type_oid(declared: str) -> int:
    """The oid whose loader gives the stream's value: the type's own for BASE_TYPES (and
    their arrays), text for every type that travels as text."""
    name, is_array = base_name(declared)
    if name not in BASE_TYPES:
        return TEXT_OID
    oid, array_oid, _ = BASE_TYPES[name]
    return array_oid if is_array else oid


def pg_family(declared: str) -> str:
    name, is_array = base_name(declared)
    if name not in BASE_TYPES:
        return "other"
    if is_array:
        return ARRAY_FAMILY
    return BASE_TYPES[name][2]


# -- intervals -------------------------------------------------------------------------------
_INTERVAL = struct.Struct("!qii")  # microseconds, days, months
_INTERVAL_TEXT = re.compile(
    r"^(?:([-+]?\d+) years? ?)?(?:([-+]?\d+) mons? ?)?(?:([-+]?\d+) days? ?)?"
    r"(?:([-+])?(\d+):(\d+):(\d+)(?:\.(\d+))?)?$"
)


def interval_value(months: int, days: int, micros: int) -> dt.timedelta | str:
    """A timedelta when that is exact, else the canonical text PostgreSQL reads back."""
    if months == 0 and 0 <= micros < _DAY_US:
        return dt.timedelta(days=days, microseconds=micros)
    return f"{months} mons {days} days {micros} microseconds"


def parse_interval_text(text: str) -> dt.timedelta | str:
    """IntervalStyle ``postgres`` output (the default, and what the capture session uses)."""
    m = _INTERVAL_TEXT.match(text.strip())
    if not m:
        raise BadInputError(f"cannot read interval {text!r} (IntervalStyle must be 'postgres')")
    years, mons, days, sign, hours, minutes, seconds, fraction = m.groups()
    months = int(years or 0) * 12 + int(mons or 0)
    micros = 0
    if hours is not None:
        micros = ((int(hours) * 60 + int(minutes)) * 60 + int(seconds)) * 1_000_000
        micros += int((fraction or "0").ljust(6, "0")[:6])
        if sign == "-":
            micros = -micros
    return interval_value(months, int(days or 0), micros)


class IntervalBinaryLoader(Loader):
    format = Format.BINARY

    def load(self, data: Any) -> dt.timedelta | str:
        micros, days, months = _INTERVAL.unpack(bytes(data))
        return interval_value(months, days, micros)


class IntervalTextLoader(Loader):
    def load(self, data: Any) -> dt.timedelta | str:
        return parse_interval_text(bytes(data).decode())


# -- json as text ----------------------------------------------------------------------------
class JsonTextLoader(Loader):
    def load(self, data: Any) -> str:
        return bytes(data).decode()


class JsonbBinaryTextLoader(Loader):
    format = Format.BINARY

    def load(self, data: Any) -> str:
        raw = bytes(data)
        if raw[:1] != b"\x01":
            raise BadInputError("unknown jsonb binary format")
        return raw[1:].decode()


class JsonBinaryTextLoader(Loader):
    format = Format.BINARY

    def load(self, data: Any) -> str:
        return bytes(data).decode()


# -- real: one widening rule whichever way the value came --------------------------------------
_F4 = struct.Struct("!f")


def widen_real(value: float) -> float:
    """The float4 nearest to ``value``, as a double (what binary COPY yields)."""
    return _F4.unpack(_F4.pack(value))[0]


class RealTextLoader(Loader):
    def load(self, data: Any) -> float:
        return widen_real(float(bytes(data)))


# -- dates and timestamps Python cannot hold ---------------------------------------------------
_EPOCH_DAYS = 10_957  # 2000-01-01, PostgreSQL's epoch, in days after 1970-01-01
_DAY_US = 86_400_000_000
_I32_INF, _I64_INF = (1 << 31) - 1, (1 << 63) - 1


def _civil(days: int) -> tuple[int, int, int]:
    """(year, month, day) of the proleptic Gregorian calendar, ``days`` after 1970-01-01;
    year 0 is 1 BC (H. Hinnant's ``civil_from_days``). Pure integer arithmetic: any year."""
    z = days + 719_468
    era = z // 146_097
    doe = z - era * 146_097
    yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    return yoe + era * 400 + (month <= 2), month, day


def temporal_text(kind: str, value: int) -> str:
    """PostgreSQL's text (DateStyle ISO, UTC) of a binary ``date`` (days after 2000-01-01)
    or ``timestamp``/``timestamptz`` (microseconds after it) that Python's datetime cannot
    hold: infinity, BC, a year past 9999. PostgreSQL reads it back to the same value."""
    limit = _I32_INF if kind == "date" else _I64_INF
    if value >= limit:
        return "infinity"
    if value <= -limit - 1:
        return "-infinity"
    days, micros = (value, 0) if kind == "date" else divmod(value, _DAY_US)
    year, month, day = _civil(days + _EPOCH_DAYS)
    text = f"{year if year > 0 else 1 - year:04d}-{month:02d}-{day:02d}"
    if kind != "date":
        seconds, fraction = divmod(micros, 1_000_000)
        text += f" {seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
        text += f".{fraction:06d}".rstrip("0") if fraction else ""
        text += "+00" if kind == "timestamptz" else ""
    return text + (" BC" if year <= 0 else "")


class _TemporalLoader(Loader):
    """psycopg's own loader, except for a value Python's datetime cannot hold (infinity,
    BC, a year past 9999): that one loads as the text PostgreSQL reads back to it, the way
    an interval that is no timedelta does. Such values arrive in the change stream and the
    capture must not stop at them (every incremental would meet them again)."""

    kind = ""

    def __init__(self, oid: int, context: Any = None) -> None:
        import psycopg

        super().__init__(oid, context)
        self._inner = psycopg.adapters.get_loader(oid, self.format)(oid, context)  # type: ignore[misc]

    def load(self, data: Any) -> Any:
        import psycopg

        try:
            return self._inner.load(data)
        except psycopg.DataError:
            raw = bytes(data)
            if self.format == Format.TEXT:
                return raw.decode()
            return temporal_text(self.kind, (_I4 if self.kind == "date" else _I8).unpack(raw)[0])


_I4, _I8 = struct.Struct("!i"), struct.Struct("!q")


def _temporal_loaders() -> list[tuple[str, type[Loader]]]:
    out: list[tuple[str, type[Loader]]] = []
    for name in ("date", "timestamp", "timestamptz"):
        for fmt in (Format.TEXT, Format.BINARY):
            out.append((name, type(f"{name}_{fmt.name.lower()}_loader", (_TemporalLoader,),
                                   {"kind": name, "format": fmt})))
    return out


def adapters() -> AdaptersMap:
    """psycopg's adapters with tradevault's exact loaders (json as text, exact intervals)."""
    import psycopg

    amap = AdaptersMap(psycopg.adapters)
    for name in ("json", "jsonb"):
        amap.register_loader(name, JsonTextLoader)
    amap.register_loader("jsonb", JsonbBinaryTextLoader)
    amap.register_loader("json", JsonBinaryTextLoader)
    amap.register_loader("interval", IntervalTextLoader)
    amap.register_loader("interval", IntervalBinaryLoader)
    amap.register_loader("float4", RealTextLoader)
    for name, loader in _temporal_loaders():
        amap.register_loader(name, loader)
    return amap


_ADAPTERS: AdaptersMap | None = None


def shared_adapters() -> AdaptersMap:
    global _ADAPTERS
    if _ADAPTERS is None:
        _ADAPTERS = adapters()
    return _ADAPTERS


# -- wal2json values --------------------------------------------------------------------------
Parser = Callable[[Any], Any]


def _text_loader(oid: int) -> Parser:
    """psycopg's own text loader for the type (dates, times, arrays...), offline."""
    tx = adapt.Transformer(shared_adapters())
    loader = tx.get_loader(oid, Format.TEXT)
    return lambda value: loader.load(value.encode())


def _numeric(value: Any) -> decimal.Decimal:
    return decimal.Decimal(value if isinstance(value, str) else str(value))


def _float(value: Any) -> float:
    return float(value)


def _real(value: Any) -> float:
    return widen_real(float(value))


def _int(value: Any) -> int:
    return int(value)


def _bytea(value: str) -> bytes:
    # wal2json drops the "\x" of bytea's hex output
    return bytes.fromhex(value[2:] if value.startswith("\\x") else value)


def _same(value: Any) -> Any:
    return value


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


def _uuid(value: str) -> uuid.UUID:
    return uuid.UUID(value)


def _date(value: str) -> dt.date | str:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:  # infinity, BC, a year past 9999: its text (see _TemporalLoader)
        return value


_PARSERS: dict[str, Parser] = {
    "smallint": _int, "integer": _int, "bigint": _int,
    "numeric": _numeric, "real": _real, "double precision": _float,
    "boolean": _same, "text": _same, "character varying": _same, "character": _same,
    "bytea": _bytea, "uuid": _uuid, "json": _same, "jsonb": _same, "date": _date,
    "interval": lambda v: parse_interval_text(v),
}


def _numeric_wire(value: Any) -> Any:
    # wal2json prints numeric's own text (exponent-free; NaN and infinities quoted): it is
    # the Decimal's exact text already, so the value skips Decimal on its way to the wire
    return Ext(EXT_DECIMAL, (value if type(value) is str else str(value)).encode())


_SAME_ON_THE_WIRE = frozenset({"smallint", "integer", "bigint", "boolean", "text", "character varying",
                               "character", "json", "jsonb"})
_WIRE_PARSERS: dict[str, Parser] = {"numeric": _numeric_wire, "double precision": _float, "real": _real}


def wal2json_wire_parser(declared: str) -> Parser | None:
    """``wal2json_parser``'s value as it travels (``values.to_wire``), made directly for the
    common types; None when the JSON value already is it (integers, text, booleans, JSON)."""
    name, is_array = base_name(declared)
    if not is_array and name in BASE_TYPES:
        if name in _SAME_ON_THE_WIRE:
            return None
        if name in _WIRE_PARSERS:
            return _WIRE_PARSERS[name]
    parse = wal2json_parser(declared)
    return lambda value: to_wire(parse(value))


def wal2json_parser(declared: str) -> Parser:
    """Turns one wal2json ``value`` (JSON scalar: numbers arrive as their exact text, see
    ``wal2json.py``) into the stream's Python value. NULL is handled by the caller."""
    name, is_array = base_name(declared)
    if name not in BASE_TYPES:
        return _as_text  # wal2json prints the type's text (unquoted for an oid)
    if not is_array and name in _PARSERS:
        return _PARSERS[name]
    load = _text_loader(type_oid(declared))

    def parse(value: Any) -> Any:
        try:
            return load(value)
        except BadInputError:
            raise
        # psycopg's loaders raise DataError (infinity, BC, year > 9999, malformed text); the
        # element parsers inside arrays raise ValueError, decimal.InvalidOperation and the like
        except Exception as exc:  # noqa: BLE001 - any loader failure: the value is bad input
            raise BadInputError(f"{declared} value {value!r} cannot be represented exactly: {exc}") from None

    return parse
