"""Build the single-file appliance: a shiv zipapp holding scorm-appliance and every dependency.

    python packaging/build_zipapp.py                          # for this machine's OS and processor
    python packaging/build_zipapp.py --target linux-aarch64   # for another Linux processor
    python packaging/build_zipapp.py --wheel dist/scorm_appliance-0.1.0-py3-none-any.whl --output x.pyz

The result runs as `python3 scorm-appliance-linux-x86_64.pyz serve …` on a machine that has only a
system CPython: no virtual environment, no pip, no network. Several dependencies are compiled (apsw,
lxml, uvloop, httptools, msgspec, cryptography, …), so one zipapp fits one operating system and one
processor architecture. It holds the compiled modules for every CPython version in --python (by
default 3.11 to 3.15; their file names carry the version, so they sit side by side), taken from
PyPI's binary wheels for Linux with glibc 2.17 or newer. A dependency without such a wheel fails the
build, and so does one that would differ in its Python code between two CPython versions. A preamble
refuses to start, with a clear message, on an interpreter or processor the bundle does not fit.

On a machine that is not Linux only this interpreter's version is bundled. On first start shiv
unpacks the bundle once into ~/.shiv (or $SHIV_ROOT); later starts reuse it.
"""

from __future__ import annotations

import argparse
import filecmp
import platform
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SOURCE_ITEMS = ("pyproject.toml", "README.md", "LICENSE", "appliance")
MACHINES = {"x86_64": ("x86_64", "amd64"), "aarch64": ("aarch64", "arm64")}
DEFAULT_PYTHONS = "3.11,3.12,3.13,3.14,3.15"
GLIBC_MINORS = range(17, 40)  # manylinux_2_17 … manylinux_2_39

PREAMBLE = '''\
"""scorm-appliance zipapp preamble: refuse an interpreter that the bundled compiled packages do not fit."""

import platform
import sys

PYTHONS = {pythons!r}
MACHINES = {machines!r}
SYSTEM = {system!r}

if (
    sys.implementation.name != "cpython"
    or tuple(sys.version_info[:2]) not in PYTHONS
    or sys.platform != SYSTEM
    or platform.machine().lower() not in MACHINES
):
    sys.exit(
        "This scorm-appliance zipapp was built for CPython {{}} on {{}} {{}}, but this is {{}} {{}}.{{}} on {{}} {{}}.\\n"
        "Run it with one of those Python versions, use the zipapp built for this machine, or install the "
        "wheel instead: python3 -m pip install scorm_appliance-*.whl".format(
            ", ".join("{{}}.{{}}".format(*v) for v in PYTHONS),
            SYSTEM,
            MACHINES[0],
            sys.implementation.name,
            sys.version_info[0],
            sys.version_info[1],
            sys.platform,
            platform.machine(),
        )
    )
'''


def run(command: list[str]) -> None:
    """Run a command, echoing it; stop the build when it fails."""
    print("+", " ".join(command), flush=True)
    subprocess.run(command, check=True)  # noqa: S603


def host_target() -> tuple[str, str]:
    """(system, machine) of this interpreter, e.g. ('linux', 'x86_64')."""
    machine = platform.machine().lower()
    for name, aliases in MACHINES.items():
        if machine in aliases:
            machine = name
    return sys.platform, machine


def build_wheel(work: Path) -> Path:
    """Build the project's wheel from a clean copy of its sources (the work tree is left untouched)."""
    src = work / "src"
    src.mkdir()
    for item in SOURCE_ITEMS:
        path = REPO / item
        if path.is_dir():
            shutil.copytree(path, src / item, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        elif path.exists():
            shutil.copy2(path, src / item)
    wheels = work / "wheel"
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", str(wheels), str(src)])
    [wheel] = wheels.glob("scorm_appliance-*.whl")
    return wheel


def cross_args(machine: str, python: str) -> list[str]:
    """pip's options to take only binary wheels for Linux `machine` and CPython `python`."""
    nodot = python.replace(".", "")
    args = ["--only-binary=:all:", "--implementation", "cp", "--python-version", python]
    args += ["--abi", f"cp{nodot}", "--abi", "abi3", "--abi", "none"]
    for tag in [f"manylinux_2_{minor}_{machine}" for minor in GLIBC_MINORS] + [f"manylinux2014_{machine}"]:
        args += ["--platform", tag]
    return args


def install(wheel: Path, site: Path, extra: list[str]) -> Path:
    """pip install the wheel and its dependencies into `site`."""
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile"]
    run([*pip, "--target", str(site), *extra, str(wheel)])
    return site


def merge(sites: list[Path], into: Path) -> list[str]:
    """Copy several site-packages into one; returns the conflicting non-code files (first one kept).

    Compiled modules carry the CPython version in their names and do not collide. A Python source file
    that differs between two sites means two different versions of a package: that fails the build.
    """
    kept: list[str] = []
    for site in sites:
        for path in sorted(site.rglob("*")):
            if path.is_dir():
                continue
            rel = path.relative_to(site)
            dest = into / rel
            if not dest.exists():
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, dest)
            elif not filecmp.cmp(path, dest, shallow=False):
                if rel.suffix in (".py", ".pyi"):
                    raise SystemExit(
                        f"{rel} differs between the bundled CPython versions ({sites[0].name} vs {site.name}): "
                        "a dependency resolved to different versions; pin it or drop a version from --python"
                    )
                kept.append(rel.as_posix())
    return kept


def main(argv: list[str] | None = None) -> int:
    """Build the zipapp; returns the exit status."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--wheel", type=Path, help="the project's wheel (default: build one from this checkout)")
    parser.add_argument("--output", type=Path, help="the .pyz to write (default: dist/scorm-appliance-<target>.pyz)")
    parser.add_argument(
        "--target",
        choices=["host", "linux-x86_64", "linux-aarch64"],
        default="host",
        help="the OS and processor the zipapp is for (default: this machine's)",
    )
    parser.add_argument(
        "--python",
        default=DEFAULT_PYTHONS,
        help=f"comma-separated CPython versions to bundle, Linux targets only (default: {DEFAULT_PYTHONS})",
    )
    args = parser.parse_args(argv)

    here = host_target()
    system, machine = here if args.target == "host" else tuple(args.target.split("-", 1))
    if system == "linux":
        pythons = [p.strip() for p in args.python.split(",") if p.strip()]
    elif (system, machine) == here:
        pythons = [f"{sys.version_info[0]}.{sys.version_info[1]}"]
    else:
        parser.error("cross-builds are for Linux targets only")
    output = (args.output or REPO / "dist" / f"scorm-appliance-{system}-{machine}.pyz").absolute()

    with tempfile.TemporaryDirectory(prefix="scorm-zipapp-") as tmp:
        work = Path(tmp)
        wheel = args.wheel.absolute() if args.wheel else build_wheel(work)
        jobs = [
            (work / f"site-{p}", cross_args(machine, p) if system == "linux" else [])
            for p in pythons  # on Linux always binary wheels, also for this machine: what users get
        ]
        with ThreadPoolExecutor(max_workers=3) as pool:
            sites = list(pool.map(lambda job: install(wheel, *job), jobs))
        site = work / "site-packages"
        kept = merge(sites, site)
        if kept:
            print(f"{len(kept)} metadata or data file(s) differ between versions; kept the {pythons[0]} copy")
        preamble = work / "preamble.py"
        preamble.write_text(
            PREAMBLE.format(
                pythons=[tuple(int(n) for n in p.split(".")) for p in pythons],
                machines=MACHINES.get(machine, (machine,)),
                system=system,
            )
        )
        output.parent.mkdir(parents=True, exist_ok=True)
        output.unlink(missing_ok=True)
        shiv = [sys.executable, "-m", "shiv", "--site-packages", str(site), "--console-script", "scorm-appliance"]
        shiv += ["--output-file", str(output), "--python", "/usr/bin/env python3", "--preamble", str(preamble)]
        run([*shiv, "--reproducible"])
    print(f"built {output} ({output.stat().st_size / 1e6:.1f} MB): {system} {machine}, CPython {', '.join(pythons)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
