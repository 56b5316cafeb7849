"""entrel's benchmark: ``entrel bench --out bench.json``.

Measures the service as it runs (``entrel serve`` over gRPC on loopback)
against the naive way (the same cross-encoder on every (query, item text)
pair of a request) in the same run, the offline precompute throughput, and
how much one nightly run that reads the miss log raises the hit rate of
the same traffic. A benchmark, not a test: it asserts nothing about speed.
"""
