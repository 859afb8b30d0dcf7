"""Reading the capture slot over the streaming replication protocol (``START_REPLICATION``).

Why, next to ``pg_logical_slot_peek_changes``: that SQL function keeps its whole output in
a tuplestore before it hands out the first row, and the tuplestore spills to temporary
files on the database server: 1.1 GB for one 3M-row update, and under a ``temp_file_limit``
smaller than that every incremental failed for as long as the transaction was in the slot.
A walsender writes each message as wal2json makes it, no temporary file; the client parses
while the server still decodes (which, with the storing threads, took the same wall time on
two cores: measured, see docs/postgres.md). Peek stays for when no replication connection
can be had.

What a stream must not do is confirm anything. A client's status updates report the
positions it has written and flushed, and the walsender moves the slot's confirmed
position to the flushed one; ours report InvalidXLogRecPtr (0) for all three, which the
walsender ignores. The slot moves only when the capture calls ``advance`` after storing,
exactly as with peek. (``pg_recvlogical`` confirms what it has written out: unusable here.)

Where a stream stops: the walsender keeps decoding whatever is committed after the bound.
A transaction is handed out only at its commit, and its ``B`` message names the end of
its commit record (``nextlsn``): the first ``B`` past the bound ends the stream before
it. Without one, the server says how far it has decoded in its keepalive messages
(``walEnd`` is its send position in a logical walsender); the stream asks for one whenever
the connection is idle, and ends at the first that reaches the bound between transactions.
"""

from __future__ import annotations

import selectors
import struct
import time
from typing import TYPE_CHECKING, Iterator

from trade_stream.errors import StorageError
from trade_stream.postgres.copy_out import drain, first_result
from trade_stream.postgres.lsn import format_lsn, parse_lsn
from trade_stream.postgres.wal2json import decode_message

if TYPE_CHECKING:
    import psycopg

IDLE_SECONDS = 0.01  # without data for this long, ask the server how far it has decoded
STATUS_EVERY = 1.0  # seconds between status updates while data flows (wal_sender_timeout: 60 s by default)
BUSY_SLOT_SECONDS = 15.0  # how long a read waits for another reader (``status``) to let the slot go
RELEASE_SECONDS = 10.0  # how long a closed stream's walsender may keep the slot before it is terminated

_KEEPALIVE = struct.Struct(">cQQB")  # 'k', the server's send position, its clock, reply requested
_STATUS = struct.Struct(">cQQQqB")  # 'r', written, flushed, applied (all 0: nothing confirmed), clock, reply
_POSTGRES_EPOCH_US = 946_684_800_000_000  # 2000-01-01 in Unix microseconds
_BEGIN = b'{"action":"B"'
_COMMIT = b'{"action":"C"'


def _status(reply: bool) -> bytes:
    now = int(time.time() * 1_000_000) - _POSTGRES_EPOCH_US
    return _STATUS.pack(b"r", 0, 0, 0, now, 1 if reply else 0)


def start_command(slot: str, start_lsn: int, options: tuple[tuple[str, str], ...]) -> str:
    """``START_REPLICATION`` of a logical slot with the plugin's options (names and values
    are tradevault's own: no quote is ever in them)."""
    listed = ", ".join(f'"{name}" \'{value}\'' for name, value in options)
    return f'START_REPLICATION SLOT "{slot}" LOGICAL {format_lsn(start_lsn)}' + (f" ({listed})" if listed else "")


def past_bound(message: bytes, upto_lsn: int) -> bool:
    """Whether ``message`` begins a transaction committed after ``upto_lsn``."""
    return message.startswith(_BEGIN) and parse_lsn(decode_message(message).nextlsn or "0/0") > upto_lsn


def streamed_messages(rconn: "psycopg.Connection", slot: str, options: tuple[tuple[str, str], ...],
                      upto_lsn: int, until: float | None = None, busy_wait: float = BUSY_SLOT_SECONDS,
                      ) -> Iterator[bytes]:
    """The slot's wal2json messages from its confirmed position, of the transactions
    committed up to ``upto_lsn``, as the walsender of ``rconn`` (a replication connection,
    idle) writes them; none after ``until`` (a ``time.monotonic()`` deadline), when given.
    A slot another reader holds is asked for again for ``busy_wait`` seconds. ``rconn`` is
    unusable afterwards: close it (``release_slot``)."""
    from psycopg import errors

    try:
        yield from _stream(rconn, slot, options, upto_lsn, until, busy_wait)
    except errors.OperationalError as exc:
        if exc.sqlstate:  # the server's answer (the slot held by another reader...): as it is
            raise
        # the connection ended under the stream
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StorageError(f"the walsender reading replication slot {slot!r} ended the stream: {first}"
                           " (the server's log says why: wal_sender_timeout, a restart, a terminated"
                           " backend; the next backup reads the changes again)") from None


def _stream(rconn: "psycopg.Connection", slot: str, options: tuple[tuple[str, str], ...],
            upto_lsn: int, until: float | None, busy_wait: float) -> Iterator[bytes]:
    from psycopg import errors, pq

    pgconn = rconn.pgconn
    readable = selectors.DefaultSelector()
    readable.register(pgconn.socket, selectors.EVENT_READ)
    try:
        busy_until = time.monotonic() + busy_wait
        while True:
            result = first_result(pgconn, readable, start_command(slot, 0, options).encode())
            if result is not None and result.status == pq.ExecStatus.COPY_BOTH:
                break
            failure = errors.error_from_result(result, encoding=rconn.info.encoding) if result is not None \
                else errors.OperationalError("START_REPLICATION returned no result")
            drain(pgconn)
            # another reader holds the slot for a moment (`tradevault status` counting): wait
            if not isinstance(failure, errors.ObjectInUse) or time.monotonic() >= busy_until:
                raise failure
            time.sleep(0.1)
        send = _Sender(pgconn)
        in_transaction = False
        get = pgconn.get_copy_data
        while True:
            size, data = get(1)
            if size > 0:
                kind = data[0]
                if kind == 0x77:  # 'w' XLogData: start, end, clock, then the plugin's message
                    message = bytes(data[25:])
                    if message.startswith(_BEGIN):
                        if past_bound(message, upto_lsn):
                            return
                        in_transaction = True
                    elif message.startswith(_COMMIT):
                        in_transaction = False
                    yield message
                    if send.now_and_then(until):
                        return
                elif kind == 0x6B:  # 'k' keepalive
                    _, decoded_upto, _, reply = _KEEPALIVE.unpack_from(data)
                    if decoded_upto >= upto_lsn and not in_transaction:
                        return
                    if reply:
                        send(reply=False)
            elif size == 0:
                if not readable.select(IDLE_SECONDS):
                    if until is not None and time.monotonic() >= until:
                        return
                    send(reply=True)
                pgconn.consume_input()
            else:  # the server ended the stream (it never does on its own): an error
                result = pgconn.get_result()
                raise errors.error_from_result(result, encoding=rconn.info.encoding) if result is not None \
                    else errors.OperationalError("the replication stream ended")
    finally:
        readable.close()


class _Sender:
    """Status updates to the walsender: on request, when idle, and every ``STATUS_EVERY``
    seconds while data flows (a walsender without news from its client for
    ``wal_sender_timeout`` ends the connection)."""

    def __init__(self, pgconn: "psycopg.pq.abc.PGconn") -> None:
        self.pgconn = pgconn
        self.last = time.monotonic()
        self.messages = 0

    def now_and_then(self, until: float | None) -> bool:
        """After a message: a status update when one is due; whether ``until`` has passed."""
        self.messages += 1
        if self.messages & 255:
            return False
        now = time.monotonic()
        if now - self.last > STATUS_EVERY:
            self(reply=False)
        return until is not None and now >= until

    def __call__(self, reply: bool) -> None:
        pgconn = self.pgconn
        while pgconn.put_copy_data(_status(reply)) == 0:  # libpq's buffer full: flush first
            pgconn.flush()
        while pgconn.flush() == 1:
            time.sleep(0.001)
        self.last = time.monotonic()


def release_slot(rconn: "psycopg.Connection", conn: "psycopg.Connection", slot: str) -> None:
    """Close a stream's replication connection and return once its walsender has let
    ``slot`` go (asked through ``conn``): the capture advances the slot next, which a
    walsender still holding it refuses. One that lingers is terminated."""
    pid = rconn.pgconn.backend_pid
    rconn.close()
    holder = "SELECT active_pid FROM pg_replication_slots WHERE slot_name = %s"
    for attempt in range(2):
        deadline = time.monotonic() + RELEASE_SECONDS
        while time.monotonic() < deadline:
            row = conn.execute(holder, (slot,)).fetchone()
            if row is None or row[0] != pid:
                return
            time.sleep(0.002)
        if attempt == 0:
            conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
    raise StorageError(f"the walsender (pid {pid}) that read replication slot {slot!r} did not let it go")
