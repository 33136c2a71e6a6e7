"""Benchmarks of issue 6: each figure side by side with the raw Temporal engine. Run ``python -m bench``."""
