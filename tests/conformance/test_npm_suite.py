"""The shared handling of the Node.js suites (tests.conformance.npm_suite): sources, cache key, the
install that is cached only when it succeeded, and bounded steps. No npm: the install steps are Python."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import pytest

from tests.conformance import cmi5_lts, lrs, npm_suite
from tests.conformance.npm_suite import NpmSuite, SuiteError, run_step


def _suite(tmp_path: Path) -> NpmSuite:
    root = tmp_path / "suite"
    (root / "local" / "pkg").mkdir(parents=True)
    (root / "logs").mkdir()
    (root / "node_modules" / "dep").mkdir(parents=True)
    (root / "package.json").write_text("{}")
    (root / "local" / "pkg" / "index.js").write_text("1")
    (root / "logs" / "run.log").write_text("a log")
    (root / "node_modules" / "dep" / "x.js").write_text("installed")
    (root / "test.js").write_text("// a test")
    return NpmSuite(
        root=root,
        readme_name="my-suite",
        cache_prefix="npm-suite-test-",
        skipped=lambda parts: parts[0] == "logs",
        decisive_dirs=("local",),
    )


@pytest.fixture(autouse=True)
def _temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The cache and scratch folders under the test's own folder."""
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))


def test_sources_leave_out_dependencies_and_what_the_suite_skips(tmp_path: Path) -> None:
    suite = _suite(tmp_path)
    names = [p.relative_to(suite.root).as_posix() for p in suite.source_files(suite.root)]
    assert names == ["local/pkg/index.js", "package.json", "test.js"]
    copied = suite.copy_sources(tmp_path / "copy")
    assert sorted(p.relative_to(copied).as_posix() for p in copied.rglob("*") if p.is_file()) == sorted(names)


def test_the_key_follows_what_decides_the_install_only(tmp_path: Path) -> None:
    suite = _suite(tmp_path)
    key = suite.dependency_key()
    (suite.root / "test.js").write_text("// another test")
    (suite.root / "logs" / "run.log").write_text("another log")
    assert suite.dependency_key() == key
    (suite.root / "local" / "pkg" / "index.js").write_text("2")
    assert suite.dependency_key() != key
    (suite.root / "local" / "pkg" / "index.js").write_text("1")
    (suite.root / "package-lock.json").write_text("{}")
    assert suite.dependency_key() != key
    assert suite.cache_dir() == tmp_path / "tmp" / f"npm-suite-test-{suite.dependency_key()}"


def test_an_install_is_cached_once_it_succeeded_and_never_half(tmp_path: Path) -> None:
    suite = _suite(tmp_path)
    calls: list[Path] = []

    def failing(scratch: Path) -> None:
        calls.append(scratch)
        (scratch / "node_modules").mkdir()
        raise SuiteError("npm ci exited 1")

    with pytest.raises(SuiteError):
        suite.installed(failing)
    assert not suite.cache_dir().exists() and not calls[0].exists()  # the scratch copy is gone too

    def working(scratch: Path) -> None:
        calls.append(scratch)
        assert (scratch / "package.json").is_file()  # it runs in a copy of the sources
        (scratch / "node_modules" / "dep").mkdir(parents=True)

    cached = suite.installed(working)
    assert cached == suite.cache_dir() and (cached / "node_modules" / "dep").is_dir()
    assert (cached / "node_modules" / npm_suite.INSTALLED_MARK).read_text() == suite.dependency_key()
    assert suite.installed(working) == cached and len(calls) == 2  # not installed again


def test_a_step_that_fails_or_overruns_is_a_suite_error(tmp_path: Path) -> None:
    run_step([sys.executable, "-c", "print('fine')"], tmp_path, {}, "ok step", timeout=30)
    with pytest.raises(SuiteError, match=r"bad step exited 3:\n.*boom"):
        run_step([sys.executable, "-c", "import sys; print('boom'); sys.exit(3)"], tmp_path, {}, "bad step", 30)
    with pytest.raises(SuiteError, match="slow step did not finish in 1 s"):
        run_step([sys.executable, "-c", "import time; time.sleep(30)"], tmp_path, {}, "slow step", timeout=1)


def test_the_commit_is_read_from_the_suites_readme(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("- my-suite @ 0123456789abcdef\n- other @ fedcba9876543210\n")
    monkeypatch.setattr(npm_suite, "SUITES_README", readme)
    suite = _suite(tmp_path)
    assert suite.commit() == "0123456789abcdef"
    readme.write_text("nothing recorded")
    assert suite.commit() == ""


def test_both_harnesses_use_it() -> None:
    assert cmi5_lts.SUITE_FILES.root == cmi5_lts.SUITE and lrs.SUITE_FILES.root == lrs.SUITE
    assert cmi5_lts.SuiteError is lrs.SuiteError is SuiteError


def test_a_run_copy_links_the_cached_install(tmp_path: Path) -> None:
    suite = _suite(tmp_path)

    def install(scratch: Path) -> None:
        (scratch / "node_modules" / "dep").mkdir(parents=True)
        (scratch / "local" / "dist").mkdir()

    run = suite.run_copy(tmp_path / "run", install, links=("node_modules", "local/dist"))
    assert (run / "test.js").read_text() == "// a test"
    assert (run / "node_modules").is_symlink() and (run / "node_modules").resolve() == (
        suite.cache_dir() / "node_modules"
    )
    assert (run / "local" / "dist").resolve() == suite.cache_dir() / "local" / "dist"


def test_a_run_asked_to_stop_is_killed_when_it_does_not(tmp_path: Path) -> None:
    import signal
    import subprocess

    stubborn = (
        "import signal, time; signal.signal(signal.SIGINT, signal.SIG_IGN); print('up', flush=True); time.sleep(60)"
    )
    proc = subprocess.Popen([sys.executable, "-c", stubborn], stdout=subprocess.PIPE, start_new_session=True)
    assert proc.stdout is not None and proc.stdout.readline() == b"up\n"
    npm_suite.stop(proc, lambda: proc.send_signal(signal.SIGINT), grace=1)
    proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    polite = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    npm_suite.stop(polite, lambda: npm_suite.signal_group(polite.pid, signal.SIGTERM), grace=10)
    assert polite.returncode == -signal.SIGTERM
    npm_suite.signal_group(polite.pid, signal.SIGKILL)  # a group that is gone: nothing to do, no error
