"""Benchmarks: each result is a ratio against a baseline measured in the same run.

Run them with ``scripts/bench`` (all) or ``scripts/bench mint negotiate`` (some); ``python -m
benchmarks --help`` lists them. They are not tests: the suite never runs them, and a machine busy
with other work moves the numbers (the JSON records the load average before and after).
"""
