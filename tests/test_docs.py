"""The docs cannot drift from the code: every command, setting and error code is documented."""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import click
import pytest

from appliance.config import ENV_PREFIX, setting_names
from appliance.faces.api.errors import STATUS_BY_CODE
from appliance.faces.cli import cli

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
PACKAGE_FAILURE_CODES = [
    "MANIFEST_MISSING",
    "MANIFEST_INVALID",
    "UNSUPPORTED_VERSION",
    "MISSING_FILES",
    "UNSAFE_ARCHIVE",
    "QUOTA_EXCEEDED",
    "NO_LAUNCHABLE_CONTENT",
]


def read(name: str) -> str:
    return (DOCS / name).read_text("utf-8")


def gen_cli() -> ModuleType:
    """docs/gen_cli.py, imported from its path (docs/ is not a package)."""
    spec = importlib.util.spec_from_file_location("docs_gen_cli", DOCS / "gen_cli.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def commands(command: click.Command, path: str) -> Iterator[tuple[str, click.Command]]:
    """Every command under `command`, with its full path, walking groups recursively."""
    yield path, command
    if isinstance(command, click.Group):
        for name, sub in sorted(command.commands.items()):
            yield from commands(sub, f"{path} {name}")


ALL_COMMANDS = list(commands(cli, "scorm-appliance"))


def test_the_walk_finds_the_contract_commands() -> None:
    paths = {path for path, _ in ALL_COMMANDS}
    for expected in (
        "scorm-appliance serve",
        "scorm-appliance tenants create",
        "scorm-appliance tenants set-jwt",
        "scorm-appliance keys create",
        "scorm-appliance keys revoke",
        "scorm-appliance quotas set",
        "scorm-appliance usage",
    ):
        assert expected in paths


@pytest.mark.parametrize(("path", "command"), ALL_COMMANDS, ids=[p for p, _ in ALL_COMMANDS])
def test_every_command_has_help_and_is_in_cli_md(path: str, command: click.Command) -> None:
    assert command.help and command.help.strip(), f"{path} has no help text"
    for param in command.params:
        if isinstance(param, click.Option) and not param.hidden:
            assert param.help, f"{path} {param.opts[0]} has no help text"
    assert re.search(rf"^#+ {re.escape(path)}$", read("cli.md"), re.MULTILINE), f"{path} is not in docs/cli.md"


def test_cli_md_is_the_output_of_gen_cli() -> None:
    expected = gen_cli().render()
    assert read("cli.md") == expected, "docs/cli.md is stale: run .venv/bin/python docs/gen_cli.py > docs/cli.md"


def test_every_setting_is_documented_with_its_env_var() -> None:
    text = read("configuration.md")
    for name in setting_names():
        assert f"`{name}`" in text, f"setting {name} is not in docs/configuration.md"
        assert ENV_PREFIX + name.upper() in text, f"{ENV_PREFIX}{name.upper()} is not in docs/configuration.md"


def test_every_error_code_is_documented_with_its_status() -> None:
    text = read("errors.md")
    for code, status in STATUS_BY_CODE.items():
        assert re.search(rf"^\| `{code}` \| {status} \|", text, re.MULTILINE), (
            f"{code} ({status}) is not in docs/errors.md"
        )
    for code in PACKAGE_FAILURE_CODES:
        assert f"`{code}`" in text, f"package failure code {code} is not in docs/errors.md"


def test_the_docs_the_readme_links_exist() -> None:
    readme = (REPO / "README.md").read_text("utf-8")
    linked = re.findall(r"\]\((docs/[^)#]+)", readme)
    assert linked
    for target in linked:
        assert (REPO / target).is_file(), f"README links to missing {target}"


def test_links_between_docs_resolve() -> None:
    for page in DOCS.glob("*.md"):
        for target in re.findall(r"\]\(([a-z_]+\.md)(?:#[^)]*)?\)", page.read_text("utf-8")):
            assert (DOCS / target).is_file(), f"{page.name} links to missing {target}"
