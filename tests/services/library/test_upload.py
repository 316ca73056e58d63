"""receive_upload: a request body streamed to a staged file, hashed, capped, and never left half-written."""

from __future__ import annotations

import hashlib
import tracemalloc
from collections.abc import AsyncIterator, Iterable
from pathlib import Path

import pytest

from appliance.errors import PayloadTooLarge, QuotaExceeded, ValidationFailed
from appliance.services.library.upload import boundary_of, receive_upload
from appliance.services.tenancy.quotas import check_storage

BOUNDARY = "----appliance-test-boundary"
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"


class Body:
    """An async request body from chunks, counting how many the receiver pulled."""

    def __init__(self, chunks: Iterable[bytes], fail_after: int | None = None) -> None:
        self.chunks = chunks
        self.pulled = 0
        self.fail_after = fail_after

    async def stream(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            if self.fail_after is not None and self.pulled >= self.fail_after:
                raise ConnectionResetError("client went away")
            self.pulled += 1
            yield chunk


def multipart_body(file: bytes | None, fields: dict[str, str] | None = None, filename: str = "course.zip") -> bytes:
    parts = [
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in (fields or {}).items()
    ]
    if file is not None:
        head = (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
            "Content-Type: application/zip\r\n\r\n"
        )
        parts.append(head.encode() + file + b"\r\n")
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


def split(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


@pytest.fixture
def tmp_dir(tmp_path: Path) -> Path:
    path = tmp_path / "tmp"
    path.mkdir()
    return path


async def test_raw_body_is_streamed_to_a_staged_file_and_hashed(tmp_dir: Path) -> None:
    data = bytes(range(256)) * 10_000  # 2.5 MB, more than one write buffer
    staged = await receive_upload(Body(split(data, 7_777)).stream(), "application/zip", tmp_dir, 10**9)
    assert staged.path.parent == tmp_dir
    assert staged.path.read_bytes() == data
    assert staged.size == len(data)
    assert staged.sha256 == hashlib.sha256(data).hexdigest()
    assert (staged.filename, staged.fields) == (None, {})
    staged.discard()
    staged.discard()  # idempotent
    assert list(tmp_dir.iterdir()) == []


@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 17, 64, 4096])
async def test_multipart_parts_split_anywhere(tmp_dir: Path, chunk: int) -> None:
    file = b"PK\x03\x04" + bytes(range(256)) * 3 + b"\r\n--not-the-boundary\r\n"
    body = multipart_body(file, {"title": "Fire safety — ünïcode"})
    staged = await receive_upload(Body(split(body, chunk)).stream(), MULTIPART, tmp_dir, 10**9)
    assert staged.path.read_bytes() == file
    assert staged.sha256 == hashlib.sha256(file).hexdigest()
    assert staged.filename == "course.zip"
    assert staged.fields == {"title": "Fire safety — ünïcode"}


async def test_fields_after_the_file_are_kept(tmp_dir: Path) -> None:
    body = multipart_body(b"zipdata").removesuffix(f"--{BOUNDARY}--\r\n".encode())
    body += f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="title"\r\n\r\nLate\r\n--{BOUNDARY}--\r\n'.encode()
    staged = await receive_upload(Body([body]).stream(), MULTIPART, tmp_dir, 10**9)
    assert staged.fields == {"title": "Late"}
    assert staged.path.read_bytes() == b"zipdata"


async def test_over_the_maximum_stops_reading_and_leaves_nothing(tmp_dir: Path) -> None:
    body = Body([b"x" * 1000] * 100)
    with pytest.raises(PayloadTooLarge) as raised:
        await receive_upload(body.stream(), "application/zip", tmp_dir, 5000)
    assert raised.value.details == {"limit_bytes": 5000, "received_bytes": 6000}
    assert body.pulled == 6  # nothing read past the chunk that crossed the limit
    assert list(tmp_dir.iterdir()) == []


async def test_multipart_over_the_maximum(tmp_dir: Path) -> None:
    body = Body(split(multipart_body(b"y" * 10_000), 1000))
    with pytest.raises(PayloadTooLarge):
        await receive_upload(body.stream(), MULTIPART, tmp_dir, 5000)
    assert body.pulled < 10
    assert list(tmp_dir.iterdir()) == []


async def test_exactly_the_maximum_is_accepted(tmp_dir: Path) -> None:
    staged = await receive_upload(Body([b"z" * 5000]).stream(), "application/zip", tmp_dir, 5000)
    assert staged.size == 5000


async def test_size_check_stops_the_upload_early(tmp_dir: Path) -> None:
    body = Body([b"q" * 1000] * 100)

    def quota(size: int) -> None:
        check_storage(500, 3500, size)

    with pytest.raises(QuotaExceeded) as raised:
        await receive_upload(body.stream(), "application/zip", tmp_dir, 10**9, check_size=quota)
    assert raised.value.details["used_bytes"] == 500
    assert raised.value.details["limit_bytes"] == 3500
    assert body.pulled == 4
    assert list(tmp_dir.iterdir()) == []


async def test_a_dropped_connection_leaves_nothing(tmp_dir: Path) -> None:
    with pytest.raises(ConnectionResetError):
        await receive_upload(Body([b"a" * 600_000] * 10, fail_after=3).stream(), "application/zip", tmp_dir, 10**9)
    assert list(tmp_dir.iterdir()) == []


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/zip", b""),
        (MULTIPART, multipart_body(b"")),
        (MULTIPART, multipart_body(None, {"title": "no file"})),
        (MULTIPART, multipart_body(b"one").removesuffix(f"--{BOUNDARY}--\r\n".encode()) + multipart_body(b"two")),
        (MULTIPART, multipart_body(b"zip", {"title": "t" * 70_000})),
        (MULTIPART, b"--" + BOUNDARY.encode() + b"\r\nno headers end"),
        (MULTIPART, b"not multipart at all"),
        ("multipart/form-data", multipart_body(b"zip")),
    ],
    ids=["empty", "empty-file", "no-file", "two-files", "huge-field", "truncated", "garbage", "no-boundary"],
)
async def test_bad_bodies_are_validation_errors_and_leave_nothing(
    tmp_dir: Path, content_type: str, body: bytes
) -> None:
    with pytest.raises(ValidationFailed) as raised:
        await receive_upload(Body(split(body, 100) or [b""]).stream(), content_type, tmp_dir, 10**9)
    assert raised.value.details["errors"]
    assert list(tmp_dir.iterdir()) == []


def test_boundary_of() -> None:
    assert boundary_of("application/zip") is None
    assert boundary_of("") is None
    assert boundary_of('multipart/form-data; boundary="abc"') == "abc"
    with pytest.raises(ValidationFailed):
        boundary_of("multipart/form-data")


async def test_memory_stays_constant_whatever_the_size(tmp_dir: Path) -> None:
    chunk = b"m" * 65_536
    total = 512  # 32 MiB through the raw path and again through the multipart parser
    tracemalloc.start()
    try:
        staged = await receive_upload(Body([chunk] * total).stream(), "application/zip", tmp_dir, 10**10)
        _, raw_peak = tracemalloc.get_traced_memory()
        staged.discard()
        tracemalloc.reset_peak()

        async def multipart() -> AsyncIterator[bytes]:
            head = multipart_body(b"").split(b"\r\n--" + BOUNDARY.encode() + b"--")[0]
            yield head
            for _ in range(total):
                yield chunk
            yield f"\r\n--{BOUNDARY}--\r\n".encode()

        staged = await receive_upload(multipart(), MULTIPART, tmp_dir, 10**10)
        _, multipart_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert staged.size == len(chunk) * total
    assert raw_peak < 8 * 1024 * 1024, raw_peak
    assert multipart_peak < 8 * 1024 * 1024, multipart_peak
