"""Intake tests that need a running worker on the real time-skipping server use the workflow tests' one."""

from tests.workflows.conftest import harness  # noqa: F401  (the fixture: a worker on queues of the test's own)
