"""Temporal workflows: orchestration only. No I/O, no wall clock, no randomness; rules come from ``domain``."""
