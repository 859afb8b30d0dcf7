"""Encryption at rest with age (pyrage): objects are encrypted before they leave the process.

Only the public recipients are needed to write, so a host can back up without being able
to read its backups. Checksums are taken over the ciphertext, so ``verify`` needs no key;
decoding (restore, ``verify --deep``) needs the identity file.

pyrage's streaming calls pull from a reader and push to a writer; a pipe and one thread
adapt that to the push-style writers of the backup path and the pull-style readers of the
restore path.
"""

from __future__ import annotations

import os
import threading
from typing import Any, BinaryIO

from primitives import age_keys
from trade_stream.errors import BadInputError, IntegrityError

AGE = "age"


def _load_recipients(recipients: list[str]) -> list[Any]:
    try:
        return age_keys.parse_recipients(recipients)
    except age_keys.AgeKeyError as exc:
        raise BadInputError(f"[encryption] recipients: {exc}") from None


def _load_identities(identity_file: str) -> list[Any]:
    try:
        return age_keys.load_identities(identity_file)
    except age_keys.AgeKeyError as exc:
        raise BadInputError(f"[encryption] identity_file {exc}") from None


class _PipeThread:
    """Runs ``work(reader_end_or_writer_end)`` in a thread and re-raises its error."""

    def __init__(self, target: Any) -> None:
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(target,), daemon=True)

    def _run(self, target: Any) -> None:
        try:
            target()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            self.error = exc

    def start(self) -> None:
        self.thread.start()

    def join(self) -> None:
        self.thread.join()


class EncryptingWriter:
    """Plaintext in through ``write``; ciphertext out to ``sink`` (any object with write)."""

    def __init__(self, sink: Any, recipients: list[Any]) -> None:
        import pyrage

        read_fd, write_fd = os.pipe()
        self._in = os.fdopen(write_fd, "wb", buffering=1 << 20)
        reader = os.fdopen(read_fd, "rb", buffering=1 << 20)

        def work() -> None:
            with reader:
                pyrage.encrypt_io(reader, sink, recipients)

        self._worker = _PipeThread(work)
        self._worker.start()

    def write(self, data: bytes) -> int:
        try:
            return self._in.write(data)
        except BrokenPipeError:
            self._worker.join()
            raise self._worker.error or IntegrityError("encryption stopped early") from None

    def close(self) -> None:
        try:
            self._in.close()
        except BrokenPipeError:
            pass
        self._worker.join()
        if self._worker.error:
            raise self._worker.error


class DecryptingReader:
    """A readable plaintext stream over a ciphertext handle."""

    def __init__(self, handle: BinaryIO, identities: list[Any], name: str) -> None:
        import pyrage

        read_fd, write_fd = os.pipe()
        self._out = os.fdopen(read_fd, "rb", buffering=1 << 20)
        writer = os.fdopen(write_fd, "wb", buffering=1 << 20)
        self.name = name

        def work() -> None:
            try:
                pyrage.decrypt_io(handle, writer, identities)
            finally:
                try:
                    writer.close()
                except BrokenPipeError:
                    pass

        self._worker = _PipeThread(work)
        self._worker.start()

    def read(self, size: int = -1) -> bytes:
        data = self._out.read(size)
        if not data or (size > 0 and len(data) < size):
            self._worker.join()
            self._raise()
        return data

    def _raise(self) -> None:
        error = self._worker.error
        if error is None:
            return
        if "No matching keys" in str(error) or type(error).__name__ == "IdentityError":
            raise BadInputError(f"{self.name}: the identity file does not hold the key this backup was encrypted to")
        raise IntegrityError(f"{self.name}: decryption failed: {error}")

    def close(self) -> None:
        self._out.close()
        self._worker.join()

    def __enter__(self) -> "DecryptingReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Cipher:
    """What the configuration says about encryption: who can read, who can write."""

    def __init__(self, recipients: list[str] | None = None, identity_file: str = "") -> None:
        self.recipients = _load_recipients(recipients or [])
        self.identity_file = identity_file
        self._identities: list[Any] | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.recipients)

    def encrypting(self, sink: Any) -> EncryptingWriter:
        return EncryptingWriter(sink, self.recipients)

    def decrypting(self, handle: BinaryIO, name: str) -> DecryptingReader:
        if not self.identity_file:
            raise BadInputError(f"{name} is encrypted: set [encryption] identity_file to read it")
        if self._identities is None:
            self._identities = _load_identities(self.identity_file)
        return DecryptingReader(handle, self._identities, name)


NO_ENCRYPTION = Cipher()
