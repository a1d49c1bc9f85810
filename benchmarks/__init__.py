"""Benchmarks against the official ``openai`` package: ``python -m benchmarks``.

See ``benchmarks/run.py`` for what runs, and ``docs/performance.md`` for the
results and how they were obtained.
"""
