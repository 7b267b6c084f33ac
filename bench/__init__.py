"""Benchmarks: `make bench` writes bench/results.md and bench/results.json."""
