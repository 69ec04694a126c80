"""Policy unit tests (`bastion test`): a YAML file of steps over time, each a snapshot
(inline, a file or a delta on the previous one), optional manual resets and order
checks, and the outcome expected. Run through the same engine and authority as the
service, with the time each step names.

Stages, one module each: `schema` (the file's JSON Schema) -> `model` (the file read
and checked, errors at file:line:col) -> `delta` (the snapshot edits) -> `runner`
(steps through `evaluate` and `can_execute`) -> `expect` (the outcome observed and the
difference from the one expected) -> `coverage` (what no test made fire) -> `report`
(text, json, junit).
"""
