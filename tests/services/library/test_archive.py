"""Tests for appliance.services.library.archive: every hostile ZIP is built here, with zipfile plus byte patching."""

from __future__ import annotations

import os
import re
import stat
import struct
import unicodedata
import zipfile
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appliance.services.library import archive
from appliance.services.library.archive import (
    ArchiveError,
    ArchiveLimits,
    ExtractResult,
    MemberInfo,
    extract_archive,
    inspect_archive,
    list_names,
)

MiB = 1024 * 1024

# Offsets of fields in a central directory record and in a local file header (APPNOTE 4.3.7 / 4.3.12).
CD_FIELDS = {
    "flags": (8, "<H"),
    "method": (10, "<H"),
    "crc": (16, "<I"),
    "csize": (20, "<I"),
    "usize": (24, "<I"),
    "attr": (38, "<I"),
    "offset": (42, "<I"),
}
LOCAL_FIELDS = {"flags": (6, "<H"), "method": (8, "<H"), "crc": (14, "<I"), "csize": (18, "<I"), "usize": (22, "<I")}


# --- helpers --------------------------------------------------------------------------------------


Entry = tuple[str | zipfile.ZipInfo, bytes]


def make_zip(path: Path, entries: list[Entry], compression: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compression) as zf:
        for name, data in entries:
            zf.writestr(name, data)
    return path


def raw_info(name: str, *, mode: int | None = None) -> zipfile.ZipInfo:
    """A ZipInfo with its name set after construction, so zipfile's NUL truncation does not apply."""
    info = zipfile.ZipInfo("placeholder")
    info.filename = name
    info.create_system = 3
    if mode is not None:
        info.external_attr = mode << 16
    return info


def central_records(data: bytes | bytearray) -> list[int]:
    eocd = data.rfind(b"PK\x05\x06")
    count = struct.unpack_from("<H", data, eocd + 10)[0]
    pos = struct.unpack_from("<I", data, eocd + 16)[0]
    records = []
    for _ in range(count):
        records.append(pos)
        name_len, extra_len, comment_len = struct.unpack_from("<HHH", data, pos + 28)
        pos += 46 + name_len + extra_len + comment_len
    return records


def patch_entry(path: Path, index: int, **fields: int) -> None:
    """Overwrite header fields of entry `index` in both its central record and its local header."""
    data = bytearray(path.read_bytes())
    record = central_records(data)[index]
    local = struct.unpack_from("<I", data, record + 42)[0]
    for field, value in fields.items():
        offset, fmt = CD_FIELDS[field]
        struct.pack_into(fmt, data, record + offset, value)
        if field in LOCAL_FIELDS:
            offset, fmt = LOCAL_FIELDS[field]
            struct.pack_into(fmt, data, local + offset, value)
    path.write_bytes(data)


def replace_bytes(path: Path, old: bytes, new: bytes) -> None:
    assert len(old) == len(new)
    data = path.read_bytes()
    assert data.count(old) == 2  # the local header and the central record
    path.write_bytes(data.replace(old, new))


def zeros_zip(path: Path, name: str, size: int, level: int = 6) -> Path:
    """A deflated member of `size` zero bytes, written in chunks so memory stays small."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=level) as zf, zf.open(name, "w") as out:
        chunk = bytes(min(size, MiB))
        for _ in range(size // len(chunk)):
            out.write(chunk)
    return path


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    """A destination inside an otherwise empty folder, so tests can see that nothing else was written."""
    (tmp_path / "out").mkdir()
    return tmp_path / "out" / "pkg"


def assert_refused(
    zip_path: Path, dest: Path, code: str, reason: str, limits: ArchiveLimits = archive.DEFAULT_LIMITS
) -> ArchiveError:
    with pytest.raises(ArchiveError) as caught:
        extract_archive(zip_path, dest, limits)
    error = caught.value
    assert (error.code, error.details["reason"]) == (code, reason), error.message
    assert not dest.exists()
    assert list(dest.parent.iterdir()) == []
    return error


# --- happy paths ----------------------------------------------------------------------------------


def test_extracts_nested_and_unicode_names(tmp_path: Path, dest: Path) -> None:
    zip_path = make_zip(
        tmp_path / "ok.zip",
        [
            ("imsmanifest.xml", b"<manifest/>"),
            ("content/", b""),
            ("content/pages/intro.html", b"<p>hi</p>" * 100),
            ("content/ünïcødé/日本語.html", "こんにちは".encode()),
            ("content/empty.txt", b""),
            ("__MACOSX/content/._intro.html", b"junk"),
            ("content/.DS_Store", b"junk"),
        ],
    )
    result = extract_archive(zip_path, dest)
    expected = ["imsmanifest.xml", "content/pages/intro.html", "content/ünïcødé/日本語.html", "content/empty.txt"]
    assert result == ExtractResult(files=expected, total_bytes=11 + 900 + 15, file_count=4)
    assert (dest / "content/ünïcødé/日本語.html").read_text() == "こんにちは"
    assert (dest / "content/pages/intro.html").read_bytes() == b"<p>hi</p>" * 100
    assert sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file()) == sorted(expected)
    assert not (dest / "__MACOSX").exists()
    assert list_names(zip_path) == expected


def test_ignores_stored_permissions(tmp_path: Path, dest: Path) -> None:
    zip_path = make_zip(tmp_path / "ok.zip", [(raw_info("run.sh", mode=0o104777), b"#!/bin/sh\n")])
    extract_archive(zip_path, dest)
    mode = (dest / "run.sh").stat().st_mode
    assert stat.S_ISREG(mode)
    assert mode & (stat.S_ISUID | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH) == 0


def test_empty_archive_extracts_nothing(tmp_path: Path, dest: Path) -> None:
    zip_path = make_zip(tmp_path / "empty.zip", [])
    assert inspect_archive(zip_path) == []
    assert extract_archive(zip_path, dest) == ExtractResult(files=[], total_bytes=0, file_count=0)
    assert list(dest.iterdir()) == []


def test_inspect_reports_normalised_members(tmp_path: Path) -> None:
    zip_path = make_zip(tmp_path / "ok.zip", [("dir\\", b""), ("dir\\a.txt", b"abc"), ("./b//c.txt", b"")])
    sizes = [zinfo.compress_size for zinfo in zipfile.ZipFile(zip_path).infolist()]
    assert inspect_archive(zip_path) == [
        MemberInfo("dir", 0, sizes[0], 0, is_dir=True),  # a Windows-style directory entry
        MemberInfo("dir/a.txt", 3, sizes[1], zlib.crc32(b"abc"), is_dir=False),
        MemberInfo("b/c.txt", 0, sizes[2], 0, is_dir=False),
    ]


def test_existing_empty_destination_is_used(tmp_path: Path, dest: Path) -> None:
    dest.mkdir()
    extract_archive(make_zip(tmp_path / "ok.zip", [("a.txt", b"a")]), dest)
    assert (dest / "a.txt").read_bytes() == b"a"


def test_existing_empty_destination_is_removed_on_failure(tmp_path: Path, dest: Path) -> None:
    dest.mkdir()
    assert_refused(make_zip(tmp_path / "bad.zip", [("../x", b"a")]), dest, "UNSAFE_ARCHIVE", "path_traversal")


def test_non_empty_destination_is_a_caller_error(tmp_path: Path, dest: Path) -> None:
    dest.mkdir()
    (dest / "keep.txt").write_text("mine")
    with pytest.raises(ValueError, match="not an empty folder"):
        extract_archive(make_zip(tmp_path / "ok.zip", [("a.txt", b"a")]), dest)
    assert [p.name for p in dest.iterdir()] == ["keep.txt"]


def test_symlinked_destination_is_a_caller_error(tmp_path: Path, dest: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    dest.symlink_to(tmp_path / "elsewhere")
    with pytest.raises(ValueError, match="not an empty folder"):
        extract_archive(make_zip(tmp_path / "ok.zip", [("a.txt", b"a")]), dest)
    assert list((tmp_path / "elsewhere").iterdir()) == []


# --- strip_prefix ---------------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["course", "course/", "/course/"])
def test_strip_prefix_keeps_only_the_prefixed_tree(tmp_path: Path, dest: Path, prefix: str) -> None:
    zip_path = make_zip(
        tmp_path / "wrapped.zip",
        [
            ("course/", b""),
            ("course/imsmanifest.xml", b"<manifest/>"),
            ("course/sco/index.html", b"<html/>"),
            ("__MACOSX/course/._imsmanifest.xml", b"junk"),
            ("readme.txt", b"outside"),
            ("courseware/x.html", b"similar name, not the prefix"),
        ],
    )
    result = extract_archive(zip_path, dest, strip_prefix=prefix)
    assert result.files == ["imsmanifest.xml", "sco/index.html"]
    assert (dest / "sco/index.html").read_bytes() == b"<html/>"
    assert sorted(p.name for p in dest.iterdir()) == ["imsmanifest.xml", "sco"]


@pytest.mark.parametrize("prefix", ["../", "a/../../b", "C:/x", "a\x00b"])
def test_unsafe_strip_prefix_is_a_caller_error(tmp_path: Path, dest: Path, prefix: str) -> None:
    with pytest.raises(ValueError, match="strip_prefix"):
        extract_archive(make_zip(tmp_path / "ok.zip", [("a.txt", b"a")]), dest, strip_prefix=prefix)
    assert not dest.exists()


# --- names ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["../evil", "a/../../evil", "..\\evil", "a\\..\\..\\evil", "a/..", "ok/../inside.txt", "../"]
)
def test_path_traversal_is_refused(tmp_path: Path, dest: Path, name: str) -> None:
    zip_path = make_zip(tmp_path / "bad.zip", [("fine.txt", b"a"), (name, b"evil")])
    error = assert_refused(zip_path, dest, "UNSAFE_ARCHIVE", "path_traversal")
    assert error.details["entry"] == name
    assert name in error.message or repr(name) in error.message
    assert not (tmp_path / "evil").exists()


@pytest.mark.parametrize("name", ["/etc/x", "C:/x", "C:\\x", "c:x", "\\\\host\\share\\x", "//host/share/x"])
def test_absolute_paths_are_refused(tmp_path: Path, dest: Path, name: str) -> None:
    zip_path = make_zip(tmp_path / "bad.zip", [(name, b"evil")])
    assert_refused(zip_path, dest, "UNSAFE_ARCHIVE", "absolute_path")


def test_nul_byte_in_name_is_refused(tmp_path: Path, dest: Path) -> None:
    zip_path = make_zip(tmp_path / "bad.zip", [(raw_info("index.html\x00.exe"), b"x")])
    error = assert_refused(zip_path, dest, "UNSAFE_ARCHIVE", "nul_byte")
    assert error.details["entry"] == "index.html\x00.exe"


def test_control_character_in_name_is_refused(tmp_path: Path, dest: Path) -> None:
    zip_path = make_zip(tmp_path / "bad.zip", [("evil\nname.html", b"x")])
    assert_refused(zip_path, dest, "UNSAFE_ARCHIVE", "control_character")


def test_overlong_names_are_refused(tmp_path: Path, dest: Path) -> None:
    limits = ArchiveLimits(max_name_length=20)
    assert_refused(make_zip(tmp_path / "a.zip", [("a/" * 11, b"")]), dest, "UNSAFE_ARCHIVE", "name_too_long", limits)
    assert_refused(make_zip(tmp_path / "b.zip", [("x" * 256, b"")]), dest, "UNSAFE_ARCHIVE", "name_too_long")


def test_empty_file_name_is_refused(tmp_path: Path, dest: Path) -> None:
    assert_refused(make_zip(tmp_path / "bad.zip", [(raw_info("./."), b"x")]), dest, "UNSAFE_ARCHIVE", "empty_name")


def test_duplicate_names_are_refused(tmp_path: Path, dest: Path) -> None:
    with pytest.warns(UserWarning, match="Duplicate name"):
        zip_path = make_zip(tmp_path / "bad.zip", [("a.html", b"first"), ("a.html", b"second")])
    assert_refused(zip_path, dest, "UNSAFE_ARCHIVE", "duplicate_name")


def test_duplicate_after_normalisation_is_refused(tmp_path: Path, dest: Path) -> None:
    zip_path = make_zip(tmp_path / "bad.zip", [("dir/a.html", b"first"), ("dir\\a.html", b"second")])
    assert_refused(zip_path, dest, "UNSAFE_ARCHIVE", "duplicate_name")


def test_repeated_directory_entries_are_fine(tmp_path: Path, dest: Path) -> None:
    with pytest.warns(UserWarning, match="Duplicate name"):
        zip_path = make_zip(tmp_path / "ok.zip", [("d/", b""), ("d/", b""), ("d/a.txt", b"a")])
    assert extract_archive(zip_path, dest).files == ["d/a.txt"]


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("A.html", "a.html"),
        ("Dir/Page.HTML", "dir/page.html"),
        (unicodedata.normalize("NFC", "café.html"), unicodedata.normalize("NFD", "café.html")),
    ],
)
def test_case_collisions_are_refused(tmp_path: Path, dest: Path, first: str, second: str) -> None:
    zip_path = make_zip(tmp_path / "bad.zip", [(first, b"1"), (second, b"2")])
    error = assert_refused(zip_path, dest, "UNSAFE_ARCHIVE", "case_collision")
    assert (error.details["entry"], error.details["other"]) == (second, first)


def test_differently_cased_folders_with_different_files_are_fine(tmp_path: Path, dest: Path) -> None:
    zip_path = make_zip(tmp_path / "ok.zip", [("Img/a.png", b"a"), ("img/b.png", b"b")])
    assert extract_archive(zip_path, dest).files == ["Img/a.png", "img/b.png"]


@pytest.mark.parametrize("names", [("a", "a/b.html"), ("a/b.html", "a"), ("A", "a/b.html"), ("a", "a/")])
def test_file_and_folder_of_the_same_name_are_refused(tmp_path: Path, dest: Path, names: tuple[str, str]) -> None:
    zip_path = make_zip(tmp_path / "bad.zip", [(names[0], b"1"), (names[1], b"")])
    assert_refused(zip_path, dest, "UNSAFE_ARCHIVE", "path_conflict")


def test_latin1_name_without_utf8_flag_is_decoded_as_cp437(tmp_path: Path, dest: Path) -> None:
    zip_path = make_zip(tmp_path / "latin1.zip", [("cafX.html", b"x")])
    replace_bytes(zip_path, b"cafX.html", "café.html".encode("latin-1"))
    expected = "café.html".encode("latin-1").decode("cp437")  # "cafΘ.html": mojibake, but safe
    assert list_names(zip_path) == [expected]
    assert extract_archive(zip_path, dest).files == [expected]
    assert (dest / expected).read_bytes() == b"x"


def test_utf8_name_without_utf8_flag_is_decoded_as_utf8(tmp_path: Path, dest: Path) -> None:
    zip_path = make_zip(tmp_path / "noflag.zip", [("cafXX.html", b"x")])
    replace_bytes(zip_path, b"cafXX.html", "café.html".encode())
    assert zipfile.ZipFile(zip_path).infolist()[0].flag_bits & 0x800 == 0
    assert extract_archive(zip_path, dest).files == ["café.html"]


def test_cp437_decoded_traversal_is_still_refused(tmp_path: Path, dest: Path) -> None:
    zip_path = make_zip(tmp_path / "bad.zip", [("X./evil", b"x")])
    replace_bytes(zip_path, b"X./evil", b"\x82./evil")  # not UTF-8, so cp437: "é./evil" is fine...
    assert list_names(zip_path) == ["é./evil"]
    zip_path = make_zip(tmp_path / "bad2.zip", [("X/../evil", b"x")])
    replace_bytes(zip_path, b"X/../evil", b"\x82/../evil")  # ...but a '..' component never is
    assert_refused(zip_path, dest, "UNSAFE_ARCHIVE", "path_traversal")


def test_invalid_utf8_under_the_utf8_flag_is_invalid(tmp_path: Path, dest: Path) -> None:
    zip_path = make_zip(tmp_path / "bad.zip", [("café.html", b"x")])
    replace_bytes(zip_path, "é".encode(), b"\xc3\x28")
    assert_refused(zip_path, dest, "INVALID_PACKAGE", "invalid_name_encoding")


# --- entry types ----------------------------------------------------------------------------------


def test_symlink_is_refused(tmp_path: Path, dest: Path) -> None:
    zip_path = make_zip(tmp_path / "bad.zip", [("ok.txt", b"a"), (raw_info("link", mode=0o120777), b"/etc/passwd")])
    error = assert_refused(zip_path, dest, "UNSAFE_ARCHIVE", "symlink")
    assert error.details["entry"] == "link"


def test_symlink_mode_counts_whatever_the_creating_system(tmp_path: Path, dest: Path) -> None:
    info = raw_info("link", mode=0o120777)
    info.create_system = 0  # MS-DOS
    assert_refused(make_zip(tmp_path / "bad.zip", [(info, b"/etc")]), dest, "UNSAFE_ARCHIVE", "symlink")


@pytest.mark.parametrize("mode", [0o010644, 0o020644, 0o060644, 0o140644], ids=["fifo", "chr", "blk", "sock"])
def test_special_files_are_refused(tmp_path: Path, dest: Path, mode: int) -> None:
    zip_path = make_zip(tmp_path / "bad.zip", [(raw_info("dev", mode=mode), b"")])
    assert_refused(zip_path, dest, "UNSAFE_ARCHIVE", "special_file")


def test_encrypted_entries_are_refused(tmp_path: Path, dest: Path) -> None:
    zip_path = make_zip(tmp_path / "bad.zip", [("secret.html", b"x" * 100)])
    patch_entry(zip_path, 0, flags=0x0001)
    assert_refused(zip_path, dest, "UNSAFE_ARCHIVE", "encrypted")


def test_bzip2_is_refused_as_unsupported(tmp_path: Path, dest: Path) -> None:
    zip_path = make_zip(tmp_path / "bz.zip", [("a.html", b"x" * 100)], compression=zipfile.ZIP_BZIP2)
    assert_refused(zip_path, dest, "INVALID_PACKAGE", "unsupported_compression")


# --- limits and bombs -----------------------------------------------------------------------------


def test_classic_zip_bomb_is_refused_before_decompressing(tmp_path: Path, dest: Path) -> None:
    zip_path = zeros_zip(tmp_path / "bomb.zip", "bomb.bin", 200 * MiB)
    assert zip_path.stat().st_size < MiB
    error = assert_refused(zip_path, dest, "UNSAFE_ARCHIVE", "compression_ratio")
    assert error.details["entry"] == "bomb.bin"
    assert error.details["size"] == 200 * MiB


def test_small_members_are_exempt_from_the_member_ratio(tmp_path: Path, dest: Path) -> None:
    zip_path = make_zip(tmp_path / "css.zip", [("style.css", b"a{color:red}" * 40_000)])  # 480 kB, ratio > 200
    assert extract_archive(zip_path, dest).total_bytes == 480_000


def test_whole_archive_ratio_is_checked(tmp_path: Path, dest: Path) -> None:
    chunk = bytes(900 * 1024)  # each member is exempt on its own, together they are a bomb
    zip_path = make_zip(tmp_path / "many.zip", [(f"f{i}.bin", chunk) for i in range(4)])
    error = assert_refused(zip_path, dest, "UNSAFE_ARCHIVE", "compression_ratio")
    assert "entry" not in error.details


def test_lying_header_bomb_is_caught_while_extracting(tmp_path: Path, dest: Path) -> None:
    """Declares 1000 bytes (with the CRC of 1000 zeros) but inflates to 20 MiB: zipfile alone would
    silently return the first 1000 bytes; extraction must notice the extra data and refuse."""
    zip_path = zeros_zip(tmp_path / "liar.zip", "liar.bin", 20 * MiB)
    patch_entry(zip_path, 0, usize=1000, crc=zlib.crc32(bytes(1000)))
    assert inspect_archive(zip_path)[0].size == 1000  # the central directory looks harmless
    error = assert_refused(zip_path, dest, "UNSAFE_ARCHIVE", "size_mismatch")
    assert error.details["entry"] == "liar.bin"


def test_stored_member_longer_than_declared_is_caught(tmp_path: Path, dest: Path) -> None:
    zip_path = make_zip(tmp_path / "liar.zip", [("a.bin", b"x" * 5000)], compression=zipfile.ZIP_STORED)
    patch_entry(zip_path, 0, usize=10, crc=zlib.crc32(b"x" * 10))
    assert_refused(zip_path, dest, "UNSAFE_ARCHIVE", "size_mismatch")


def test_member_shorter_than_declared_is_invalid(tmp_path: Path, dest: Path) -> None:
    zip_path = make_zip(tmp_path / "short.zip", [("a.bin", b"x" * 5000)])
    patch_entry(zip_path, 0, usize=6000)
    with pytest.raises(ArchiveError) as caught:
        extract_archive(zip_path, dest)
    assert caught.value.code == "INVALID_PACKAGE"
    assert caught.value.details["reason"] in {"corrupt", "size_mismatch"}
    assert not dest.exists()


def test_too_many_files(tmp_path: Path, dest: Path) -> None:
    zip_path = make_zip(tmp_path / "many.zip", [(f"f{i}.txt", b"") for i in range(6)])
    assert_refused(zip_path, dest, "UNSAFE_ARCHIVE", "too_many_files", ArchiveLimits(max_files=5))
    assert len(extract_archive(zip_path, dest, ArchiveLimits(max_files=6)).files) == 6


def test_too_many_files_despite_a_lying_end_record(tmp_path: Path, dest: Path) -> None:
    zip_path = make_zip(tmp_path / "many.zip", [(f"f{i}.txt", b"") for i in range(6)])
    data = bytearray(zip_path.read_bytes())
    eocd = data.rfind(b"PK\x05\x06")
    struct.pack_into("<HH", data, eocd + 8, 1, 1)  # entries on this disk / in total
    zip_path.write_bytes(data)
    assert_refused(zip_path, dest, "UNSAFE_ARCHIVE", "too_many_files", ArchiveLimits(max_files=5))


def test_total_size_limit(tmp_path: Path, dest: Path) -> None:
    zip_path = make_zip(tmp_path / "big.zip", [("a.bin", os.urandom(600)), ("b.bin", os.urandom(600))])
    error = assert_refused(zip_path, dest, "UNSAFE_ARCHIVE", "total_size", ArchiveLimits(max_total_uncompressed=1000))
    assert error.details["total_size"] == 1200


def test_member_size_limit(tmp_path: Path, dest: Path) -> None:
    zip_path = make_zip(tmp_path / "big.zip", [("a.bin", os.urandom(600))])
    assert_refused(zip_path, dest, "UNSAFE_ARCHIVE", "member_size", ArchiveLimits(max_member_size=500))


def test_actual_bytes_are_checked_against_the_limits() -> None:
    """Defence in depth behind the declared-size checks: the counters themselves enforce every limit."""
    entry = archive._Entry(MemberInfo("a", 100, 10, 0), zipfile.ZipInfo("a"), "a")
    entry.zinfo.file_size = 100
    limits = ArchiveLimits(max_member_size=50, max_total_uncompressed=80)
    archive._check_written(entry, 40, 0, limits)
    for written, total, reason in [(101, 0, "size_mismatch"), (51, 0, "member_size"), (41, 40, "total_size")]:
        with pytest.raises(ArchiveError) as caught:
            archive._check_written(entry, written, total, limits)
        assert caught.value.details["reason"] == reason


def test_paths_through_a_planted_symlink_are_refused(tmp_path: Path) -> None:
    """Defence in depth: extraction never creates symlinks, but if one were there it must not be followed."""
    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "outside").mkdir()
    (root / "sub").symlink_to(tmp_path / "outside")
    (root / "file").symlink_to(tmp_path / "outside" / "target")
    with pytest.raises(ArchiveError, match="outside the destination"):
        archive._open_target(root, "sub/x.html", "sub/x.html", set())
    with pytest.raises(ArchiveError, match="already extracted"):
        archive._open_target(root, "file", "file", set())
    assert list((tmp_path / "outside").iterdir()) == []


def test_overlapping_entries_are_refused(tmp_path: Path, dest: Path) -> None:
    zip_path = make_zip(tmp_path / "overlap.zip", [("a.bin", b"a" * 1000), ("b.bin", b"b" * 1000)])
    patch_entry(zip_path, 1, offset=0)  # b.bin's record points at a.bin's data
    assert_refused(zip_path, dest, "UNSAFE_ARCHIVE", "overlapping_entries")


# --- not a ZIP / corrupt --------------------------------------------------------------------------


@pytest.mark.parametrize("content", [b"", b"hello, not a zip", b"PK\x03\x04" + bytes(100)])
def test_not_a_zip(tmp_path: Path, dest: Path, content: bytes) -> None:
    path = tmp_path / "upload.zip"
    path.write_bytes(content)
    assert_refused(path, dest, "INVALID_PACKAGE", "not_a_zip")
    with pytest.raises(ArchiveError) as caught:
        list_names(path)
    assert caught.value.code == "INVALID_PACKAGE"


def test_truncated_zip(tmp_path: Path, dest: Path) -> None:
    zip_path = make_zip(tmp_path / "ok.zip", [("a.bin", os.urandom(4000)), ("b.bin", os.urandom(4000))])
    zip_path.write_bytes(zip_path.read_bytes()[:5000])
    assert_refused(zip_path, dest, "INVALID_PACKAGE", "not_a_zip")


def test_bad_crc_removes_files_already_written(tmp_path: Path, dest: Path) -> None:
    zip_path = make_zip(tmp_path / "crc.zip", [("first.html", b"fine"), ("sub/second.html", b"x" * 100)])
    patch_entry(zip_path, 1, crc=zlib.crc32(b"something else"))
    error = assert_refused(zip_path, dest, "INVALID_PACKAGE", "corrupt")
    assert error.details["entry"] == "sub/second.html"


def test_local_header_name_mismatch_is_invalid(tmp_path: Path, dest: Path) -> None:
    zip_path = make_zip(tmp_path / "ok.zip", [("a.html", b"x")])
    data = zip_path.read_bytes()
    zip_path.write_bytes(data.replace(b"a.html", b"b.html", 1))  # only the local header
    assert_refused(zip_path, dest, "INVALID_PACKAGE", "corrupt")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(flips=st.lists(st.tuples(st.integers(min_value=0), st.integers(0, 255)), min_size=1, max_size=4))
def test_corrupted_bytes_never_escape_as_other_errors(tmp_path: Path, flips: list[tuple[int, int]]) -> None:
    """Whatever bytes an upload holds, the outcome is success or ArchiveError, and failures leave nothing."""
    source = tmp_path / "fuzz-source.zip"
    if not source.exists():
        make_zip(source, [("index.html", b"<p>" * 300), ("d/", b""), ("d/s.js", b"var x = 1;")])
    data = bytearray(source.read_bytes())
    for position, value in flips:
        data[position % len(data)] = value
    path = tmp_path / "fuzz.zip"
    path.write_bytes(data)
    out = tmp_path / "fuzz-out"
    try:
        result = extract_archive(path, out)
    except ArchiveError as error:
        assert error.code in {"UNSAFE_ARCHIVE", "INVALID_PACKAGE"}
        assert not out.exists()
    else:
        assert out.is_dir()
        assert all((out / name).is_file() for name in result.files)
        for child in sorted(out.rglob("*"), reverse=True):
            child.unlink() if child.is_file() else child.rmdir()
        out.rmdir()


@given(name=st.text(alphabet=st.sampled_from("ab./\\:C\x00é"), max_size=12))
def test_normalised_names_are_always_safe_relative_paths(name: str) -> None:
    try:
        normalised, _ = archive._normalise_name(name, archive.DEFAULT_LIMITS)
    except ArchiveError as error:
        assert error.code == "UNSAFE_ARCHIVE"
        return
    parts = normalised.split("/") if normalised else []
    assert "\\" not in normalised and "\x00" not in normalised
    assert all(part not in ("", ".", "..") for part in parts)
    assert not normalised.startswith("/") and not re.match("[A-Za-z]:", normalised)
    root = Path("/srv/pkg")
    assert (root / normalised).resolve().is_relative_to(root)
