"""Benchmarks: scripts that print figures (see docs/benchmarks.md); never imported by the product."""
