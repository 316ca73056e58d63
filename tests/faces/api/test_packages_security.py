"""Hostile packages, built here, through the real upload route: each is refused with a specific code and
leaves nothing on disk (no package folder, no waiting ZIP, nothing in tmp/), and nothing of the host leaks.
"""

from __future__ import annotations

import dataclasses
import io
import stat
import struct
import warnings
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from appliance.config import Config
from tests.conftest import TenantKey
from tests.core.scorm.manifests import billion_laughs
from tests.faces.api.test_packages import (
    API,
    assert_error,
    assert_nothing_stored,
    drain,
    make_client,
    manifest_12,
    package_bytes,
    stored_files,
    upload_raw,
)

MANIFEST = manifest_12()
INDEX = b"<html>ok</html>"


def zip_of(entries: list[tuple[zipfile.ZipInfo | str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        warnings.simplefilter("ignore", UserWarning)  # "Duplicate name": writing one is the point of a test
        for info, content in entries:
            archive.writestr(info, content)
    return buffer.getvalue()


def entry(name: str, *, mode: int | None = None) -> zipfile.ZipInfo:
    """A ZipInfo kept exactly as given (zipfile's writestr does not sanitise a ZipInfo's name)."""
    info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    if mode is not None:
        info.external_attr = mode << 16
        info.create_system = 3  # Unix
    return info


def with_course(*extra: tuple[zipfile.ZipInfo | str, bytes]) -> bytes:
    """A valid package plus the hostile entries."""
    return zip_of([("imsmanifest.xml", MANIFEST), ("index.html", INDEX), *extra])


def set_utf8_name(data: bytes, old: bytes, new: bytes) -> bytes:
    """Rewrite one entry name (same length) in both headers and set its UTF-8 flag (bit 11)."""
    assert len(old) == len(new) and data.count(old) == 2
    patched = bytearray(data.replace(old, new))
    for signature, flag_offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        start = 0
        while (at := patched.find(signature, start)) != -1:
            name_len_offset = 26 if signature == b"PK\x03\x04" else 28
            name_len = struct.unpack_from("<H", patched, at + name_len_offset)[0]
            name_start = at + (30 if signature == b"PK\x03\x04" else 46)
            if bytes(patched[name_start : name_start + name_len]) == new:
                flags = struct.unpack_from("<H", patched, at + flag_offset)[0]
                struct.pack_into("<H", patched, at + flag_offset, flags | 0x0800)
            start = at + 4
    return bytes(patched)


@pytest.fixture
def api(config: Config) -> Iterator[TestClient]:
    with make_client(config) as client:
        yield client


def process(client: TestClient, who: TenantKey, data: bytes) -> dict[str, Any]:
    """Upload (202), run processing, and return the failed package."""
    created = upload_raw(client, who, data)
    assert created.status_code == 202, created.text
    drain(client)
    package = client.get(f"{API}/{created.json()['id']}", headers=who.headers).json()
    assert package["status"] == "failed", package
    assert package["active_version"] is None
    assert package["error"]["message"]
    return package


HOSTILE_ARCHIVES = {
    "path-traversal": (with_course((entry("../evil.html"), b"x")), "path_traversal"),
    "nested-traversal": (with_course((entry("content/../../evil.html"), b"x")), "path_traversal"),
    "backslash-traversal": (with_course((entry("..\\evil.html"), b"x")), "path_traversal"),
    "absolute-path": (with_course((entry("/etc/cron.d/evil"), b"x")), "absolute_path"),
    "windows-drive": (with_course((entry("C:\\Windows\\evil.dll"), b"x")), "absolute_path"),
    "symlink": (with_course((entry("passwd", mode=stat.S_IFLNK | 0o777), b"/etc/passwd")), "symlink"),
    "symlinked-folder": (
        with_course((entry("assets", mode=stat.S_IFLNK | 0o777), b"/etc"), (entry("assets/x.css"), b"x")),
        "symlink",
    ),
    "device": (with_course((entry("dev", mode=stat.S_IFCHR | 0o666), b"")), "special_file"),
    "fifo": (with_course((entry("pipe", mode=stat.S_IFIFO | 0o666), b"")), "special_file"),
    # zipfile cuts a name at NUL when writing, so the byte is put in afterwards.
    "nul-in-name": (with_course((entry("index.htmlX.exe"), b"x")).replace(b"index.htmlX", b"index.html\0"), "nul_byte"),
    "case-collision": (with_course((entry("Index.html"), b"other")), "case_collision"),
    "duplicate-name": (with_course((entry("index.html"), b"second")), "duplicate_name"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE_ARCHIVES))
def test_hostile_archive_entries(api: TestClient, acme: TenantKey, config: Config, name: str) -> None:
    data, reason = HOSTILE_ARCHIVES[name]
    package = process(api, acme, data)
    assert package["error"]["code"] == "UNSAFE_ARCHIVE"
    assert package["error"]["details"]["reason"] == reason
    assert_nothing_stored(config, acme.tenant_id)
    assert package_bytes(config, acme.tenant_id) == 0
    assert not (config.data_dir.parent / "evil.html").exists()


def zip_bomb(uncompressed_mb: int) -> bytes:
    """One member of zeros: deflate shrinks it about 1000:1 (built in 1 MB writes)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("imsmanifest.xml", MANIFEST)
        archive.writestr("index.html", INDEX)
        with archive.open("video.mp4", "w") as member:
            block = b"\0" * (1024 * 1024)
            for _ in range(uncompressed_mb):
                member.write(block)
    return buffer.getvalue()


def test_zip_bomb_is_refused_by_its_ratio(api: TestClient, acme: TenantKey, config: Config) -> None:
    data = zip_bomb(200)
    assert len(data) < 1024 * 1024
    package = process(api, acme, data)
    assert package["error"]["code"] == "UNSAFE_ARCHIVE"
    details = package["error"]["details"]
    assert details["reason"] == "compression_ratio"
    assert details["size"] == 200 * 1024 * 1024
    assert_nothing_stored(config, acme.tenant_id)


def test_size_and_count_limits(config: Config, acme: TenantKey) -> None:
    limited = dataclasses.replace(config, max_package_files=10, max_uncompressed_bytes=100_000)
    many = with_course(*[(f"page{n}.html", b"x") for n in range(20)])
    big = with_course(("a.bin", bytes(range(256)) * 200), ("b.bin", bytes(range(256)) * 200))  # 51 kB each
    with make_client(limited) as client:
        assert process(client, acme, many)["error"]["details"]["reason"] == "too_many_files"
        failed = process(client, acme, big)
        assert (failed["error"]["code"], failed["error"]["details"]["reason"]) == ("UNSAFE_ARCHIVE", "total_size")
    assert_nothing_stored(config, acme.tenant_id)


# -- hostile manifests -----------------------------------------------------------------------------

BILLION_LAUGHS = billion_laughs(manifest_12(title="&lol9;").split(b"?>", 1)[1])


def xxe_manifest(doctype: str) -> bytes:
    return b'<?xml version="1.0"?>\n' + doctype.encode() + b"\n" + manifest_12(title="&xxe;").split(b"?>", 1)[1]


XXE_MANIFESTS = {
    "billion-laughs": BILLION_LAUGHS,
    "xxe-file": xxe_manifest('<!DOCTYPE manifest [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'),
    "xxe-parameter-entity": xxe_manifest(
        '<!DOCTYPE manifest [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p; <!ENTITY xxe "x">]>'
    ),
    "external-dtd": xxe_manifest('<!DOCTYPE manifest SYSTEM "http://127.0.0.1:9/evil.dtd"><!-- &xxe; -->').replace(
        b"&xxe;", b"Course"
    ),
}


def secrets_of_the_host() -> list[bytes]:
    """Lines of /etc/passwd that an entity expansion would copy into the manifest."""
    passwd = Path("/etc/passwd")
    return [line for line in passwd.read_bytes().splitlines() if line.strip()][:3] if passwd.exists() else []


def all_stored_bytes(config: Config) -> bytes:
    """Every byte of every file in the data directory (databases and their WAL files included)."""
    return b"".join(p.read_bytes() for p in sorted(config.data_dir.rglob("*")) if p.is_file())


@pytest.mark.parametrize("name", sorted(XXE_MANIFESTS))
def test_manifests_with_a_dtd_are_refused_and_nothing_leaks(
    api: TestClient, acme: TenantKey, config: Config, name: str
) -> None:
    data = zip_of([("imsmanifest.xml", XXE_MANIFESTS[name]), ("index.html", INDEX)])
    package = process(api, acme, data)
    assert package["error"]["code"] == "MANIFEST_INVALID"
    assert_nothing_stored(config, acme.tenant_id)
    visible = api.get(f"{API}/{package['id']}/versions/1", headers=acme.headers).text + str(package)
    stored = all_stored_bytes(config)
    for line in secrets_of_the_host():
        assert line.decode(errors="replace") not in visible
        assert line not in stored
    assert b"lollollol" not in stored


def test_validate_refuses_entities_too(api: TestClient, acme: TenantKey, config: Config) -> None:
    data = zip_of([("imsmanifest.xml", XXE_MANIFESTS["xxe-file"]), ("index.html", INDEX)])
    report = api.post(f"{API}/validate", content=data, headers={**acme.headers, "Content-Type": "application/zip"})
    assert report.status_code == 200, report.text
    assert (report.json()["valid"], report.json()["error"]["code"]) == (False, "MANIFEST_INVALID")
    for line in secrets_of_the_host():
        assert line.decode(errors="replace") not in report.text
    assert_nothing_stored(config, acme.tenant_id)


def huge_manifest_zip(total_mb: int) -> bytes:
    """A well-formed manifest padded with a comment to `total_mb` MiB, streamed into the ZIP."""
    head, tail = MANIFEST.split(b"<organizations", 1)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        with archive.open("imsmanifest.xml", "w") as member:
            member.write(head + b"<!--")
            block = b"padding " * (1024 * 128)  # 1 MiB
            for _ in range(total_mb):
                member.write(block)
            member.write(b"--><organizations" + tail)
        archive.writestr("index.html", INDEX)
    return buffer.getvalue()


def test_a_50_mb_manifest_is_refused(config: Config, acme: TenantKey) -> None:
    data = huge_manifest_zip(50)
    assert len(data) < 1024 * 1024  # compresses well: the ratio limit is set aside so the manifest check fails
    relaxed = dataclasses.replace(config, max_compression_ratio=1_000_000)
    with make_client(relaxed) as client:
        package = process(client, acme, data)
    assert package["error"]["code"] == "MANIFEST_INVALID"
    assert package["error"]["details"]["limit_bytes"] == relaxed.max_manifest_bytes
    assert package["error"]["details"]["size"] > 50 * 1024 * 1024
    assert_nothing_stored(config, acme.tenant_id)


def test_a_50_mb_manifest_under_default_limits(api: TestClient, acme: TenantKey, config: Config) -> None:
    """With the default ratio limit, such a manifest is first of all a zip bomb."""
    package = process(api, acme, huge_manifest_zip(50))
    assert (package["error"]["code"], package["error"]["details"]["reason"]) == ("UNSAFE_ARCHIVE", "compression_ratio")
    assert package["error"]["details"]["entry"] == "imsmanifest.xml"
    assert_nothing_stored(config, acme.tenant_id)


# -- names that are not UTF-8 ----------------------------------------------------------------------


def test_latin1_names_without_the_utf8_flag_are_read_as_cp437(api: TestClient, acme: TenantKey, config: Config) -> None:
    """archive.py: a flagless name whose bytes are not UTF-8 is decoded as cp437, as the ZIP spec says."""
    placeholder = "cafX.html"
    data = with_course((entry(placeholder), b"latin-1 named asset"))
    data = data.replace(placeholder.encode(), "café.html".encode("latin-1"))  # same length, flag not set
    created = upload_raw(api, acme, data)
    assert created.status_code == 202, created.text
    drain(api)
    package = api.get(f"{API}/{created.json()['id']}", headers=acme.headers).json()
    assert package["status"] == "ready", package
    assert package["file_count"] == 3
    expected = b"caf\xe9.html".decode("cp437")  # "cafΘ.html"
    assert f"packages/{package['id']}/1/{expected}" in stored_files(config, acme.tenant_id)


def test_utf8_names_without_the_flag_are_read_as_utf8(api: TestClient, acme: TenantKey, config: Config) -> None:
    placeholder = "cafXX.html"
    data = with_course((entry(placeholder), b"utf-8 named asset"))
    data = data.replace(placeholder.encode(), "café.html".encode())  # é is two bytes in UTF-8
    created = upload_raw(api, acme, data)
    drain(api)
    package = api.get(f"{API}/{created.json()['id']}", headers=acme.headers).json()
    assert package["status"] == "ready", package
    assert f"packages/{package['id']}/1/café.html" in stored_files(config, acme.tenant_id)


def test_a_name_flagged_utf8_that_is_not_is_an_invalid_package(
    api: TestClient, acme: TenantKey, config: Config
) -> None:
    placeholder = b"cafX.html"
    data = with_course((entry(placeholder.decode()), b"x"))
    data = set_utf8_name(data, placeholder, b"caf\xff.html")
    body = assert_error(upload_raw(api, acme, data), 422, "INVALID_PACKAGE")
    assert body["details"]["reason"] == "invalid_name_encoding"
    assert api.get(API, headers=acme.headers).json()["data"] == []
    assert_nothing_stored(config, acme.tenant_id)


def test_a_truncated_zip_is_an_invalid_package(api: TestClient, acme: TenantKey, config: Config) -> None:
    data = with_course()
    assert_error(upload_raw(api, acme, data[: len(data) // 2]), 422, "INVALID_PACKAGE")
    assert_error(upload_raw(api, acme, data[:-10]), 422, "INVALID_PACKAGE")
    assert_nothing_stored(config, acme.tenant_id)
