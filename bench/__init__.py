"""Benchmarks: run from the repository root (see each module's docstring)."""
