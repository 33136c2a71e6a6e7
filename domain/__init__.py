"""The deterministic core: models and pure rules shared by workflows, activities, the API and tests.

Nothing in this package does I/O, reads the wall clock or draws random numbers, so a workflow can
call it during replay and a unit test can call it without a server.
"""
