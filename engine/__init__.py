"""Bastion's pure core: policies, lint, evaluation. No network, no wall clock."""
