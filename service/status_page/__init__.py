"""The status page: `GET /` on the service, for an operator at 3 a.m.

- `page`: the HTML, script and style, served by the service itself (open: no data);
- `overview`: GET /api/v1/overview (viewer), everything the page shows as JSON, and
  GET /api/v1/snapshot (viewer), the last cycle's snapshot;
- `activity`: the recent past the page shows (decisions, trips, alerts, reloads),
  bounded, in memory.

The page asks for a token once (kept in the tab's sessionStorage), reads the overview
with it every few seconds and shows the reset and silence buttons only to the roles
that may use them (`overview.BUTTONS`); the API enforces the roles regardless.
"""
