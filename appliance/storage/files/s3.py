"""The scale-out file store: one S3-compatible bucket per deployment, one key prefix per tenant.

A file of tenant T at path P is the object `{prefix}tenants/T/P` (`prefix` from the `files` URL,
e.g. `s3://bucket/appliance-prod`), formed only by `base.tenant_key`, so no user-supplied path can name
another tenant's object.

- Writes stream: bytes are gathered into parts of `PART_BYTES` (8 MiB) and each full part is sent as it
  fills, so an upload of any size holds at most one part in memory. A file that ends before the first
  part is full is sent with one PUT. Until `commit` completes the multipart upload nothing exists at
  the key; on any error the upload is aborted, so S3 keeps no orphaned parts (which it would bill).
- Reads are ranged GETs streamed in READ_CHUNK pieces.
- Serving can hand the browser a presigned GET URL of short expiry instead of relaying bytes: S3
  itself then answers Range and If-None-Match with the object's ETag.
- A folder delete lists and deletes in pages of up to 1,000 keys (DeleteObjects' limit), summing the
  listed sizes of the keys S3 confirms deleted: that sum is what the tenant's quota gets back.

boto3 is imported here only: the embedded default never loads it (it is in the `scale` extra).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError

from appliance.errors import ApplianceError
from appliance.storage.files.base import (
    READ_CHUNK,
    Deleted,
    FileMissing,
    FileStat,
    FileStore,
    FileWriter,
    StoredFile,
    check_folder,
    check_path,
    check_tenant_id,
    tenant_folder_key,
    tenant_key,
)

if TYPE_CHECKING:
    from appliance.storage.files.config import S3FilesConfig

PART_BYTES = 8 * 1024 * 1024
DELETE_BATCH = 1000
_MISSING = {"404", "NoSuchKey", "NotFound"}


class ObjectStoreError(ApplianceError):
    """The object store refused or failed an operation the appliance cannot recover from by itself."""


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class _S3Writer(FileWriter):
    """A multipart upload that starts when the first part is full (a single PUT for smaller files)."""

    def __init__(
        self,
        store: S3FileStore,
        key: str,
        path: str,
        max_bytes: int,
        check_size: Callable[[int], None] | None,
        content_type: str | None,
    ) -> None:
        super().__init__(path, max_bytes, check_size)
        self._store = store
        self._key = key
        self._extra: dict[str, Any] = {"ContentType": content_type} if content_type else {}
        self._buffer = bytearray()
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []
        self._done = False

    @property
    def upload_id(self) -> str | None:
        """The multipart upload's id once one was started (for tests and logs)."""
        return self._upload_id

    def _write(self, chunk: bytes) -> None:
        self._buffer += chunk
        while len(self._buffer) >= PART_BYTES:
            part = bytes(self._buffer[:PART_BYTES])
            del self._buffer[:PART_BYTES]
            self._send_part(part)

    def _send_part(self, data: bytes) -> None:
        client, bucket = self._store.client, self._store.bucket
        if self._upload_id is None:
            created = client.create_multipart_upload(Bucket=bucket, Key=self._key, **self._extra)
            self._upload_id = created["UploadId"]
        number = len(self._parts) + 1
        sent = client.upload_part(Bucket=bucket, Key=self._key, UploadId=self._upload_id, PartNumber=number, Body=data)
        self._parts.append({"PartNumber": number, "ETag": sent["ETag"]})

    def commit(self) -> StoredFile:
        if self._done:
            raise RuntimeError("writer already finished")
        client, bucket = self._store.client, self._store.bucket
        if self._upload_id is None:
            etag = client.put_object(Bucket=bucket, Key=self._key, Body=bytes(self._buffer), **self._extra)["ETag"]
        else:
            if self._buffer:
                self._send_part(bytes(self._buffer))
            done = client.complete_multipart_upload(
                Bucket=bucket, Key=self._key, UploadId=self._upload_id, MultipartUpload={"Parts": self._parts}
            )
            etag = done["ETag"]
        self._buffer = bytearray()
        self._done = True
        return StoredFile(self.path, self.size, self.sha256, etag)

    def abort(self) -> None:
        self._done = True
        self._buffer = bytearray()
        if self._upload_id is not None:
            # Best effort: NoSuchUpload (already aborted or completed), or the store unreachable, must
            # not hide why the upload failed. Parts left behind are aborted by the next delete of the
            # folder, or by the bucket's AbortIncompleteMultipartUpload lifecycle rule.
            with contextlib.suppress(ClientError, BotoCoreError):
                self._store.client.abort_multipart_upload(
                    Bucket=self._store.bucket, Key=self._key, UploadId=self._upload_id
                )


class S3FileStore(FileStore):
    """Files as objects in one bucket, under `{prefix}tenants/{tenant_id}/`."""

    def __init__(self, config: S3FilesConfig, *, client: Any | None = None) -> None:
        self.config = config
        self.bucket = config.bucket
        self.prefix = config.prefix
        self.client = client if client is not None else make_client(config)

    def _key(self, tenant_id: str, path: str) -> str:
        return self.prefix + tenant_key(tenant_id, path)

    def create_bucket(self) -> None:
        """Create the bucket if it does not exist (tests, and a first `migrate --s3`)."""
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            if _code(exc) not in _MISSING | {"NoSuchBucket"}:
                raise
            self.client.create_bucket(Bucket=self.bucket)

    def writer(
        self,
        tenant_id: str,
        path: str,
        *,
        max_bytes: int,
        check_size: Callable[[int], None] | None = None,
        content_type: str | None = None,
    ) -> FileWriter:
        key = self._key(tenant_id, path)
        return _S3Writer(self, key, path, max_bytes, check_size, content_type)

    def stat(self, tenant_id: str, path: str) -> FileStat:
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self._key(tenant_id, path))
        except ClientError as exc:
            if _code(exc) in _MISSING:
                raise FileMissing("no such file") from exc
            raise
        return FileStat(path, int(head["ContentLength"]), head["ETag"], head["LastModified"].timestamp())

    def read(self, tenant_id: str, path: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        key = self._key(tenant_id, path)
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if start or end is not None:
            params["Range"] = f"bytes={start}-{'' if end is None else end}"
        try:
            body = self.client.get_object(**params)["Body"]
        except ClientError as exc:
            if _code(exc) in _MISSING:
                raise FileMissing("no such file") from exc
            if _code(exc) == "InvalidRange":  # starts past the end: nothing to read, as from a file
                return iter(())
            raise
        return _stream(body)

    def list(self, tenant_id: str, folder: str = "") -> Iterator[FileStat]:
        base = self.prefix + tenant_folder_key(tenant_id, "")  # checked now, not when iterated
        return (
            FileStat(item["Key"][len(base) :], int(item["Size"]), item["ETag"], item["LastModified"].timestamp())
            for item in self._objects(self.prefix + tenant_folder_key(tenant_id, folder))
        )

    def _objects(self, key_prefix: str) -> Iterator[dict[str, Any]]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=key_prefix)
        for page in pages:
            yield from page.get("Contents", [])

    def delete(self, tenant_id: str, path: str) -> Deleted:
        try:
            size = self.stat(tenant_id, path).size
        except FileMissing:
            return Deleted(0, 0)
        self.client.delete_object(Bucket=self.bucket, Key=self._key(tenant_id, path))
        return Deleted(1, size)

    def delete_folder(self, tenant_id: str, folder: str) -> Deleted:
        check_tenant_id(tenant_id)
        if not check_folder(folder):
            raise ValueError("delete_folder needs a folder: a tenant's whole space is not deleted this way")
        key_prefix = self.prefix + tenant_folder_key(tenant_id, folder)
        self._abort_uploads(key_prefix)
        files = freed = 0
        while True:  # listed afresh each round: what was deleted is gone, what is new is found
            page = self.client.list_objects_v2(Bucket=self.bucket, Prefix=key_prefix, MaxKeys=DELETE_BATCH)
            contents = page.get("Contents", [])
            if not contents:
                return Deleted(files, freed)
            sizes = {item["Key"]: int(item["Size"]) for item in contents}
            answer = self.client.delete_objects(
                Bucket=self.bucket, Delete={"Objects": [{"Key": key} for key in sizes], "Quiet": True}
            )
            failed = {error["Key"] for error in answer.get("Errors", [])}
            for key, size in sizes.items():
                if key not in failed:
                    files, freed = files + 1, freed + size
            if failed:
                raise ObjectStoreError(
                    "the object store did not delete every file",
                    {"deleted_files": files, "deleted_bytes": freed, "failed": sorted(failed)[:10]},
                )

    def abort_unfinished(self, tenant_id: str, folder: str, *, started_before: float) -> int:
        return self._abort_uploads(self.prefix + tenant_folder_key(tenant_id, folder), started_before)

    def _abort_uploads(self, key_prefix: str, started_before: float | None = None) -> int:
        """Abort unfinished multipart uploads under the folder: parts a crashed writer left behind.

        With `started_before`, only those whose newest part arrived before it: a live writer sends a
        part every 8 MiB, so it is never that quiet. An upload without parts holds no bytes and is left
        (to the folder's delete, or the bucket's lifecycle rule); its `Initiated` date is not used
        (moto's server, for one, reports a fixed date). An upload aborted meanwhile by another worker
        (NoSuchUpload) is not an error, and not counted."""
        aborted = 0
        pages = self.client.get_paginator("list_multipart_uploads").paginate(Bucket=self.bucket, Prefix=key_prefix)
        for page in pages:
            for upload in page.get("Uploads", []):
                if started_before is not None and not self._quiet_since(upload, started_before):
                    continue
                with contextlib.suppress(ClientError):
                    self.client.abort_multipart_upload(
                        Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                    )
                    aborted += 1
        return aborted

    def _quiet_since(self, upload: dict[str, Any], cut_off: float) -> bool:
        """Whether an unfinished upload has parts, the newest received before `cut_off`."""
        newest: float | None = None
        try:
            pages = self.client.get_paginator("list_parts").paginate(
                Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
            )
            for page in pages:
                for part in page.get("Parts", []):
                    stamp = part["LastModified"].timestamp()
                    newest = stamp if newest is None else max(newest, stamp)
        except ClientError as exc:
            if _code(exc) == "NoSuchUpload":  # completed or aborted meanwhile
                return False
            raise
        return newest is not None and newest < cut_off

    def signed_url(
        self, tenant_id: str, path: str, *, expires_seconds: int, content_type: str | None = None
    ) -> str | None:
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": self._key(tenant_id, check_path(path))}
        if content_type:
            params["ResponseContentType"] = content_type
        return self.client.generate_presigned_url("get_object", Params=params, ExpiresIn=expires_seconds)


def _stream(body: Any) -> Iterator[bytes]:
    """The GET's body in READ_CHUNK pieces; the connection goes back to the pool however it ends."""
    try:
        yield from body.iter_chunks(READ_CHUNK)
    finally:
        body.close()


def make_client(config: S3FilesConfig) -> Any:
    """A boto3 S3 client for the configured endpoint, region and credentials (None: boto3's own chain:
    AWS_* environment variables, ~/.aws, an instance role)."""
    boto_config = BotoConfig(
        signature_version="s3v4",
        s3={"addressing_style": config.addressing_style},
        connect_timeout=config.connect_timeout_seconds,
        read_timeout=config.read_timeout_seconds,
        retries={"max_attempts": 3, "mode": "standard"},
        max_pool_connections=config.max_connections,  # a streamed response holds one while it lasts
    )
    return boto3.session.Session().client(
        "s3",
        endpoint_url=config.endpoint_url,
        region_name=config.region,
        aws_access_key_id=config.access_key_id,
        aws_secret_access_key=config.secret_access_key,
        config=boto_config,
    )
