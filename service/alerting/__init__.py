"""Alert delivery (`bastion serve --alerts FILE`): receivers, routes, groups, silences.

One module per stage: `schema` and `lint` (the file), `config` (frozen objects),
`model` (labelled alerts, fingerprints, notifications), `intake` (the bounded queue off
the evaluation path), `grouping` (groups, dedup, repeat, resolved), `delivery` (one
thread per receiver: outbox, budget, retries), `dispatcher` (the sink wiring them),
`silences` and `api` (POST/GET/DELETE /api/v1/silences), `receivers/` (one per type).
Nothing is imported here: service.alerts imports `model` without the rest.
"""
