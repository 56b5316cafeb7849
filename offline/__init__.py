"""Offline jobs: extract, mine queries, precompute, nightly, train, evaluate.

Each job is a function ``run(settings, ...) -> report``; the CLI only calls them.
"""
