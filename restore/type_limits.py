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
    """One SQLite query over a table: per limited column, bit 1 set when a value surely
    breaks its limit (lengths, ranges and magnitudes judged in SQL, and a REAL that
    SQLite's round() changes); for a numeric column bit 2 when it holds TEXT or REAL values,
    which are then judged exactly (``judged_values_sql``, ``fits``, ``reals_fit``): SQLite's
    round() gives some REALs back unchanged whose shortest decimal form has more decimals
    than the scale (round(18.670290520000002, 8) in SQLite 3.40), and PostgreSQL would
    round those."""
    checks = []
    for column, limit in limits.items():
        c = quote_ident(column)
        if limit.kind == "length":
            checks.append(f"coalesce(max(length({c})) > {limit.size}, 0)")
        elif limit.kind == "range":
            checks.append(f"coalesce(max({c}) >= {limit.size} OR min({c}) < {-limit.size}, 0)")
        else:
            bound = f"1e{limit.size - limit.scale}"
            rounded = f"{c} != round({c}, {limit.scale}) OR " if limit.scale < 15 else ""  # round() keeps ~15 digits
            checks.append(
                f"coalesce(max(CASE typeof({c}) WHEN 'integer' THEN {c} >= {bound} OR {c} <= -{bound}"
                f" WHEN 'real' THEN {rounded}{c} >= {bound} OR {c} <= -{bound} ELSE 0 END), 0)"
                f" + 2 * coalesce(max(typeof({c}) IN ('text', 'real')), 0)")
    return f"SELECT {', '.join(checks)} FROM {quote_ident(table)}"


def judged_values_sql(table: str, column: str) -> str:
    """The values of a numeric column ``scan_sql`` leaves to Python (bit 2)."""
    c = quote_ident(column)
    return f"SELECT {c} FROM {quote_ident(table)} WHERE typeof({c}) IN ('text', 'real')"


_EXPONENT_OR_SPECIAL = re.compile(r"^.*[en].*$", re.M)  # 1e-05, inf, nan: judged by fits


def reals_fit(limit: Limit, values: list[float]) -> bool:
    """Whether a numeric column with ``limit`` keeps every REAL of ``values`` unchanged, as
    ``fits`` judges the value the restore maps it to (Decimal(repr(value))): magnitudes
    are judged in SQL, so this looks at the decimals, over the reprs of all the values at
    once (C loops: ``fits`` one by one costs about 2 us a value)."""
    text = "\n".join(map(repr, values))
    if re.search(rf"\.\d{{{limit.scale}}}\d*[1-9]", text):  # a non-zero digit beyond the scale
        return False
    return all(fits(limit, decimal.Decimal(line)) for line in _EXPONENT_OR_SPECIAL.findall(text))
