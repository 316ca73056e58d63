"""What the console added to the service layer and draws itself: charts, the log ring, plans, rotation."""

from __future__ import annotations

import io
import logging
import os
from pathlib import Path

import pytest

from appliance.config import load_config
from appliance.faces.console.auth import ADDRESS_FAILURES_PER_MINUTE
from appliance.faces.console.charts import Bar, bar_chart, time_buckets
from appliance.faces.console.views.server import console_rows, settings_rows
from appliance.instance import Instance
from appliance.logging_setup import RecentLines, configure_logging
from appliance.services.delivery import webhooks
from appliance.services.tenancy import tenants
from appliance.services.tenancy.admins import LOCK_AFTER
from appliance.services.tenancy.quotas import PLANS


def test_bar_chart_escapes_labels_and_scales_bars() -> None:
    svg = bar_chart('Q <&> "x"', [Bar("<script>", 4), Bar("b", 2)])
    assert "<script>" not in svg and "&lt;script&gt;" in svg and 'aria-label="Q &lt;&amp;&gt; &quot;x&quot;"' in svg
    heights = [float(part.split('height="')[1].split('"')[0]) for part in svg.split("<rect")[1:]]
    assert heights[0] == 2 * heights[1] > 0


def test_time_buckets_cover_every_duration() -> None:
    bars = time_buckets([0, 30, 60, 299, 600, 3600, 99_999])
    assert [b.value for b in bars] == [2, 1, 1, 0, 1, 0, 0, 2]  # 0-1, 1-2, 2-5, 5-10, 10-20, … 60+ min
    assert sum(b.value for b in bars) == 7


def test_recent_lines_keeps_a_bounded_tail_and_writes_through() -> None:
    out = io.StringIO()
    ring = RecentLines(out, size=3)
    for n in range(5):
        ring.write(f"line {n}\n")
    ring.write("partial")
    assert ring.lines() == ["line 2", "line 3", "line 4"]
    assert out.getvalue().startswith("line 0\n") and out.getvalue().endswith("partial")


def test_configure_logging_feeds_the_ring() -> None:
    from appliance import logging_setup

    out = io.StringIO()
    root = logging.getLogger()
    saved = list(root.handlers), root.level
    try:
        configure_logging("info", "text", out)
        logging.getLogger("appliance.test").info("hello ring")
        assert logging_setup.recent is not None
        assert any("hello ring" in line for line in logging_setup.recent.lines())
        assert "hello ring" in out.getvalue()
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved[0]:
            root.addHandler(handler)
        root.setLevel(saved[1])
        logging_setup.recent = None
        logging_setup._installed = None


def test_set_plan_applies_the_plans_quotas(inst: Instance) -> None:
    tenant = tenants.create_tenant(inst, "acme")
    moved = tenants.set_plan(inst, tenant.id, "professional")
    assert moved.plan == "professional"
    assert moved.storage_limit_bytes == PLANS["professional"].storage_bytes
    assert moved.rate_limit_per_minute == PLANS["professional"].requests_per_minute


def test_rotate_secret_replaces_the_signing_secret(inst: Instance) -> None:
    tenant = tenants.create_tenant(inst, "acme")
    made = webhooks.create_webhook(inst, tenant, url="https://example.com/hook", events=["*"])
    rotated = webhooks.rotate_secret(inst, tenant, made["id"])
    assert rotated["secret"].startswith("whsec_") and rotated["secret"] != made["secret"]
    stored = inst.tenant_db(tenant.id).read_sync(
        lambda c: next(c.execute("SELECT secret FROM webhooks WHERE id = ?", (made["id"],)))[0]
    )
    assert stored == rotated["secret"]


def test_settings_show_each_values_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "settings.toml").write_text('log_level = "debug"\njob_poll_seconds = 2.5\n')
    monkeypatch.setenv("SCORM_APPLIANCE_JOB_CONCURRENCY", "3")
    monkeypatch.setenv("SCORM_APPLIANCE_JOB_POLL_SECONDS", "4")  # the environment beats the file
    loaded = load_config({"data_dir": data, "port": 9999}, os.environ)
    inst = Instance(loaded)
    try:
        rows = {name: (value, source) for name, value, source in settings_rows(inst)}
        limits = {name: (value, source) for name, value, source in console_rows(inst)}
    finally:
        inst.close()
    assert rows["log_level"] == ("debug", "settings.toml")
    assert rows["job_concurrency"] == ("3", "environment (SCORM_APPLIANCE_JOB_CONCURRENCY)")
    assert rows["job_poll_seconds"] == ("4.0", "environment (SCORM_APPLIANCE_JOB_POLL_SECONDS)")
    assert rows["port"] == ("9999", "command line")
    assert rows["host"] == ("127.0.0.1", "default")
    assert limits["Backup location"][0] == str(tmp_path / "data-backups")
    assert limits["Account lockout"][0] == f"{LOCK_AFTER} wrong passwords in a row"
    assert limits["Address block"][0].startswith(f"{ADDRESS_FAILURES_PER_MINUTE} failed sign-ins")
