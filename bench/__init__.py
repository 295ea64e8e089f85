"""Benchmarks: each ``python -m bench.<name> [--small]`` prints a table and ratios measured side by side.

Not part of the test suite; see ``bench/README.md`` and ``docs/benchmarks.md``.
"""
