"""What the deploy-kit tests share: where the kit lives and the metric names a live
`bastion serve` really exports.

The names come from the running sim service's `/metrics`, not from a list kept by hand:
every family registered (service/metrics.py, the alert counter, `process_*`) has its
`# TYPE` line there even before it has a sample, and a counter's and a histogram's
sample names are derived the way Prometheus sees them (`_total`; `_bucket`, `_sum`,
`_count`).
"""

from __future__ import annotations

import contextlib
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from tests.conftest import POLICIES, ROOT
from tests.docs.doc_runner import free_port

DEPLOY = ROOT / "deploy"
STARTUP_TIMEOUT_S = 30.0
_TYPE_LINE = re.compile(r"^# TYPE (?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*) (?P<type>\w+)$", re.M)
_SUFFIXES = {
    "counter": ("", "_total"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count"),
    "summary": ("", "_sum", "_count"),
    "untyped": ("",),
    "unknown": ("",),
}
# Prometheus' own series for every target it scrapes.
SCRAPE_SERIES = frozenset({"up", "scrape_duration_seconds", "scrape_samples_scraped"})


def metric_names(exposition: str) -> frozenset[str]:
    """Every sample name a Prometheus scraping `exposition` (text format) can query."""
    names: set[str] = set()
    for match in _TYPE_LINE.finditer(exposition):
        name = match["name"]
        suffixes = _SUFFIXES.get(match["type"], ("",))
        base = name.removesuffix("_total") if match["type"] == "counter" else name
        names.update(base + suffix for suffix in suffixes)
    return frozenset(names)


@contextlib.contextmanager
def running_service(work: Path, *arguments: str) -> Iterator[int]:
    """`bastion serve ARGUMENTS` on a free loopback port (`--port` added), run in `work`
    until /healthz answers; yields the port, then stops it with SIGTERM."""
    bastion = Path(sys.prefix) / "bin" / "bastion"
    port = free_port()
    executable = str(bastion if bastion.exists() else shutil.which("bastion") or "bastion")
    command = [executable, "serve", *arguments, "--port", str(port)]
    log = work / "serve.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            command, cwd=work, stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline and process.poll() is None:
            try:
                get(port, "/healthz")
                break
            except (urllib.error.URLError, OSError):
                time.sleep(0.1)
        else:
            tail = log.read_text(errors="replace")[-2000:]
            raise AssertionError(f"{' '.join(command)} never answered /healthz:\n{tail}")
        yield port
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def get(port: int, path: str, token: str | None = None) -> tuple[int, str]:
    """(status, body) of GET http://127.0.0.1:PORT/PATH, errors included, no proxy."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with opener.open(request, timeout=5) as response:
            return int(response.status), response.read().decode("utf-8")
    except urllib.error.HTTPError as error:
        return int(error.code), error.read().decode("utf-8")


def scrape_live_service(work: Path) -> str:
    """The /metrics text of `bastion serve` on the sim feed (started and stopped here)."""
    arguments = ("--adapter", "sim", "--speed", "60", "--policies", str(POLICIES))
    with running_service(work, *arguments, "--no-audit", "--log-format", "json") as port:
        status, body = get(port, "/metrics")
    assert status == 200, body
    return body


_METRIC_TOKEN = re.compile(r"\b(?:bastion|process)_[a-zA-Z0-9_:]+\b")


def referenced_metrics(expression: str) -> set[str]:
    """The Bastion and process metric names a PromQL expression reads (plus `up`)."""
    without_strings = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expression)
    without_matchers = re.sub(r"\{[^}]*\}", "{}", without_strings)
    names = set(_METRIC_TOKEN.findall(without_matchers))
    names.update(re.findall(r"\bup\b(?=\s*(?:\{|==|$|\)|\s))", without_matchers))
    return names
