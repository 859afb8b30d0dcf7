"""``kafka check``: do the topics hold exactly the source database's rows?

The topics' state (``state.py``) is compared, table by table and key by key, with the
rows the source database has in one read transaction. Values are compared in their
encoded form, so a type change (1 vs 1.0 vs '1') or -0.0 vs 0.0 counts as a difference.
The comparison is meaningful when the topics are caught up with the source: the report
says which seq each side is at (``topics_seq``, ``source_seq``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from trade_stream.errors import BadInputError
from trade_stream.kafka import codec as codec
from trade_stream.kafka.config import KafkaConfig
from trade_stream.kafka.source import table_rows
from trade_stream.kafka.state import KafkaState, load_state
from trade_stream.source import ChangeLog, Source

EXAMPLES = 5


@dataclass
class TableCheck:
    source_rows: int = 0
    kafka_rows: int = 0
    missing: int = 0  # in the source, not in Kafka
    extra: int = 0  # in Kafka, not in the source
    different: int = 0  # same key, other values
    examples: list[dict[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.extra or self.different)

    def note(self, kind: str, key: bytes) -> None:
        setattr(self, kind, getattr(self, kind) + 1)
        if len(self.examples) < EXAMPLES:
            self.examples.append({"problem": kind, "key": key.decode("utf-8", errors="replace")})


@dataclass
class CheckReport:
    ok: bool
    source_seq: int
    topics_seq: int | None
    tables: dict[str, TableCheck]
    differences: int
    records: int
    problems: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        for name, table in self.tables.items():
            data["tables"][name]["ok"] = table.ok
        return data


def _source_rows(conn: Any, capture: ChangeLog, seq: int) -> dict[str, dict[bytes, bytes]]:
    rows: dict[str, dict[bytes, bytes]] = {}
    for table in capture.schema_at(conn, seq).tables:
        columns, key_idx = table.column_names, table.identity_indexes()
        found = rows[table.name] = {}
        for chunk in table_rows(conn, table):
            for row in chunk:
                key = codec.encode_key([row[i] for i in key_idx])
                found[key] = codec.canonical_row(codec.encode_row_json(columns, row))
    return rows


def compare(state: KafkaState, source: dict[str, dict[bytes, bytes]]) -> dict[str, TableCheck]:
    """Per table: keys missing from Kafka, extra in Kafka, and keys whose rows differ."""
    result: dict[str, TableCheck] = {}
    kafka_tables = state.tables()
    for name in sorted(set(kafka_tables) | set(source)):
        check = result[name] = TableCheck()
        wanted = source.get(name, {})
        check.source_rows = len(wanted)
        seen = set()
        for key, row in state.rows(name):
            seen.add(key)
            check.kafka_rows += 1
            expected = wanted.get(key)
            if expected is None:
                check.note("extra", key)
            elif codec.canonical_row(row) != expected:
                check.note("different", key)
        for key in wanted:
            if key not in seen:
                check.note("missing", key)
    return result


def check_topics(config: KafkaConfig, db: Source, source: str, *,
                 topics_seq: int | None = None, timeout: float | None = None) -> CheckReport:
    """Compare the topics of ``source`` with ``db`` (``topics_seq``: the sink's checkpoint,
    reported so a caller can tell a moving source from a real difference)."""
    state = load_state(config, source, timeout=timeout)
    capture = db.change_log()
    if capture is None:
        raise BadInputError(f"checking the topics needs a readable change log; {db.dialect} sources have none")
    conn = capture.connect(readonly=True)
    try:
        conn.execute("BEGIN")
        seq = capture.last_seq(conn) if capture.is_installed(conn) else 0
        rows = _source_rows(conn, capture, seq) if seq or capture.is_installed(conn) else {}
        conn.execute("COMMIT")
    finally:
        conn.close()
    tables = compare(state, rows)
    differences = sum(t.missing + t.extra + t.different for t in tables.values())
    return CheckReport(ok=differences == 0 and not state.problems, source_seq=seq, topics_seq=topics_seq,
                       tables=tables, differences=differences, records=state.records, problems=state.problems)
