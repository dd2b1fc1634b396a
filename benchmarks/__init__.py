"""Reproducible latency and throughput runs (``python -m benchmarks``)."""
