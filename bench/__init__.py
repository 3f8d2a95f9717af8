"""Muse's benchmarks. Each prints JSON through `muse bench ...`; figures go into docs/BENCHMARKS.md."""
