"""Evaluation methods: each module registers functions with :func:`entrel.offline.evaluate.method`.

Every module here is imported when the evaluation runs; a new method is a
new module (or a function in one) and nothing else.
"""
