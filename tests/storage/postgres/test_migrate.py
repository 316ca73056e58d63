"""`scorm-appliance migrate`: a data directory made by using the appliance, moved onto PostgreSQL and moto's S3,
verified, and then served from PostgreSQL.

The data directory is built once per module through the real app on SQLite (two tenants, a package of
the SCORM corpus uploaded and processed, a second package, sessions with CMI data and interactions, a
suspended session, a webhook, xAPI statements and a state document, API keys, queued jobs) and copied
for each test. Each test gets a freshly installed schema with its own roles, and a bucket of its own on
the session's moto server.
"""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import apsw
import psycopg
import pytest
from click.testing import CliRunner
from litestar.testing import TestClient
from psycopg import sql as pgsql

from appliance.config import Config
from appliance.faces.app import create_app
from appliance.faces.cli import cli
from appliance.storage.files.config import S3FilesConfig
from appliance.storage.files.s3 import S3FileStore
from appliance.storage.postgres.schema import create_roles, install
from tests.conftest import CORPUS, make_tenant_key
from tests.faces.api.test_packages import drain, make_client, upload_raw, upload_ready
from tests.faces.api.test_sessions import Player, create, package_12
from tests.faces.api.xapi.conftest import make_lrs_client
from tests.moto_s3 import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY, MotoS3, moto_s3, s3_bucket  # noqa: F401
from tests.storage.postgres.conftest import ADMIN, PgSchema

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test?connect_timeout=3"
CORPUS_PACKAGE = CORPUS / "packages" / "moodle-singlesco_scorm12.zip"
SUSPEND_DATA = "chapter=3;answers=a,b,,d;" + "x" * 3000  # long enough to span the row's text on both sides
VERB = "http://adlnet.gov/expapi/verbs/experienced"


@dataclass
class Built:
    """The module's data directory and what the tests look for in it."""

    root: Path
    acme: Any
    globex: Any
    lrs: Any
    package_id: str
    suspended_id: str
    suspended: dict[str, Any]  # the session as created, with the launch URL handed out before the move
    statement_ids: list[str]
    pending_id: str  # a package whose upload waits for its processing job (its ZIP under uploads/)


def _statement(who: str, activity: str) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "actor": {"objectType": "Agent", "mbox": f"mailto:{who}@example.com"},
        "verb": {"id": VERB, "display": {"en-US": "experienced"}},
        "object": {"objectType": "Activity", "id": activity},
    }


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """Use the appliance on SQLite until its data directory holds a bit of everything."""
    if not CORPUS_PACKAGE.is_file():
        pytest.skip(f"the SCORM corpus is not at {CORPUS} (CI always has it)")
    root = tmp_path_factory.mktemp("migrate") / "data"
    config = Config(data_dir=root)
    acme, globex = make_tenant_key(config, "Acme"), make_tenant_key(config, "Globex")
    lrs = make_lrs_client(config, globex.tenant_id)
    with make_client(config) as api:
        package = upload_ready(api, acme, CORPUS_PACKAGE.read_bytes())
        other = upload_ready(api, globex, package_12())
        # a suspended attempt, resumable, with its location and suspend data
        suspended = create(api, acme, package["id"], learner="learner-1").json()
        player = Player(api, suspended)
        player.launch()
        ok = player.commit(
            {
                "cmi.core.lesson_location": "page-7",
                "cmi.suspend_data": SUSPEND_DATA,
                "cmi.core.lesson_status": "incomplete",
                "cmi.core.score.raw": "40",
                "cmi.interactions.0.id": "q1",
                "cmi.interactions.0.type": "choice",
                "cmi.interactions.0.student_response": "a",
                "cmi.interactions.0.result": "correct",
            }
        )
        assert ok.status_code == 200, ok.text
        done = player.commit({"cmi.core.exit": "suspend", "cmi.core.session_time": "00:02:30"}, terminate=True)
        assert done.status_code == 200, done.text
        # a finished attempt of another learner, and one on the other tenant
        finished = Player(api, create(api, acme, package["id"], learner="learner-2").json())
        finished.launch()
        finished.commit({"cmi.core.lesson_status": "passed", "cmi.core.score.raw": "91"}, terminate=True)
        theirs = Player(api, create(api, globex, other["id"], learner="g-1").json())
        theirs.launch()
        theirs.commit({"cmi.core.lesson_status": "failed"}, terminate=True)
        hook = api.post(
            "/api/v1/webhooks", json={"url": "https://example.org/hook", "events": ["*"]}, headers=acme.headers
        )
        assert hook.status_code == 201, hook.text
        statements = [_statement(f"ann{n}", f"http://example.com/a/{n}") for n in range(5)]
        sent = api.post(
            "/xapi/statements",
            content=json.dumps(statements),
            headers={**lrs.headers, "Content-Type": "application/json"},
        )
        assert sent.status_code == 200, sent.text
        state = {"activityId": "http://example.com/a/0", "agent": json.dumps(statements[0]["actor"]), "stateId": "s1"}
        put = api.put(
            "/xapi/activities/state",
            params=state,
            content=bytes(range(256)),
            headers={**lrs.headers, "Content-Type": "application/octet-stream"},
        )
        assert put.status_code == 204, put.text
        drain(api)
        pending = upload_raw(api, globex, package_12())  # not processed: its job stays queued
        assert pending.status_code == 202, pending.text
    ids = [s["id"] for s in statements]
    return Built(root, acme, globex, lrs, package["id"], suspended["id"], suspended, ids, pending.json()["id"])


@pytest.fixture
def data_dir(built: Built, tmp_path: Path) -> Path:
    """A copy of the module's data directory for this test to migrate."""
    target = tmp_path / "data"
    shutil.copytree(built.root, target)
    return target


@pytest.fixture
def schema() -> Iterator[PgSchema]:
    """A freshly installed schema with its two roles, dropped after the test."""
    suffix = secrets.token_hex(4)
    found = PgSchema(f"t_migrate_{suffix}", f"t_migrate_owner_{suffix}", f"t_migrate_app_{suffix}")
    try:
        admin = psycopg.connect(ADMIN, autocommit=True)
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL is not reachable at 127.0.0.1:5432 ({exc})")
    try:
        create_roles(admin, owner=found.owner, app_role=found.app_role)
        install(admin, found.schema, owner=found.owner, app_role=found.app_role, now=1_700_000_000.0)
        yield found
    finally:
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (found.app_role,))
        admin.execute(pgsql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(pgsql.Identifier(found.schema)))
        for role in (found.app_role, found.owner):
            admin.execute(pgsql.SQL("DROP ROLE IF EXISTS {}").format(pgsql.Identifier(role)))
        admin.close()


@pytest.fixture
def admin(schema: PgSchema) -> Iterator[psycopg.Connection]:
    """The superuser on the test's schema (it passes row-level security: to look and to tamper)."""
    conn = psycopg.connect(ADMIN, autocommit=True)
    conn.execute(pgsql.SQL("SET search_path TO {}").format(pgsql.Identifier(schema.schema)))
    yield conn
    conn.close()


@pytest.fixture
def s3_env(moto_s3: MotoS3, monkeypatch: pytest.MonkeyPatch) -> MotoS3:  # noqa: F811
    """The files_* settings the migration reads for the object store, in the environment."""
    monkeypatch.setenv("SCORM_APPLIANCE_FILES_ENDPOINT", moto_s3.endpoint_url)
    monkeypatch.setenv("SCORM_APPLIANCE_FILES_REGION", REGION)
    monkeypatch.setenv("SCORM_APPLIANCE_FILES_ACCESS_KEY_ID", ACCESS_KEY_ID)
    monkeypatch.setenv("SCORM_APPLIANCE_FILES_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY)
    return moto_s3


def run(data_dir: Path, schema: PgSchema, *extra: str) -> Any:
    """`scorm-appliance migrate` through click's runner."""
    args = ["migrate", "--data-dir", str(data_dir), "--to", ADMIN_URL, "--schema", schema.schema, *extra]
    return CliRunner().invoke(cli, args, catch_exceptions=False)


def store_of(moto: MotoS3, bucket: str) -> S3FileStore:
    return S3FileStore(
        S3FilesConfig(bucket=bucket, prefix="prod/", endpoint_url=moto.endpoint_url, addressing_style="path"),
        client=moto.client(),
    )


def pg_config(data_dir: Path, schema: PgSchema) -> Config:
    """The appliance on the migrated schema, as the application role (the workers' `database` setting)."""
    url = f"postgresql://{schema.app_role}@127.0.0.1:5432/test?connect_timeout=3"
    return Config(data_dir=data_dir).with_overrides({"database": url, "database_schema": schema.schema})


def _local_files(root: Path) -> dict[str, bytes]:
    found = {}
    for tenant in (root / "tenants").iterdir():
        for folder in ("packages", "uploads"):
            for path in sorted((tenant / folder).rglob("*")) if (tenant / folder).is_dir() else []:
                if path.is_file():
                    found[f"{tenant.name}/{path.relative_to(tenant).as_posix()}"] = path.read_bytes()
    return found


def test_migrate_verifies_and_the_appliance_resumes_on_postgresql(
    built: Built,
    data_dir: Path,
    schema: PgSchema,
    admin: psycopg.Connection,
    s3_env: MotoS3,
    s3_bucket: str,  # noqa: F811
) -> None:
    result = run(data_dir, schema, "--s3", f"s3://{s3_bucket}/prod", "--batch-rows", "2")
    assert result.exit_code == 0, result.output
    assert "Verification passed." in result.output
    assert "MISMATCH" not in result.output
    again = run(data_dir, schema, "--s3", f"s3://{s3_bucket}/prod", "--verify-only", "--json")
    assert again.exit_code == 0, again.output
    report = json.loads(again.output)
    assert report["ok"] is True
    assert report["files"]["verified"] is True and report["files"]["problems"] == []
    per_table = {(t["unit"], t["table"]): t for t in report["tables"]["per_table"]}
    acme, globex = built.acme.tenant_id, built.globex.tenant_id
    assert per_table[("registry", "tenants")]["target_rows"] == 2
    assert per_table[("registry", "api_keys")]["target_rows"] == 2
    assert per_table[(acme, "sessions")]["target_rows"] == 2
    assert per_table[(globex, "sessions")]["target_rows"] == 1
    assert per_table[(globex, "xapi_statements")]["target_rows"] >= 5
    assert per_table[(globex, "xapi_documents")]["target_rows"] == 1
    assert per_table[(acme, "webhooks")]["target_rows"] == 1
    assert per_table[(acme, "interaction_stats")]["target_rows"] == 1  # the derived rows: the source's, once
    assert per_table[(acme, "events")]["target_rows"] > 0
    # every package file is in the bucket with the same bytes
    store = store_of(s3_env, s3_bucket)
    local = _local_files(data_dir)
    assert any(path.startswith(f"{acme}/packages/{built.package_id}/") for path in local)
    assert len(local) >= 40  # the corpus package's 46 files and the second package's
    for path, data in local.items():
        tenant_id, _, rel = path.partition("/")
        assert store.read_bytes(tenant_id, rel) == data
    # the identity counters were moved past the copied rows
    highest_event = admin.execute("SELECT max(seq) FROM events").fetchone()[0]
    highest_statement = admin.execute("SELECT max(seq) FROM xapi_statements").fetchone()[0]
    cmi = admin.execute("SELECT cmi FROM session_activities WHERE session_id = %s", (built.suspended_id,)).fetchone()
    assert SUSPEND_DATA in cmi[0]

    # the appliance on PostgreSQL: the key works, the suspended session resumes where it was
    with TestClient(create_app(pg_config(data_dir, schema), start_scheduler=False)) as api:
        assert api.get("/api/v1/tenant", headers=built.acme.headers).status_code == 200
        assert api.get("/api/v1/tenant", headers=built.globex.headers).json()["id"] == globex
        resumed = create(api, built.acme, built.package_id, learner="learner-1")
        assert resumed.status_code == 200, resumed.text
        assert resumed.json()["id"] == built.suspended_id
        player = Player(api, resumed.json(), client_id="page-after-move")
        player.launch()
        assert player.cmi["cmi.core.entry"] == "resume"
        assert player.cmi["cmi.core.lesson_location"] == "page-7"
        assert player.cmi["cmi.suspend_data"] == SUSPEND_DATA
        assert player.commit({"cmi.core.lesson_location": "page-8"}).status_code == 200
        # the launch URL handed out before the move still opens the session (its signing secret moved too)
        before = Player(api, built.suspended, client_id="page-old-link")
        before.launch()
        assert before.cmi["cmi.core.lesson_location"] == "page-8"
        fresh = create(api, built.acme, built.package_id, learner="learner-3")
        assert fresh.status_code == 201, fresh.text
        assert fresh.json()["id"] not in (built.suspended_id,)
        sent = api.post(
            "/xapi/statements",
            content=json.dumps(_statement("after", "http://example.com/after")),
            headers={**built.lrs.headers, "Content-Type": "application/json"},
        )
        assert sent.status_code == 200, sent.text
        new_id = sent.json()[0]
        got = api.get("/xapi/statements", params={"statementId": built.statement_ids[0]}, headers=built.lrs.headers)
        assert got.status_code == 200 and got.json()["id"] == built.statement_ids[0]
    assert admin.execute("SELECT min(seq) FROM events WHERE seq > %s", (highest_event,)).fetchone()[0] is not None
    new_seq = admin.execute("SELECT seq FROM xapi_statements WHERE id = %s", (new_id,)).fetchone()[0]
    assert new_seq > highest_statement
    assert admin.execute("SELECT count(*) FROM xapi_statements").fetchone()[0] >= 6


def test_a_tampered_row_or_file_fails_the_verification(
    data_dir: Path,
    schema: PgSchema,
    admin: psycopg.Connection,
    built: Built,
    s3_env: MotoS3,
    s3_bucket: str,  # noqa: F811
) -> None:
    s3 = ("--s3", f"s3://{s3_bucket}/prod")
    assert run(data_dir, schema, *s3).exit_code == 0
    tamper = "UPDATE session_activities SET cmi = replace(cmi, %s, %s) WHERE session_id = %s"
    admin.execute(tamper, ("page-7", "page-6", built.suspended_id))
    result = run(data_dir, schema, *s3, "--verify-only")
    assert result.exit_code == 1, result.output
    assert "MISMATCH session_activities" in result.output and "Verification FAILED." in result.output
    assert result.output.count("  MISMATCH ") == 1  # that one table of that one tenant
    admin.execute(tamper, ("page-6", "page-7", built.suspended_id))
    assert run(data_dir, schema, *s3, "--verify-only").exit_code == 0
    store = store_of(s3_env, s3_bucket)
    victim = next(iter(store.list(built.acme.tenant_id)))
    store.put(built.acme.tenant_id, victim.path, [b"not the file"], max_bytes=100)
    result = run(data_dir, schema, *s3, "--verify-only", "--json")
    assert result.exit_code == 1
    problems = json.loads(result.output)["files"]["problems"]
    assert [(p["path"], p["problem"]) for p in problems] == [(victim.path, "size")]
    # same size, other bytes: only the SHA-256 tells
    original = (data_dir / "tenants" / built.acme.tenant_id / victim.path).read_bytes()
    store.put(built.acme.tenant_id, victim.path, [bytes(len(original))], max_bytes=len(original))
    problems = json.loads(run(data_dir, schema, *s3, "--verify-only", "--json").output)["files"]["problems"]
    assert [(p["path"], p["problem"]) for p in problems] == [(victim.path, "sha256")]
    # a file lost from the bucket, and one the source never had: --resume sends the lost one again only
    store.delete(built.acme.tenant_id, victim.path)
    store.put(built.acme.tenant_id, "packages/pkg_stray/1/x.html", [b"stray"], max_bytes=5)
    problems = json.loads(run(data_dir, schema, *s3, "--verify-only", "--json").output)["files"]["problems"]
    assert {(p["path"], p["problem"]) for p in problems} == {
        ("packages/pkg_stray/1/x.html", "extra"),
        (victim.path, "missing"),
    }
    store.delete(built.acme.tenant_id, "packages/pkg_stray/1/x.html")
    resumed = run(data_dir, schema, *s3, "--resume", "--json")
    assert resumed.exit_code == 0, resumed.output
    files = json.loads(resumed.output)["files"]
    assert (files["copied"], files["copied_bytes"], files["problems"]) == (1, len(original), [])
    assert store.read_bytes(built.acme.tenant_id, victim.path) == original


def test_a_non_empty_target_is_refused_unless_resumed_or_forced(
    data_dir: Path, schema: PgSchema, admin: psycopg.Connection, built: Built
) -> None:
    first = run(data_dir, schema)
    assert first.exit_code == 0, first.output
    assert "stay in" in first.output  # without --s3 the files stay in the data directory
    refused = run(data_dir, schema, "--json")
    assert refused.exit_code == 1
    error = json.loads(refused.stderr)
    assert error["code"] == "MIGRATION_REFUSED" and "not empty" in error["error"]
    # an interrupted run: one tenant's rows lost; --resume copies that tenant again and keeps the rest
    admin.execute("SET session_replication_role = replica")
    admin.execute("DELETE FROM session_activities WHERE tenant_id = %s", (built.acme.tenant_id,))
    admin.execute("DELETE FROM sessions WHERE tenant_id = %s", (built.acme.tenant_id,))
    admin.execute("SET session_replication_role = DEFAULT")
    assert run(data_dir, schema, "--verify-only").exit_code == 1
    resumed = run(data_dir, schema, "--resume", "--json")
    assert resumed.exit_code == 0, resumed.output
    copied = json.loads(resumed.output)["copied"]
    assert copied == {
        "registry": "already copied",
        built.acme.tenant_id: "cleared and copied",
        built.globex.tenant_id: "already copied",
    }
    forced = run(data_dir, schema, "--force")
    assert forced.exit_code == 0, forced.output
    assert admin.execute("SELECT count(*) FROM tenants").fetchone()[0] == 2


HOLDER = """
import sys, time, apsw
conn = apsw.Connection(sys.argv[1])
conn.execute("SELECT count(*) FROM tenants").fetchone()
print("open", flush=True)
time.sleep(60)
"""


def test_a_running_appliance_is_refused(data_dir: Path, schema: PgSchema, admin: psycopg.Connection) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(data_dir / "registry.db")], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        result = run(data_dir, schema)
        assert result.exit_code == 1
        assert "appliance is running" in result.stderr
        assert admin.execute("SELECT count(*) FROM tenants").fetchone()[0] == 0  # nothing written
    finally:
        holder.kill()
        holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()
    assert run(data_dir, schema).exit_code == 0


def test_an_application_role_url_is_refused(data_dir: Path, schema: PgSchema) -> None:
    url = f"postgresql://{schema.app_role}@127.0.0.1:5432/test?connect_timeout=3"
    args = ["migrate", "--data-dir", str(data_dir), "--to", url, "--schema", schema.schema]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1
    assert "owner" in result.stderr


def test_an_unexpected_source_is_refused_before_anything_is_written(
    data_dir: Path, schema: PgSchema, admin: psycopg.Connection, built: Built
) -> None:
    tenant_db = data_dir / "tenants" / built.globex.tenant_id / "tenant.db"
    conn = apsw.Connection(str(tenant_db))
    conn.execute("CREATE TABLE notes (a TEXT)")
    conn.close()
    result = run(data_dir, schema, "--json")
    assert result.exit_code == 1
    error = json.loads(result.stderr)
    assert error["code"] == "MIGRATION_REFUSED" and error["details"]["extra"] == ["notes"]
    assert admin.execute("SELECT count(*) FROM tenants").fetchone()[0] == 0  # the registry was not copied
    conn = apsw.Connection(str(tenant_db))
    conn.execute("DROP TABLE notes")
    conn.execute("INSERT INTO _migrations VALUES ('tenant', 'm999_from_the_future', 0)")
    conn.close()
    result = run(data_dir, schema, "--force")
    assert result.exit_code == 1 and "later release" in result.stderr
    assert admin.execute("SELECT count(*) FROM tenants").fetchone()[0] == 0


def test_after_the_move_the_content_comes_from_the_bucket(
    built: Built,
    data_dir: Path,
    schema: PgSchema,
    s3_env: MotoS3,
    s3_bucket: str,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the `files` setting the workers will have names the bucket: no --s3 needed
    monkeypatch.setenv("SCORM_APPLIANCE_FILES", f"s3://{s3_bucket}/prod")
    moved = run(data_dir, schema)
    assert moved.exit_code == 0, moved.output
    assert f"files: s3://{s3_bucket}/prod" in moved.output and "49 compared" in moved.output
    local = _local_files(data_dir)
    for tenant in (data_dir / "tenants").iterdir():  # the workers have no copy of the files: only the bucket
        shutil.rmtree(tenant / "packages", ignore_errors=True)
    config = pg_config(data_dir, schema).with_overrides(
        {
            "files": f"s3://{s3_bucket}/prod",
            "files_endpoint": s3_env.endpoint_url,
            "files_region": REGION,
            "files_access_key_id": ACCESS_KEY_ID,
            "files_secret_access_key": SECRET_ACCESS_KEY,
        }
    )
    with TestClient(create_app(config, start_scheduler=False)) as api:
        resumed = create(api, built.acme, built.package_id, learner="learner-1").json()
        player = Player(api, resumed, client_id="page-on-s3")
        launched = player.launch()
        assert player.cmi["cmi.suspend_data"] == SUSPEND_DATA
        href = launched["delivery"]["href"].split("?")[0]
        page = api.get(f"{player.path}/content/{href}")
        assert page.status_code == 200, page.text
        wanted = next(
            data
            for path, data in local.items()
            if path.startswith(f"{built.acme.tenant_id}/packages/{built.package_id}/") and path.endswith("/" + href)
        )
        assert page.content == wanted
        # the upload that was waiting: its job, copied with the registry, processes the ZIP from the bucket
        assert api.get(f"/api/v1/packages/{built.pending_id}", headers=built.globex.headers).json()["status"] == (
            "processing"
        )
        drain(api)
        ready = api.get(f"/api/v1/packages/{built.pending_id}", headers=built.globex.headers).json()
        assert ready["status"] == "ready", ready
    store = store_of(s3_env, s3_bucket)
    files = [f.path for f in store.list(built.globex.tenant_id) if f.path.startswith(f"packages/{built.pending_id}/")]
    assert files and not (data_dir / "tenants" / built.globex.tenant_id / "packages" / built.pending_id).exists()
