"""`python -m bench [NAME [ARGS...]]`: run one benchmark module of this package, or all of them."""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path


def benchmarks() -> list[str]:
    """The modules of this package that define `main(argv)`."""
    names = [m.name for m in pkgutil.iter_modules([str(Path(__file__).parent)]) if not m.name.startswith("_")]
    return sorted(n for n in names if hasattr(importlib.import_module(f"bench.{n}"), "main"))


def main(argv: list[str]) -> int:
    available = benchmarks()
    if argv and argv[0] in ("-h", "--help"):
        print(f"usage: python -m bench [NAME [ARGS...]]; benchmarks: {', '.join(available)}")
        return 0
    if argv:
        name, rest = argv[0], argv[1:]
        if name not in available:
            print(f"unknown benchmark {name!r}; benchmarks: {', '.join(available)}", file=sys.stderr)
            return 2
        return int(importlib.import_module(f"bench.{name}").main(rest) or 0)
    status = 0
    for name in available:
        print(f"== {name}", flush=True)
        status = max(status, int(importlib.import_module(f"bench.{name}").main([]) or 0))
    return status


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
