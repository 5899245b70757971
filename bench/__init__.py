"""Benchmarks: run with `make bench` (see `bench.signing`)."""
