"""Scale-out on Ray (`bastion serve --ray ADDRESS|local --partitions N`): optional.

Accounts (and their venue feeds) are split across N partition actors, each a whole
single-process `Service` over its own accounts: its own poll and evaluation loop at its
own cadence, its own --state file and its own audit chain (audit/partition-K/). The head
(`head.RayHead`) serves the usual HTTP front: it routes order checks and reports to the
partition that owns the account, merges /api/v1/status and /metrics, and reloads the
policies on every partition behind a version barrier (prepare everywhere, then commit
everywhere between cycles; one partition that cannot prepare aborts the reload).

Only `partition` and `head` import ray (the `bastion-risk[ray]` extra); `accounts`,
`gate`, `metrics_merge` and `audit_chains` are plain Python, used by the CLI without it.
"""
