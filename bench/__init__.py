"""Benchmarks: figures printed and written to docs/benchmarks.md, never asserted on."""
