"""A Node.js test suite used in place from ../shared/suites, as the conformance harnesses use theirs.

The suites (CATAPULT's cmi5 LMS test suite, tests/conformance/cmi5_lts.py; ADL's LRS conformance test
suite, tests/conformance/lrs.py) are test tools written by others, never copied into the project. Both
are handled the same way, here: their sources are copied to a writable folder for each run (the shared
folder is read-only); their npm dependencies are installed once into a cache under the system's temp
folder, keyed by a hash of what decides them, by install steps run in a scratch folder that is renamed
into place only when every step succeeded (an interrupted install never leaves a cache a later run
trusts); and each step is a bounded subprocess whose failure is a SuiteError with the step's output.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

SHARED_SUITES = Path(__file__).resolve().parents[3] / "shared" / "suites"
SUITES_README = SHARED_SUITES / "README.md"
INSTALLED_MARK = ".scorm-appliance-installed"  # in node_modules once every install step succeeded


class SuiteError(AssertionError):
    """The suite could not be installed or run (not a conformance result)."""


@dataclass(frozen=True)
class NpmSuite:
    """One suite: where it is, what is its own source, and what decides its installed dependencies.

    `skipped(parts)` says which files (their path parts under the folder walked) are not the suite's
    sources beyond `node_modules`: results, logs, built files. The dependency key hashes `decisive_files`
    and every source file under the `decisive_dirs`, each named by its path under `root`.
    """

    root: Path
    readme_name: str  # how ../shared/suites/README.md names the suite before "@ <commit>"
    cache_prefix: str
    skipped: Callable[[tuple[str, ...]], bool]
    decisive_files: tuple[str, ...] = ("package.json", "package-lock.json")
    decisive_dirs: tuple[str, ...] = ()

    def commit(self) -> str:
        """The suite's upstream commit, as ../shared/suites/README.md records it ("" when it does not)."""
        if not SUITES_README.exists():
            return ""
        found = re.search(rf"{re.escape(self.readme_name)}\s*@\s*([0-9a-f]{{7,40}})", SUITES_README.read_text("utf-8"))
        return found.group(1) if found else ""

    def source_files(self, folder: Path) -> Iterator[Path]:
        """The suite's own files under `folder`: not installed dependencies nor what `skipped` names."""
        for path in sorted(folder.rglob("*")):
            parts = path.relative_to(folder).parts
            if path.is_file() and "node_modules" not in parts and not self.skipped(parts):
                yield path

    def dependency_key(self, root: Path | None = None) -> str:
        """A hash of what decides the installed dependencies (20 hex digits)."""
        root = self.root if root is None else root
        digest = hashlib.sha256()
        decisive = [root / name for name in self.decisive_files]
        for folder in (root / name for name in self.decisive_dirs):
            decisive += list(self.source_files(folder)) if folder.is_dir() else []
        for path in decisive:
            if path.is_file():
                digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
        return digest.hexdigest()[:20]

    def copy_sources(self, dest: Path, root: Path | None = None) -> Path:
        """Copy the suite's sources to `dest`, writable (the shared folder is read-only)."""
        root = self.root if root is None else root
        for path in self.source_files(root):
            target = dest / path.relative_to(root)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
        return dest

    def cache_dir(self) -> Path:
        """The installed copy for the suite's current dependencies (stable across runs and sessions)."""
        return Path(tempfile.gettempdir()) / f"{self.cache_prefix}{self.dependency_key()}"

    def installed(self, install: Callable[[Path], None]) -> Path:
        """A copy of the suite with its dependencies installed: the cached one, or one `install(scratch)`
        makes now in a scratch copy of the sources, renamed into the cache once it returned."""
        cached = self.cache_dir()
        if (cached / "node_modules" / INSTALLED_MARK).is_file():
            return cached
        scratch = Path(tempfile.mkdtemp(prefix=f"{self.cache_prefix}install-"))
        try:
            self.copy_sources(scratch)
            install(scratch)
            (scratch / "node_modules" / INSTALLED_MARK).write_text(self.dependency_key(), "utf-8")
        except BaseException:
            shutil.rmtree(scratch, ignore_errors=True)
            raise
        try:
            scratch.rename(cached)
        except OSError:  # another run installed it meanwhile
            shutil.rmtree(scratch, ignore_errors=True)
        return cached

    def run_copy(self, dest: Path, install: Callable[[Path], None], links: tuple[str, ...] = ("node_modules",)) -> Path:
        """A fresh copy of the current sources in `dest` whose `links` (node_modules, built folders) are
        symlinks to the cached install's (`installed(install)`)."""
        installed = self.installed(install)
        shutil.rmtree(dest, ignore_errors=True)  # fresh, also when a folder of that name was used before
        self.copy_sources(dest)
        for name in links:
            (dest / name).symlink_to(installed / name, target_is_directory=True)
        return dest


def tool(name: str, why: str) -> str:
    """The path of a command the suite needs (`npm`, `node`), or SuiteError saying what for."""
    found = shutil.which(name)
    if found is None:
        raise SuiteError(f"{name} is not installed: {why} needs Node.js 20 and npm")
    return found


def run_step(command: list[str], cwd: Path, env: dict[str, str], what: str, timeout: float) -> None:
    """One install step, bounded: SuiteError with the end of its output when it fails or overruns."""
    try:
        done = subprocess.run(
            command,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise SuiteError(f"{what} did not finish in {timeout:.0f} s") from None
    if done.returncode != 0:
        raise SuiteError(f"{what} exited {done.returncode}:\n{(done.stdout + done.stderr)[-4000:]}")


def stop(proc: subprocess.Popen[bytes], interrupt: Callable[[], None], grace: float) -> None:
    """Ask a suite's run to stop (`interrupt`: the signal its runner handles), and kill it if it has not
    exited `grace` seconds later."""
    interrupt()
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(grace)


def signal_group(pid: int, sig: int) -> None:
    """Signal a run's process group (started with `start_new_session`): whatever it started goes too."""
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
