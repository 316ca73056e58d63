"""The data directory's scratch space (appliance.storage.datadir): emptied at a start only when no other
process uses the directory, since several workers may share one (scale-out with shared files)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from appliance.storage.datadir import DataDir

HOLDER = """
import sys, time
from pathlib import Path
from appliance.storage.datadir import DataDir
lease = DataDir(Path(sys.argv[1])).clean_tmp()
print("holding", flush=True)
time.sleep(60)
"""


def leftover(data: DataDir, name: str) -> Path:
    data.tmp.mkdir(parents=True, exist_ok=True)
    path = data.tmp / name
    path.write_bytes(b"x" * 10)
    return path


def test_a_start_alone_empties_tmp(tmp_path: Path) -> None:
    data = DataDir(tmp_path / "data")
    crashed = leftover(data, "upload-crashed.part")
    lease = data.clean_tmp()
    try:
        assert not crashed.exists() and data.tmp.is_dir()
    finally:
        data.release_tmp(lease)


def test_a_start_beside_a_live_worker_keeps_its_uploads(tmp_path: Path) -> None:
    """Another process holds the data directory: its upload in flight survives a second worker's start;
    once it has gone, the next start alone empties tmp/."""
    data = DataDir(tmp_path / "data")
    root = Path(__file__).resolve().parents[2]
    with subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(data.root)], stdout=subprocess.PIPE, text=True, cwd=root
    ) as holder:
        try:
            assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
            in_flight = leftover(data, "upload-in-flight.part")
            second = data.clean_tmp()
            assert in_flight.exists()  # the live worker's file is left alone
            data.release_tmp(second)
        finally:
            holder.kill()
            holder.wait(timeout=10)
    lease = data.clean_tmp()  # the holder is gone, and its lock with it: alone again
    try:
        assert not in_flight.exists()
    finally:
        data.release_tmp(lease)


def test_two_holders_in_one_process_are_two_users(tmp_path: Path) -> None:
    """Two apps on one data directory in one process (as tests and `serve` reloads make) count as two."""
    data = DataDir(tmp_path / "data")
    first = data.clean_tmp()
    try:
        kept = leftover(data, "extract-pkg-1")
        second = data.clean_tmp()
        assert kept.exists()
        data.release_tmp(second)
    finally:
        data.release_tmp(first)
    third = data.clean_tmp()
    assert not kept.exists()
    data.release_tmp(third)
