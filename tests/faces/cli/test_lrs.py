"""The admin CLI's LRS commands: credentials (create, list, revoke) and forwarding targets, per tenant."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from click.testing import CliRunner

from appliance.faces.cli import cli
from appliance.instance import Instance
from appliance.services.lrs import credentials
from tests.conftest import backend_config


def run(runner: CliRunner, data_dir: Path, *args: str, code: int = 0, stdin: str | None = None) -> str:
    result = runner.invoke(cli, [*args, "--data-dir", str(data_dir)], catch_exceptions=False, input=stdin)
    assert result.exit_code == code, result.output
    return result.output


def tenant(runner: CliRunner, data_dir: Path, name: str) -> str:
    return str(json.loads(run(runner, data_dir, "tenants", "create", name, "--json"))["id"])


def works(data_dir: Path, key: str, secret: str) -> bool:
    """Whether the service accepts the pair (what the running server's LRS checks)."""
    inst = Instance(backend_config(data_dir))
    try:
        credentials.authenticate(inst, "Basic " + base64.b64encode(f"{key}:{secret}".encode()).decode())
    except Exception:
        return False
    finally:
        inst.close()
    return True


def test_credentials_create_list_revoke(runner: CliRunner, tmp_path: Path) -> None:
    acme = tenant(runner, tmp_path, "Acme")
    made = json.loads(
        run(
            runner,
            tmp_path,
            "lrs-credentials",
            "create",
            "--tenant",
            "Acme",
            "--name",
            "cmi5",
            "--scope",
            "write",
            "--json",
        )
    )
    assert made["id"].startswith("lrs_") and made["key"] == made["id"] and made["tenant_id"] == acme
    assert made["scope"] == "write" and made["endpoint"] == "http://127.0.0.1:8080/xapi/"
    assert works(tmp_path, made["key"], made["secret"])

    text = run(runner, tmp_path, "lrs-credentials", "create", "--tenant", acme)
    assert "Secret (shown once" in text and "Endpoint: http://127.0.0.1:8080/xapi/" in text

    listed = json.loads(run(runner, tmp_path, "lrs-credentials", "list", "--tenant", "Acme", "--json"))
    assert [c["scope"] for c in listed] == ["write", "all"] and all("secret" not in c for c in listed)
    assert "cmi5" in run(runner, tmp_path, "lrs-credentials", "list", "--tenant", "Acme")

    revoked = json.loads(run(runner, tmp_path, "lrs-credentials", "revoke", made["id"], "--tenant", "Acme", "--json"))
    assert revoked["status"] == "revoked"
    assert not works(tmp_path, made["key"], made["secret"])


def test_credentials_of_another_tenant_cannot_be_revoked(runner: CliRunner, tmp_path: Path) -> None:
    tenant(runner, tmp_path, "Acme")
    tenant(runner, tmp_path, "Globex")
    theirs = json.loads(run(runner, tmp_path, "lrs-credentials", "create", "--tenant", "Globex", "--json"))
    out = run(runner, tmp_path, "lrs-credentials", "revoke", theirs["id"], "--tenant", "Acme", code=1)
    assert "no LRS credential" in out
    assert works(tmp_path, theirs["key"], theirs["secret"])
    assert json.loads(run(runner, tmp_path, "lrs-credentials", "list", "--tenant", "Acme", "--json")) == []


def test_credentials_usage_errors(runner: CliRunner, tmp_path: Path) -> None:
    tenant(runner, tmp_path, "Acme")
    run(runner, tmp_path, "lrs-credentials", "create", "--tenant", "Acme", "--scope", "admin", code=2)
    run(runner, tmp_path, "lrs-credentials", "create", code=2)  # --tenant is required
    out = run(runner, tmp_path, "lrs-credentials", "list", "--tenant", "Nobody", "--json", code=1)
    assert json.loads(out)["code"] == "NOT_FOUND"


def test_forwarding_targets(runner: CliRunner, tmp_path: Path) -> None:
    tenant(runner, tmp_path, "Acme")
    made = json.loads(
        run(
            runner,
            tmp_path,
            "lrs-forwarding",
            "create",
            "--tenant",
            "Acme",
            "--endpoint",
            "https://lrs.example.org/xapi",
            "--username",
            "key",
            "--password-stdin",
            "--verb",
            "http://adlnet.gov/expapi/verbs/completed",
            "--activity-prefix",
            "https://courses.example.org/",
            "--xapi-version",
            "2.0.0",
            "--json",
            stdin="s3cret\n",
        )
    )
    assert made["id"].startswith("fwd_") and made["endpoint"] == "https://lrs.example.org/xapi/"
    assert made["has_password"] and "password" not in made and made["version"] == "2.0.0"
    assert made["filters"] == {
        "verbs": ["http://adlnet.gov/expapi/verbs/completed"],
        "activity_prefixes": ["https://courses.example.org/"],
    }
    assert made["status"] == "active" and made["cursor_seq"] == 0 and made["pending_statements"] == 0
    assert "s3cret" not in run(runner, tmp_path, "lrs-forwarding", "show", made["id"], "--tenant", "Acme")

    listed = json.loads(run(runner, tmp_path, "lrs-forwarding", "list", "--tenant", "Acme", "--json"))
    assert [t["id"] for t in listed] == [made["id"]]
    updated = json.loads(
        run(
            runner,
            tmp_path,
            "lrs-forwarding",
            "update",
            made["id"],
            "--tenant",
            "Acme",
            "--endpoint",
            "https://other.example.org/lrs/",
            "--activity-prefix",
            "https://c2.example.org/",
            "--json",
        )
    )
    assert updated["endpoint"] == "https://other.example.org/lrs/" and updated["has_password"]
    assert updated["filters"] == {
        "verbs": ["http://adlnet.gov/expapi/verbs/completed"],
        "activity_prefixes": ["https://c2.example.org/"],
    }
    cleared = json.loads(
        run(runner, tmp_path, "lrs-forwarding", "update", made["id"], "--tenant", "Acme", "--clear-filters", "--json")
    )
    assert cleared["filters"] == {"verbs": [], "activity_prefixes": []}
    disabled = json.loads(run(runner, tmp_path, "lrs-forwarding", "disable", made["id"], "--tenant", "Acme", "--json"))
    assert disabled["status"] == "disabled" and not disabled["enabled"]
    enabled = json.loads(run(runner, tmp_path, "lrs-forwarding", "enable", made["id"], "--tenant", "Acme", "--json"))
    assert enabled["status"] == "active"
    assert json.loads(run(runner, tmp_path, "lrs-forwarding", "log", made["id"], "--tenant", "Acme", "--json")) == []

    out = run(
        runner, tmp_path, "lrs-forwarding", "create", "--tenant", "Acme", "--endpoint", "http://10.0.0.1/", code=1
    )
    assert "internal" in out
    run(runner, tmp_path, "lrs-forwarding", "delete", made["id"], "--tenant", "Acme")
    assert json.loads(run(runner, tmp_path, "lrs-forwarding", "list", "--tenant", "Acme", "--json")) == []


def test_forwarding_targets_are_per_tenant(runner: CliRunner, tmp_path: Path) -> None:
    tenant(runner, tmp_path, "Acme")
    tenant(runner, tmp_path, "Globex")
    theirs = json.loads(
        run(
            runner,
            tmp_path,
            "lrs-forwarding",
            "create",
            "--tenant",
            "Globex",
            "--endpoint",
            "https://lrs.example.org/x/",
            "--json",
        )
    )
    for command in ("show", "disable", "delete", "log"):
        run(runner, tmp_path, "lrs-forwarding", command, theirs["id"], "--tenant", "Acme", code=1)
    shown = json.loads(run(runner, tmp_path, "lrs-forwarding", "show", theirs["id"], "--tenant", "Globex", "--json"))
    assert shown["enabled"]
