"""One worker process of a SQLite snapshot's load (see ``restore.postgres.sqlite_load``):
``python -m restore.postgres.sqlite_load_worker``.

Its job arrives as one JSON line on stdin: the target database's URL (on stdin, never on
the command line, because it may hold a password), the session statements that put the
connection in the restore's private schema, the snapshot file, the tables and the slices
to load. It writes the rows of each batch loaded on stdout, one number per line, and
commits once every slice is in. On failure it writes one line on stderr and exits with
the error's exit code (2 bad input, 3 integrity, else 1). When stdin closes before it is
done, its parent is gone, and it exits at once without committing.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from typing import Any

import msgspec

from primitives.sqlite_files import open_read_only
from restore.postgres.sqlite_load import Slice, copy_slice
from trade_stream.postgres.database import PostgresDatabase
from trade_stream.schema import TableSchema


def _exit_when_orphaned() -> None:
    # the file descriptor, not sys.stdin: a thread blocked inside a buffered reader holds
    # its lock, and the interpreter's shutdown would wait for it
    while os.read(0, 1 << 16):
        pass
    os._exit(1)


def load(job: dict[str, Any]) -> None:
    tables = {t["name"]: TableSchema.from_dict(t) for t in job["tables"]}
    slices = msgspec.convert(job["slices"], list[Slice])
    conn = PostgresDatabase(job["database"]).connect(autocommit=False)
    source = open_read_only(job["snapshot"])
    try:
        for statement in job["session"]:
            conn.execute(statement)

        def counted(rows: int) -> None:
            sys.stdout.write(f"{rows}\n")
            sys.stdout.flush()

        for piece in slices:
            copy_slice(conn, source, tables[piece.table], piece, counted)
        conn.commit()
    finally:
        source.close()
        conn.close()


def main() -> None:
    line = sys.stdin.buffer.readline()
    if not line:  # started ahead, then not needed
        return
    job = json.loads(line)
    threading.Thread(target=_exit_when_orphaned, daemon=True).start()
    try:
        load(job)
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which raises it
        text = str(exc).strip()
        sys.stderr.write((text.splitlines()[0] if text else type(exc).__name__) + "\n")
        sys.stderr.flush()
        code = getattr(exc, "exit_code", 1)
        sys.exit(code if code in (1, 2, 3) else 1)


if __name__ == "__main__":
    main()
