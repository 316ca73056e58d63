"""Real service functions, unchanged, on SQLite and through the adapter on PostgreSQL: the same answers.

The scenario is the webhook endpoints' life (appliance.services.delivery.webhooks): a tenant is created in the registry,
an endpoint is created, listed, read, disabled and enabled, sent a test ping (an event in the outbox, a
delivery, a job in the registry's queue found again by `json_extract`), retried, and deleted. Ids and
secrets are random, so both transcripts are compared with each id replaced by its order of appearance.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
from pathlib import Path
from typing import Any

from appliance.clock import FixedClock
from appliance.config import Config
from appliance.instance import Instance
from appliance.services.delivery import jobs, webhook_deliveries, webhooks
from appliance.services.learning import analytics, player_requests, runtime, sessions
from appliance.services.library import packages
from appliance.services.library.upload import StagedUpload
from appliance.services.tenancy.tenants import create_tenant, get_tenant
from appliance.storage.postgres.adapter import PgDatabase, PgStore
from appliance.storage.sqlite.connection import rows
from tests.faces.api.test_packages import package_12

BASE = "http://127.0.0.1:8080"


class PgInstance(Instance):
    """An Instance whose registry and tenant databases are on PostgreSQL (files stay in the data dir)."""

    def __init__(self, config: Config, clock: FixedClock, store: PgStore) -> None:
        super().__init__(config, clock)
        self.registry.close()
        self.registry = store.registry
        self._store = store

    def tenant_db(self, tenant_id: str) -> PgDatabase:  # type: ignore[override]
        # packages.process_version asks whether the tenant's SQLite file exists ("not deleted"): a file
        # layout check still to be moved behind the storage layer; an empty marker answers it here.
        marker = self.data.tenant_db(tenant_id)
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()
        return self._store.tenant_db(tenant_id)


def _scenario(inst: Instance, name: str) -> list[Any]:
    tenant = create_tenant(inst, name)
    out: list[Any] = [get_tenant(inst, tenant.id)]
    made = webhooks.create_webhook(inst, tenant, url="https://hooks.example.com/in", events=["session.*"])
    hook_id = made["id"]
    inst.clock.advance(1)
    webhooks.create_webhook(inst, tenant, url="https://hooks.example.com/two", events=["*"], description="second")
    out += [made, webhooks.list_webhooks(inst, tenant, limit=1, cursor=None)]
    page = out[-1]
    out.append(webhooks.list_webhooks(inst, tenant, limit=1, cursor=page["next_cursor"]))
    out.append(webhooks.update_webhook(inst, tenant, hook_id, enabled=False))
    out.append(webhooks.update_webhook(inst, tenant, hook_id, enabled=True, events=["package.*", "session.*"]))
    inst.clock.advance(1)
    delivery = webhook_deliveries.send_test(inst, tenant, hook_id)
    out.append(delivery)
    out.append(webhook_deliveries.retry_delivery(inst, tenant, hook_id, delivery["id"]))
    out.append(webhook_deliveries.list_deliveries(inst, tenant, hook_id, status="pending", limit=10, cursor=None))
    out.append(
        inst.registry.read_sync(
            lambda c: rows(c, "SELECT kind, tenant_id, status, run_at FROM jobs WHERE tenant_id = ?", (tenant.id,))
        )
    )
    webhooks.delete_webhook(inst, tenant, hook_id)
    out.append(webhooks.list_webhooks(inst, tenant, limit=10, cursor=None))
    return out


def _b64(text: str) -> str:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()


def _decoded(value: Any) -> Any:
    """The transcript with each page cursor and launch token decoded: they carry ids, which are random (a
    launch token's signature, by the data directory's own key, is left out)."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if k == "next_cursor" and v:
                out[k] = _b64(v)
            elif k == "launch_url" and v:
                base, token = v.rsplit("/", 1)
                out[k] = f"{base}/{_b64(token.split('.')[0])}"
            else:
                out[k] = _decoded(v)
        return out
    if isinstance(value, list):
        return [_decoded(v) for v in value]
    return value


def _normalised(value: Any, secret_values: set[str]) -> str:
    """The transcript as text, each id (prefix_random) and secret replaced by its order of appearance."""
    text = repr(_decoded(value))
    for secret in secret_values:
        text = text.replace(secret, "<secret>")
    seen: dict[str, str] = {}
    return re.sub(
        r"\b(ten|whk|dlv|evt|job|pkg|ses)_[a-z0-9]+",
        lambda m: seen.setdefault(m.group(), f"<{m.group(1)}{len(seen)}>"),
        text,
    )


def _secrets(transcript: list[Any]) -> set[str]:
    return {item["secret"] for item in transcript if isinstance(item, dict) and "secret" in item}


def test_webhook_endpoints_behave_alike_on_both_backends(tmp_path: Path, pg_store: PgStore) -> None:
    name = f"Acme {secrets.token_hex(3)}"  # the session's registry is shared by the tests
    lite = Instance(Config(data_dir=tmp_path / "lite"), FixedClock())
    try:
        on_sqlite = _scenario(lite, name)
    finally:
        lite.close()
    pg = PgInstance(Config(data_dir=tmp_path / "pg"), FixedClock(), pg_store)
    try:
        on_pg = _scenario(pg, name)
    finally:
        pg.close()
    assert _normalised(on_pg, _secrets(on_pg)) == _normalised(on_sqlite, _secrets(on_sqlite))
    assert on_pg[3]["data"][0]["description"] == "second"  # the keyset cursor's second page
    assert [d["status"] for d in on_pg[-3]["data"]] == ["pending"]
    assert [w["description"] for w in on_pg[-1]["data"]] == ["second"]  # the deleted one is gone


def _learning(inst: Instance, name: str) -> list[Any]:
    """A SCORM 1.2 package uploaded and processed, a session created (and resumed), launched, committed
    with two interactions, read and listed, and the package's analytics: the learner's path through
    packages, jobs, sessions, the run-time and the reports."""
    tenant = create_tenant(inst, name)
    staged = inst.data.tmp / "staged.zip"
    staged.write_bytes(package_12("Safety first"))
    made = packages.create_version(inst, tenant, StagedUpload(path=staged, size=staged.stat().st_size, sha256="0" * 64))
    [job] = [j for j in jobs.list_jobs(inst.registry) if j["tenant_id"] == tenant.id]
    payload = json.loads(job["payload"])
    packages.process_version(inst, jobs.Job(job["id"], job["kind"], tenant.id, payload, 1, job["max_attempts"]))
    out: list[Any] = [made, packages.get_package(inst, tenant, made["id"])]
    args = {"package_id": made["id"], "learner_name": "Ada", "package_version": None}
    session, created = sessions.create_session(inst, tenant, BASE, learner_id="ada", resume=False, **args)
    again, created_again = sessions.create_session(inst, tenant, BASE, learner_id="ada", resume=True, **args)
    out += [session, created, again["id"] == session["id"], created_again]
    inst.clock.advance(5)
    launched = runtime.launch(inst, tenant.id, session["id"])
    out.append(launched)
    changes = {"cmi.core.lesson_status": "passed", "cmi.core.score.raw": "85", "cmi.suspend_data": "page=3"}
    for n, (answer, result) in enumerate((("b", "correct"), ("c", "wrong"))):
        changes |= {
            f"cmi.interactions.{n}.id": f"q{n}",
            f"cmi.interactions.{n}.type": "choice",
            f"cmi.interactions.{n}.student_response": answer,
            f"cmi.interactions.{n}.result": result,
            f"cmi.interactions.{n}.latency": "0000:00:04.00",
        }
    body = player_requests.CommitIn(client_id="c1", seq=1, activity=launched["delivery"]["activity"], changes=changes)
    out.append(runtime.commit(inst, tenant.id, session["id"], body))
    out.append(sessions.get_session(inst, tenant, session["id"], BASE, include_cmi=True))
    filters = {"package_id": made["id"], "learner": "AD", "learner_id": None, "status": None}
    out.append(sessions.list_sessions(inst, tenant, BASE, filters=filters, limit=10, cursor=None))
    out.append(analytics.package_report(inst, tenant, made["id"], days=7))
    out.append(analytics.summary(inst, tenant, days=7))
    return out


def test_a_learner_session_behaves_alike_on_both_backends(tmp_path: Path, pg_store: PgStore) -> None:
    name = f"Learning {secrets.token_hex(3)}"
    lite = Instance(Config(data_dir=tmp_path / "lite"), FixedClock())
    try:
        on_sqlite = _learning(lite, name)
    finally:
        lite.close()
    pg = PgInstance(Config(data_dir=tmp_path / "pg"), FixedClock(), pg_store)
    try:
        on_pg = _learning(pg, name)
    finally:
        pg.close()
    assert _normalised(on_pg, set()) == _normalised(on_sqlite, set())
    got = on_pg[-4]  # what the learner's commit left on PostgreSQL
    assert (got["status"], got["score"]["scaled"], got["cmi"]["cmi.suspend_data"]) == ("passed", 0.85, "page=3")
    assert [s["id"] for s in on_pg[-3]["data"]] == [got["id"]]  # found by a case-blind search for "AD"
    report = on_pg[-2]  # the analytics triggers' counters and the per-day completions, on PostgreSQL
    assert [(q["id"], q["correct"], q["results"]["incorrect"]) for q in report["interactions"]] == [
        ("q0", 1, 0),
        ("q1", 0, 1),
    ]
    assert sum(d["completions"] for d in report["completions_per_day"]) == 1
