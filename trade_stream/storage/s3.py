"""``s3://bucket/prefix`` locations through boto3 (AWS S3 and S3-compatible stores).

Writes stream as a multipart upload (parts uploaded in the background while the caller
keeps producing data; small objects are one PUT). S3 makes an object visible only when
its PUT or multipart completion succeeds, so no partial object is ever visible, and the
manifest entry is written after the object anyway. Transient errors are retried by
botocore's standard retry mode with backoff.
"""

from __future__ import annotations

import concurrent.futures
import io
from typing import Any, BinaryIO

from trade_stream.errors import AlreadyStored, BadInputError, StorageError
from trade_stream.storage.requests import RequestCounter

PART_SIZE = 16 * 1024 * 1024
MAX_PARTS_IN_FLIGHT = 3


def _client(endpoint_url: str, region: str, access_key_id: str, secret_access_key: str) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(
        retries={"max_attempts": 3, "mode": "standard"},
        connect_timeout=5,
        read_timeout=60,
        s3={"addressing_style": "path"} if endpoint_url else {},
    )
    kwargs: dict[str, Any] = {"config": config}
    if endpoint_url:
        kwargs["endpoint_url"] = endpoint_url
    if region:
        kwargs["region_name"] = region
    if access_key_id:
        kwargs["aws_access_key_id"] = access_key_id
        kwargs["aws_secret_access_key"] = secret_access_key
    return boto3.client("s3", **kwargs)


class _S3Writer:
    def __init__(self, location: "S3Location", key: str) -> None:
        self.location = location
        self.key = key
        self.buffer = bytearray()
        self.upload_id: str | None = None
        self.parts: list[concurrent.futures.Future] = []
        self.pool: concurrent.futures.ThreadPoolExecutor | None = None

    def _start(self) -> None:
        response = self.location._call("starting upload of", self.key, self.location.client.create_multipart_upload,
                                       Bucket=self.location.bucket, Key=self.key)
        self.upload_id = response["UploadId"]
        self.pool = concurrent.futures.ThreadPoolExecutor(MAX_PARTS_IN_FLIGHT, thread_name_prefix="s3-part")

    def _send_part(self, data: bytes) -> None:
        if self.upload_id is None:
            self._start()
        assert self.pool is not None
        number = len(self.parts) + 1
        # Bound memory: wait for the oldest part when too many are in flight.
        in_flight = [f for f in self.parts if not f.done()]
        if len(in_flight) >= MAX_PARTS_IN_FLIGHT:
            in_flight[0].result()
        self.parts.append(self.pool.submit(self._upload_part, number, data))

    def _upload_part(self, number: int, data: bytes) -> dict[str, Any]:
        response = self.location._call(
            "uploading", self.key, self.location.client.upload_part, Bucket=self.location.bucket, Key=self.key,
            UploadId=self.upload_id, PartNumber=number, Body=data,
        )
        return {"PartNumber": number, "ETag": response["ETag"]}

    def write(self, data: bytes) -> int:
        self.buffer += data
        while len(self.buffer) >= PART_SIZE:
            chunk = bytes(self.buffer[:PART_SIZE])
            del self.buffer[:PART_SIZE]
            self._send_part(chunk)
        return len(data)

    def commit(self) -> None:
        try:
            if self.upload_id is None:
                self.location._call("storing", self.key, self.location.client.put_object,
                                    Bucket=self.location.bucket, Key=self.key, Body=bytes(self.buffer))
                return
            if self.buffer:
                self._send_part(bytes(self.buffer))
                self.buffer.clear()
            parts = [f.result() for f in self.parts]
            self.location._call("completing upload of", self.key, self.location.client.complete_multipart_upload,
                                Bucket=self.location.bucket, Key=self.key, UploadId=self.upload_id,
                                MultipartUpload={"Parts": parts})
        except BaseException:
            self.abort()
            raise
        finally:
            if self.pool:
                self.pool.shutdown(wait=False)

    def abort(self) -> None:
        if self.pool:
            self.pool.shutdown(wait=True, cancel_futures=True)
        if self.upload_id is not None:
            try:
                self.location.client.abort_multipart_upload(
                    Bucket=self.location.bucket, Key=self.key, UploadId=self.upload_id
                )
            except Exception:  # noqa: BLE001 - best effort; lifecycle rules clean up the rest
                pass
            self.upload_id = None


class _Body(io.RawIOBase):
    """A streaming GET body as a readable binary file."""

    def __init__(self, body: Any) -> None:
        self.body = body

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.body.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self.body.close()
        super().close()


_REQUEST_KINDS = {"ListObjectsV2": "list", "ListObjects": "list", "GetObject": "get", "HeadObject": "head",
                  "PutObject": "put", "CreateMultipartUpload": "put", "UploadPart": "put",
                  "CompleteMultipartUpload": "put", "AbortMultipartUpload": "delete", "DeleteObject": "delete"}


class S3Location:
    def __init__(self, name: str, url: str, bucket: str, prefix: str, *, endpoint_url: str = "",
                 region: str = "", access_key_id: str = "", secret_access_key: str = "") -> None:
        if len(bucket) < 3:
            raise BadInputError(f"location {name}: bucket name {bucket!r} is too short (S3 needs 3+ characters)")
        self.name = name
        self.url = url
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.client = _client(endpoint_url, region, access_key_id, secret_access_key)
        self.requests = RequestCounter()
        # every HTTP request botocore sends (retries and each part of an upload included)
        self.client.meta.events.register("before-send.s3", self._count_request)

    def _count_request(self, event_name: str = "", **_: Any) -> None:
        self.requests.add(_REQUEST_KINDS.get(event_name.rpartition(".")[2], "get"))

    def _key(self, key: str) -> str:
        key = key.strip("/")
        return f"{self.prefix}/{key}" if self.prefix else key

    def _call(self, action: str, key: str, fn: Any, **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return fn(**kwargs)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("PreconditionFailed", "412"):  # a conditional write found the key taken
                raise AlreadyStored(f"location {self.name}: {key} exists already") from None
            raise StorageError(f"location {self.name}: {action} {key} failed: {code or exc}") from None
        except BotoCoreError as exc:
            raise StorageError(f"location {self.name}: {action} {key} failed: {exc}") from None

    def writer(self, key: str) -> _S3Writer:
        return _S3Writer(self, self._key(key))

    def put_bytes(self, key: str, data: bytes) -> None:
        self._call("storing", key, self.client.put_object, Bucket=self.bucket, Key=self._key(key), Body=data)

    def put_new(self, key: str, data: bytes) -> None:
        """A conditional PUT (``If-None-Match: *``): the server refuses it when the key
        exists, so two writers cannot both win. SeaweedFS honours it (checked: a second PUT
        of a key gets 412 PreconditionFailed), as does AWS S3; a server that ignores the
        header overwrites, as a plain PUT would."""
        self._call("storing", key, self.client.put_object, Bucket=self.bucket, Key=self._key(key), Body=data,
                   IfNoneMatch="*")

    def open(self, key: str) -> BinaryIO:
        response = self._call("reading", key, self.client.get_object, Bucket=self.bucket, Key=self._key(key))
        return io.BufferedReader(_Body(response["Body"]), buffer_size=1 << 20)  # type: ignore[return-value]

    def size(self, key: str) -> int | None:
        from botocore.exceptions import ClientError

        try:
            response = self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise StorageError(f"location {self.name}: stat {key} failed: {exc}") from None
        except Exception as exc:  # noqa: BLE001 - connection errors and the like
            raise StorageError(f"location {self.name}: stat {key} failed: {exc}") from None
        return int(response["ContentLength"])

    def list(self, prefix: str, start_after: str = "") -> list[str]:
        base = self._key(prefix) + "/"
        keys: list[str] = []
        token: dict[str, str] = {"StartAfter": self._key(start_after)} if start_after else {}
        strip = len(self.prefix) + 1 if self.prefix else 0
        while True:
            response = self._call("listing", prefix, self.client.list_objects_v2, Bucket=self.bucket,
                                  Prefix=base, Delimiter="/", **token)
            keys.extend(obj["Key"][strip:] for obj in response.get("Contents", []))
            if not response.get("IsTruncated"):
                return sorted(keys)
            token = {"ContinuationToken": response["NextContinuationToken"]}

    def delete(self, key: str) -> None:
        self._call("deleting", key, self.client.delete_object, Bucket=self.bucket, Key=self._key(key))
