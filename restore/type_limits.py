"""Declared limits SQLite does not enforce and PostgreSQL does (restore into PostgreSQL).
Pure.

SQLite keeps any value in any column: a ``VARCHAR(25)`` may hold 40 characters, a
``NUMERIC(18, 8)`` a value with 12 decimals, an ``INTEGER`` 2**40. PostgreSQL would refuse
the first and the last and silently round the second. A column one of whose values breaks
its limit falls back to the type without it (``text``, ``numeric``, ``bigint``) and the
restore says so; the others keep their declared type.

The full backup's rows are checked before the tables are created (``scan_sql``: one
aggregate query per table, in SQLite); the events' values as they are mapped (``fits``).
"""

from __future__ import annotations

import decimal
import re
from dataclasses import dataclass
from typing import Any

from trade_stream.postgres.types import base_name
from trade_stream.schema import quote_ident

_TYPMOD = re.compile(r"\((\d+)(?:,(\d+))?\)$")
_RANGES = {"smallint": 1 << 15, "integer": 1 << 31}
_WIDE = decimal.Context(prec=1000)  # quantizing never overflows the context


@dataclass(frozen=True)
class Limit:
    kind: str  # length | numeric | range
    size: int  # characters, precision, or the range's bound (exclusive)
    scale: int = 0
    wider: str = "text"  # the type without the limit

    def describe(self, declared: str) -> str:
        if self.kind == "length":
            return f"a value is longer than {declared} allows"
        if self.kind == "numeric":
            return f"a value has more digits than {declared} keeps"
        return f"a value is out of {declared}'s range"


def limit_of(pg_type: str) -> Limit | None:
    """The limit a PostgreSQL column type puts on values (None: none to check)."""
    name, is_array = base_name(pg_type)
    if is_array:
        return None
    if name in _RANGES:
        return Limit("range", _RANGES[name], wider="bigint")
    match = _TYPMOD.search(pg_type.replace(" ", ""))
    if match is None:
        return None
    if name in ("character varying", "character"):
        return Limit("length", int(match.group(1)), wider="text")
    if name == "numeric":
        return Limit("numeric", int(match.group(1)), int(match.group(2) or 0), wider="numeric")
    return None


def fits(limit: Limit, value: Any) -> bool:
    """Whether PostgreSQL keeps ``value`` (a mapped one) unchanged in a column with ``limit``."""
    if value is None:
        return True
    if limit.kind == "length":
        return len(value) <= limit.size if isinstance(value, str) else True
    if limit.kind == "range":
        return not isinstance(value, int) or -limit.size <= value < limit.size
    if not isinstance(value, decimal.Decimal):
        return True
    if not value.is_finite():
        return value.is_nan()
    if value == 0:
        return True
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -limit.scale and value != value.quantize(
            decimal.Decimal(1).scaleb(-limit.scale), context=_WIDE):
        return False
    return value.adjusted() < limit.size - limit.scale


def scan_sql(table: str, limits: dict[str, Limit]) -> str:
    """One SQLite query over a table: per limited column, bit 1 set when a value breaks its
    limit (integers and REALs judged in SQL); for a numeric column bit 2 when it holds TEXT
    values (or REALs beyond round()'s digits), which are then judged one by one with
    ``fits`` (``text_values_sql``)."""
    checks = []
    for column, limit in limits.items():
        c = quote_ident(column)
        if limit.kind == "length":
            checks.append(f"coalesce(max(length({c})) > {limit.size}, 0)")
        elif limit.kind == "range":
            checks.append(f"coalesce(max({c}) >= {limit.size} OR min({c}) < {-limit.size}, 0)")
        else:
            bound = f"1e{limit.size - limit.scale}"
            judged = _judged_in_python(limit)
            real = "0" if "real" in judged else f"{c} != round({c}, {limit.scale}) OR {c} >= {bound} OR {c} <= -{bound}"
            kinds = ", ".join(f"'{kind}'" for kind in judged)
            checks.append(
                f"coalesce(max(CASE typeof({c}) WHEN 'integer' THEN {c} >= {bound} OR {c} <= -{bound}"
                f" WHEN 'real' THEN {real} ELSE 0 END), 0)"
                f" + 2 * coalesce(max(typeof({c}) IN ({kinds})), 0)")
    return f"SELECT {', '.join(checks)} FROM {quote_ident(table)}"


def _judged_in_python(limit: Limit) -> tuple[str, ...]:
    """The storage classes of a numeric column whose values ``fits`` judges one by one:
    TEXT always; REAL too when the scale is beyond what SQLite's round() keeps exactly
    (about 15 significant digits)."""
    return ("text", "real") if limit.scale >= 15 else ("text",)


def text_values_sql(table: str, column: str, limit: Limit) -> str:
    """The values of a numeric column ``scan_sql`` leaves to ``fits`` (bit 2)."""
    c = quote_ident(column)
    kinds = ", ".join(f"'{kind}'" for kind in _judged_in_python(limit))
    return f"SELECT {c} FROM {quote_ident(table)} WHERE typeof({c}) IN ({kinds})"
