"""A backup taken while uploads and runtime commits hit a real server, restored elsewhere and checked.

Two threads drive the server while `scorm-appliance backup` runs in another process: one uploads new
packages, one commits `cmi.core.lesson_location = <seq>` into several learner sessions. Everything the
server acknowledged before the backup started must be in the restored appliance: every package (ready
after the restored server has processed what was still processing, its ZIP's SHA-256 and its files'
SHA-256 equal to the original's) and, for every session, a committed location at least as new as the
last one acknowledged before the backup (and never one that was not sent). The backup's own manifest
is verified with `restore --check`. Traffic is bounded in count and time and stays on 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import io
import subprocess
import threading
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import ServerProcess, appliance_command, clean_env
from tests.e2e.test_package_recovery import wait_for
from tests.faces.api.test_packages import manifest_12
from tests.faces.api.test_sessions import Player

pytestmark = pytest.mark.e2e

SESSIONS = 4
MAX_UPLOADS = 60
MAX_COMMITS = 2_000
WARM_UP = 1.0  # seconds of traffic before the backup starts
COOL_DOWN = 0.5  # seconds of traffic after it ends
TRAFFIC_LIMIT = 60.0  # hard stop for the traffic threads
READY_WAIT = 90.0
LIVE_ENV = {"SCORM_APPLIANCE_LEARNER_REQUESTS_PER_MINUTE": "1000000", "SCORM_APPLIANCE_JOB_POLL_SECONDS": "0.2"}


def course_zip(n: int) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("imsmanifest.xml", manifest_12(f"Course {n}"))
        archive.writestr("index.html", f"<html>course {n}</html>".encode())
        archive.writestr("media/data.bin", hashlib.sha256(str(n).encode()).digest() * 2000)
    return buffer.getvalue()


@dataclass
class Traffic:
    """What the server acknowledged, with the time of each acknowledgement."""

    uploads: list[tuple[float, str, str]] = field(default_factory=list)  # (acked at, package id, zip sha256)
    commits: dict[str, list[tuple[float, int]]] = field(default_factory=dict)  # session id -> (acked at, seq)
    sent: dict[str, int] = field(default_factory=dict)  # session id -> highest seq sent
    errors: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)


def upload_loop(server: ServerProcess, headers: dict[str, str], traffic: Traffic) -> None:
    deadline = time.monotonic() + TRAFFIC_LIMIT
    with server.client(timeout=30.0) as http:
        for n in range(MAX_UPLOADS):
            if traffic.stop.is_set() or time.monotonic() > deadline:
                return
            data = course_zip(n)
            response = http.post(
                "/api/v1/packages", content=data, headers={**headers, "Content-Type": "application/zip"}
            )
            if response.status_code != 202:
                traffic.errors.append(f"upload {n}: {response.status_code} {response.text}")
                return
            traffic.uploads.append((time.time(), response.json()["id"], hashlib.sha256(data).hexdigest()))
            time.sleep(0.05)


def commit_loop(http: httpx.Client, players: dict[str, Player], traffic: Traffic) -> None:
    deadline = time.monotonic() + TRAFFIC_LIMIT
    for round_ in range(1, MAX_COMMITS // len(players) + 1):
        for session_id, player in players.items():
            if traffic.stop.is_set() or time.monotonic() > deadline:
                return
            traffic.sent[session_id] = round_
            response = player.commit({"cmi.core.lesson_location": str(round_)})
            if response.status_code != 200:
                traffic.errors.append(f"commit {session_id} #{round_}: {response.status_code} {response.text}")
                return
            traffic.commits.setdefault(session_id, []).append((time.time(), round_))
        time.sleep(0.005)


def run_thread(target: Callable[..., None], *args: Any) -> threading.Thread:
    thread = threading.Thread(target=target, args=args, daemon=True)
    thread.start()
    return thread


def package_file_hashes(data_dir: Path, package_id: str) -> dict[str, str]:
    [version_dir] = list((data_dir / "tenants").glob(f"*/packages/{package_id}/1"))
    return {
        p.relative_to(version_dir).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(version_dir.rglob("*"))
        if p.is_file()
    }


def wait_all_ready(server: ServerProcess, headers: dict[str, str], package_ids: list[str]) -> None:
    with server.client() as http:

        def all_done() -> bool:
            statuses = [http.get(f"/api/v1/packages/{p}", headers=headers).json()["status"] for p in package_ids]
            assert "failed" not in statuses
            return all(s == "ready" for s in statuses)

        wait_for(f"{len(package_ids)} package(s) to be ready on {server.url}", all_done, READY_WAIT, interval=0.25)


@pytest.mark.sqlite_only(
    reason="`backup` copies the SQLite files (on PostgreSQL the server's own backups are used: docs/scale-out.md)"
)
def test_backup_under_load_restores_everything_acknowledged(
    start_server: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    server = start_server(env=LIVE_ENV)
    server.cli("tenants", "create", "Acme", "--plan", "enterprise")
    key = server.cli("keys", "create", "--tenant", "Acme")
    headers = {"Authorization": f"Bearer {key['key']}"}

    with server.client(timeout=30.0) as http:
        base = http.post(
            "/api/v1/packages", content=course_zip(-1), headers={**headers, "Content-Type": "application/zip"}
        )
        assert base.status_code == 202, base.text
        wait_all_ready(server, headers, [base.json()["id"]])
        players: dict[str, Player] = {}
        for n in range(SESSIONS):
            created = http.post(
                "/api/v1/sessions", json={"package_id": base.json()["id"], "learner": {"id": f"l{n}"}}, headers=headers
            )
            assert created.status_code == 201, created.text
            player = Player(http, created.json(), client_id=f"page-{n}")  # type: ignore[arg-type]
            player.launch()
            players[created.json()["id"]] = player

        traffic = Traffic()
        threads = [run_thread(upload_loop, server, headers, traffic), run_thread(commit_loop, http, players, traffic)]
        time.sleep(WARM_UP)
        backup_started = time.time()
        summary = server.cli("backup", str(tmp_path / "backup"))
        backup_ended = time.time()
        time.sleep(COOL_DOWN)
        traffic.stop.set()
        for thread in threads:
            thread.join(TRAFFIC_LIMIT)
    assert traffic.errors == []

    before = [(pid, digest) for at, pid, digest in traffic.uploads if at < backup_started]
    assert before, "no upload was acknowledged before the backup: the traffic did not run"
    assert any(seqs for seqs in traffic.commits.values())
    assert summary["tenants"][0]["name"] == "Acme"
    checked = server.cli("restore", str(tmp_path / "backup"), "--check")
    assert checked["valid"] is True

    # Restore into a fresh data directory with the CLI, and serve it.
    restored_dir = tmp_path / "restored"
    result = subprocess.run(
        [*appliance_command(), "restore", str(tmp_path / "backup"), "--data-dir", str(restored_dir)],
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    restored = start_server(restored_dir, env=LIVE_ENV)

    # Every package acknowledged before the backup: ready there, the same ZIP, the same files.
    wait_all_ready(server, headers, [pid for _, pid, _ in traffic.uploads])
    wait_all_ready(restored, headers, [pid for pid, _ in before])
    with restored.client() as http:
        for package_id, digest in before:
            version = http.get(f"/api/v1/packages/{package_id}/versions/1", headers=headers).json()
            assert version["upload_sha256"] == digest
            assert package_file_hashes(restored_dir, package_id) == package_file_hashes(server.data_dir, package_id)
        # Packages acknowledged during the backup may or may not be in it; those that are, are whole.
        during = [(pid, d) for at, pid, d in traffic.uploads if backup_started <= at <= backup_ended]
        for package_id, digest in during:
            response = http.get(f"/api/v1/packages/{package_id}/versions/1", headers=headers)
            if response.status_code == 200:
                wait_all_ready(restored, headers, [package_id])
                assert response.json()["upload_sha256"] == digest
        # Uploads acknowledged after the backup ended are not in it.
        for _, package_id, _ in [u for u in traffic.uploads if u[0] > backup_ended + 1.0]:
            assert http.get(f"/api/v1/packages/{package_id}", headers=headers).status_code == 404

        # Every session: a location no older than the last one acknowledged before the backup.
        for session_id, acked in traffic.commits.items():
            last_before = max((seq for at, seq in acked if at < backup_started), default=0)
            session = http.get(f"/api/v1/sessions/{session_id}?include=cmi", headers=headers)
            assert session.status_code == 200, session.text
            location = session.json()["cmi"].get("cmi.core.lesson_location", "")
            found = int(location) if location else 0
            assert last_before <= found <= traffic.sent[session_id], (session_id, last_before, found)
