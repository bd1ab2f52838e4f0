"""Benchmarks of the actor runtime; run ``python -m benchmarks.run``."""
