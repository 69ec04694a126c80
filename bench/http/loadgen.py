"""The load generator: raw HTTP/1.1 keep-alive connections on asyncio, one request in
flight per connection (no pipelining), as a trading system's connection pool does.

Raw sockets rather than an HTTP client library: the client's own cost is a few tens of
microseconds per request, so the figures measure the server, not the generator. Requests
are pre-encoded bytes; a response is read by its Content-Length (chunked bodies are read
too); the body is not parsed, only its first bytes are looked at for the outcome.

- Closed loop (`closed_loop`): N clients, each on its own connection, send the next
  request as soon as the answer to the last one is in. Latency: send to answer.
- Open loop (`open_loop`): requests are due at fixed times (rate R, request i at
  start + i/R), spread round-robin over C connections; a connection sends each request
  at its due time, or as soon as it is free when it is behind. Latency is measured from
  the due time, not the send, so a server that stalls is charged for every request that
  waited behind the stall (no coordinated omission). A request still unsent a timeout
  after its due time is dropped (counted, not sent): the run ends on time even when the
  service cannot keep up.

Every request has a timeout (2 s by default): a request without its answer by then counts
as a timeout and its connection is closed and opened again. Anything but 200 is an error,
and so is a connection that breaks or cannot be opened (a connection failure).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

RECONNECT_PAUSE_S = 0.05  # after a failed connect: do not spin on a dead server
_OUTCOMES = (b'"approved"', b'"downsized"', b'"denied"')
_OUTCOME_WINDOW = 80  # '{"approved": true, "outcome": "approved", ...': the outcome is early


@dataclass(frozen=True, slots=True)
class Target:
    """Where and how to send: loopback host and port, an optional bearer token."""

    host: str
    port: int
    token: str | None = None
    timeout_s: float = 2.0

    def request(self, method: str, path: str, body: bytes = b"") -> bytes:
        """One pre-encoded HTTP/1.1 keep-alive request."""
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        if self.token:
            lines.append(f"Authorization: Bearer {self.token}")
        if method == "POST":
            lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


@dataclass(slots=True)
class Tally:
    """What one phase's requests got (latencies in seconds, one per answered request)."""

    latencies_s: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    timeouts: int = 0
    connection_failures: int = 0
    late_sends: int = 0  # open loop: sent more than 1 ms after the due time
    connects: int = 0  # connections opened: one per client unless the server closes them
    dropped: int = 0  # open loop: still unsent a timeout after its due time (not sent)
    server_header: str = ""

    @property
    def answered(self) -> int:
        return sum(self.statuses.values())

    @property
    def ok(self) -> int:
        return self.statuses[200]

    @property
    def non_200(self) -> int:
        return self.answered - self.ok

    def merge(self, other: Tally) -> None:
        self.latencies_s += other.latencies_s
        self.statuses.update(other.statuses)
        self.outcomes.update(other.outcomes)
        self.timeouts += other.timeouts
        self.connection_failures += other.connection_failures
        self.late_sends += other.late_sends
        self.connects += other.connects
        self.dropped += other.dropped
        self.server_header = self.server_header or other.server_header


class Connection:
    """One keep-alive connection; `exchange` sends a request and reads its response."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self._reader, self._writer = await asyncio.open_connection(
            self.target.host, self.target.port
        )

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None

    @property
    def is_open(self) -> bool:
        return self._writer is not None

    async def exchange(self, payload: bytes) -> tuple[int, bytes, dict[bytes, bytes]]:
        """Status, body and lower-cased headers. Raises ConnectionError, OSError or
        asyncio.IncompleteReadError when the connection breaks."""
        reader, writer = self._reader, self._writer
        if reader is None or writer is None:
            raise ConnectionError("not connected")
        writer.write(payload)
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        headers: dict[bytes, bytes] = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            if name:
                headers[name.strip().lower()] = value.strip()
        if b"content-length" in headers:
            body = await reader.readexactly(int(headers[b"content-length"]))
        elif headers.get(b"transfer-encoding", b"").lower() == b"chunked":
            body = await _read_chunked(reader)
        else:
            body = b""
        # HTTP/1.1 keeps the connection unless told `close`; HTTP/1.0 (http.server's
        # default) closes it unless told `keep-alive`. A close is not an error: the next
        # request opens a new connection, and its latency includes the connect.
        connection = headers.get(b"connection", b"").lower()
        if lines[0].startswith(b"HTTP/1.0"):
            keep = connection == b"keep-alive"
        else:
            keep = connection != b"close"
        if not keep:
            self.close()
        return status, body, headers


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        if size == 0:
            await reader.readuntil(b"\r\n")  # no trailers are sent to us
            return b"".join(parts)
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)


def _outcome(body: bytes) -> str:
    """approved / downsized / denied from the first bytes of a 200's JSON, else other."""
    window = body[:_OUTCOME_WINDOW]
    start = window.find(b'"outcome": ')
    if start >= 0:
        for outcome in _OUTCOMES:
            if window.startswith(outcome, start + 11):
                return outcome.decode().strip('"')
    return "other"


async def _ensure_open(connection: Connection, tally: Tally, deadline: float) -> bool:
    """Open the connection if it is closed; False when it could not be before `deadline`."""
    while not connection.is_open:
        try:
            async with asyncio.timeout(connection.target.timeout_s):
                await connection.open()
            tally.connects += 1
        except (OSError, TimeoutError):
            tally.connection_failures += 1
            if time.perf_counter() + RECONNECT_PAUSE_S >= deadline:
                return False
            await asyncio.sleep(RECONNECT_PAUSE_S)
    return True


async def _send(connection: Connection, payload: bytes, tally: Tally) -> bool:
    """One request; its status and outcome tallied. False when it got no answer."""
    try:
        async with asyncio.timeout(connection.target.timeout_s):
            status, body, headers = await connection.exchange(payload)
    except TimeoutError:
        tally.timeouts += 1
        connection.close()
        return False
    except (
        OSError,
        asyncio.IncompleteReadError,
        asyncio.LimitOverrunError,
        ValueError,
        IndexError,
    ):
        tally.connection_failures += 1  # reset, closed, or not HTTP
        connection.close()
        return False
    tally.statuses[status] += 1
    if status == 200:
        tally.outcomes[_outcome(body)] += 1
    if not tally.server_header:
        tally.server_header = headers.get(b"server", b"none").decode(errors="replace")
    return True


async def closed_loop(
    target: Target, clients: int, duration_s: float, bodies: Sequence[bytes]
) -> tuple[Tally, float]:
    """N clients back to back for `duration_s`: the tally and the wall time it took (from
    the first send to the last answer). Connections are opened before the clock starts."""
    payloads = [target.request("POST", "/api/v1/check", body) for body in bodies]
    connections = [Connection(target) for _ in range(clients)]
    tally = Tally()
    setup_deadline = time.perf_counter() + target.timeout_s
    await asyncio.gather(*(_ensure_open(c, tally, setup_deadline) for c in connections))
    started = time.perf_counter()
    deadline = started + duration_s

    async def client(index: int, connection: Connection) -> Tally:
        own = Tally()
        position = index * len(payloads) // clients  # clients start at different orders
        while time.perf_counter() < deadline:
            sent = time.perf_counter()  # a connect the server made necessary is its cost
            if not await _ensure_open(connection, own, deadline):
                break
            if await _send(connection, payloads[position % len(payloads)], own):
                own.latencies_s.append(time.perf_counter() - sent)
            position += 1
        return own

    tallies = await asyncio.gather(*(client(i, c) for i, c in enumerate(connections)))
    took = time.perf_counter() - started
    for connection in connections:
        connection.close()
    for own in tallies:
        tally.merge(own)
    return tally, took


async def open_loop(
    target: Target, rate: float, connections: int, duration_s: float, bodies: Sequence[bytes]
) -> tuple[Tally, float]:
    """`rate` requests a second due at fixed times for `duration_s`, round-robin over
    `connections`; latency from each request's due time. The tally and the wall time from
    the first due time to the last answer."""
    payloads = [target.request("POST", "/api/v1/check", body) for body in bodies]
    pool = [Connection(target) for _ in range(connections)]
    tally = Tally()
    setup_deadline = time.perf_counter() + target.timeout_s
    await asyncio.gather(*(_ensure_open(c, tally, setup_deadline) for c in pool))
    total = max(1, round(rate * duration_s))
    started = time.perf_counter() + 0.01  # every connection is waiting by then
    deadline = started + duration_s + target.timeout_s

    async def sender(index: int, connection: Connection) -> Tally:
        own = Tally()
        for number in range(index, total, connections):
            due = started + number / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -target.timeout_s:
                own.dropped += 1  # its answer could not come in time any more: not sent
                continue
            elif delay < -0.001:
                own.late_sends += 1
            if not await _ensure_open(connection, own, deadline):
                break
            if await _send(connection, payloads[number % len(payloads)], own):
                own.latencies_s.append(time.perf_counter() - due)
        return own

    tallies = await asyncio.gather(*(sender(i, c) for i, c in enumerate(pool)))
    took = time.perf_counter() - started
    for connection in pool:
        connection.close()
    for own in tallies:
        tally.merge(own)
    return tally, took


async def fetch(target: Target, path: str) -> tuple[int, bytes]:
    """One GET on a connection of its own (readiness, metrics, status)."""
    connection = Connection(target)
    try:
        async with asyncio.timeout(target.timeout_s):
            await connection.open()
            status, body, _ = await connection.exchange(target.request("GET", path))
    finally:
        connection.close()
    return status, body


async def poll_every(
    target: Target, path: str, every_s: float, stop: asyncio.Event
) -> list[tuple[float, bytes]]:
    """GET `path` every `every_s` on one keep-alive connection until `stop` is set:
    (perf_counter time of the answer, body) for each 200. Failures are skipped (the
    load's own tallies count the server's failures)."""
    samples: list[tuple[float, bytes]] = []
    connection = Connection(target)
    payload = target.request("GET", path)
    try:
        while not stop.is_set():
            try:
                async with asyncio.timeout(target.timeout_s):
                    if not connection.is_open:
                        await connection.open()
                    status, body, _ = await connection.exchange(payload)
                if status == 200:
                    samples.append((time.perf_counter(), body))
            except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError, IndexError):
                connection.close()  # opened again on the next round
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every_s)
    finally:
        connection.close()
    return samples
