"""Benchmarks: each module here with a `main(argv)` is one benchmark; see bench/README.md."""
