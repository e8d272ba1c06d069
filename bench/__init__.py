"""Benchmarks: ``python -m bench [--quick] [--only NAME]`` rewrites docs/benchmarks.md.

Each module named in ``bench.__main__.BENCHES`` exposes ``run(quick: bool) -> str`` (a markdown
section) and may expose ``peers() -> dict[str, str]`` (versions of the peers it measures).
This package must import without retrainer: peer workers run in their own venvs.
"""
