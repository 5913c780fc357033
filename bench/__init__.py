"""Benchmarks that start the real stack and print figures; docs/BENCHMARKS.md holds what they measured."""
