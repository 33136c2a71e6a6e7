"""The strategy lab: a portfolio simulator on the real rules (issue 17).

The workflows decide every contact with pure functions of ``domain/`` (``next_action``, the contact
gate, the call governor, the fallback and visit rules). The lab calls the same functions over a
simulated clock, with no Temporal and no database, so a policy can be tried on a portfolio in
seconds. ``tests/lab/test_differential.py`` runs the same accounts through the real workflows and
requires the same contacts: when the two differ, the simulator is wrong.
"""
