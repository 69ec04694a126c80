"""Evaluating a snapshot against the compiled policy set: the passes (facts, breakers,
escalation, roll rules) and the compiled set the order authority shares."""
