"""Run the console blocks of a document section in a scratch copy of the repository.

Each ``##`` section runs in its own copy of the files the documents use (policies,
examples, schemas, ...), with ``.venv`` linked to the virtualenv running the tests and
its ``bin`` first on PATH, a scratch HOME and TMPDIR, no venue keys, proxies pointing
at a closed loopback port and a ``sitecustomize`` that refuses any connection or name
look-up beyond the loopback interface: nothing a document says can reach the internet.

A block's commands run one after the other in one bash session (``cd`` and ``export``
carry over inside the block), each with its own output and exit code. A ``background``
block starts its server on a free port (``--port`` is set or replaced) and every
``127.0.0.1:PORT`` / ``localhost:PORT`` of the following commands of the section is
pointed at it; the server is stopped with SIGTERM at the end of the section.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from tests.docs.doc_blocks import Block, Command, output_matches

ROOT = Path(__file__).resolve().parents[2]
OFFLINE_SITE = Path(__file__).resolve().parent / "offline"
# What the documents' commands read; each section gets a fresh copy.
COPIED = (
    "policies",
    "examples",
    "schemas",
    "docs",
    "README.md",
    "PLAYBOOKS.md",
    "CHANGELOG.md",
    "pyproject.toml",
    ".pre-commit-hooks.yaml",
    "deploy",
)
BLOCK_TIMEOUT_S = 60.0
READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0
OUTPUT_TAIL_LINES = 25
DEFAULT_PORT = 9108
DEAD_PROXY = "http://127.0.0.1:9"  # discard port: nothing listens, a proxied request fails
_SECRET = re.compile(r"(_KEY|_SECRET|_TOKEN|PASSWORD|PROXY)", re.IGNORECASE)
_PORT_OPTION = re.compile(r"--port[= ](?P<port>\d+)")
_SERVE = re.compile(r"\bbastion serve\b")


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one command did."""

    command: Command
    exit_code: int | None  # None: it never finished
    output: str


def make_scratch(directory: Path) -> Path:
    """A copy of the files the documents use, with `.venv` linked to the running venv."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in COPIED:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, directory / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif source.exists():
            shutil.copy2(source, directory / name)
    (directory / ".venv").symlink_to(Path(sys.prefix), target_is_directory=True)
    return directory


def offline_environ(scratch: Path) -> dict[str, str]:
    """The environment every command runs in: the venv first on PATH, no keys, no way out."""
    home = scratch.parent / "home"
    temp = scratch.parent / "tmp"
    home.mkdir(exist_ok=True)
    temp.mkdir(exist_ok=True)
    env = {name: value for name, value in os.environ.items() if not _SECRET.search(name)}
    env.pop("PYTHONPATH", None)
    venv_bin = str(Path(sys.prefix) / "bin")
    env.update(
        {
            "PATH": os.pathsep.join([venv_bin, env.get("PATH", "/usr/bin:/bin")]),
            "VIRTUAL_ENV": sys.prefix,
            "HOME": str(home),
            "TMPDIR": str(temp),
            # Ray puts its Unix sockets under its temp dir; the scratch one is longer than
            # a socket path may be (108 bytes): `bastion serve --ray` needs a short one.
            "RAY_TMPDIR": "/tmp",
            "PYTHONPATH": str(OFFLINE_SITE),
            "PYTHONIOENCODING": "utf-8",
            "PYTHONDONTWRITEBYTECODE": "1",
            "LC_ALL": "C.UTF-8",
            "COLUMNS": "100",
            "TERM": "dumb",
            "NO_COLOR": "1",
        }
    )
    for name in ("http_proxy", "https_proxy", "all_proxy", "ftp_proxy"):
        env[name] = env[name.upper()] = DEAD_PROXY
    env["no_proxy"] = env["NO_PROXY"] = "127.0.0.1,localhost,::1"
    return env


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def point_at(text: str, ports: dict[int, int]) -> str:
    """`text` with every loopback URL of a documented port moved to the test's port."""
    for documented, actual in ports.items():
        text = re.sub(rf"\b(127\.0\.0\.1|localhost):{documented}\b", rf"\1:{actual}", text)
    return text


def run_block(
    block: Block, scratch: Path, env: dict[str, str], ports: dict[int, int]
) -> list[Outcome]:
    """Run the block's commands in one bash session; one outcome per command."""
    runnable = [command for command in block.commands if not command.excluded]
    if not runnable:
        return []
    results = scratch.parent / f"results-{block.line}"
    results.mkdir()
    script = [f"cd {_quote(scratch)}"]
    for index, command in enumerate(runnable):
        out, code = results / f"{index}.out", results / f"{index}.rc"
        # The trap records the code of a command that ends the shell (`exit 3`).
        script.append(
            f"trap 'echo $? >{_quote(code)}' EXIT\n"
            f"{{\n{point_at(command.text, ports)}\n}} >{_quote(out)} 2>&1 </dev/null\n"
            f"docs_test_code=$?; trap - EXIT; echo $docs_test_code >{_quote(code)}"
        )
    session = subprocess.Popen(
        ["bash", "-c", "\n".join(script)],
        cwd=scratch,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    why_missing = "not run: an earlier command of the block ended the shell"
    try:
        shell_output, _ = session.communicate(timeout=BLOCK_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        _kill_group(session)
        shell_output, _ = session.communicate()
        why_missing = f"did not finish within the block's {BLOCK_TIMEOUT_S:.0f} s"
    outcomes = []
    for index, command in enumerate(runnable):
        out, code = results / f"{index}.out", results / f"{index}.rc"
        output = out.read_text(encoding="utf-8", errors="replace") if out.exists() else ""
        if not code.exists():
            shell = shell_output.decode("utf-8", errors="replace")
            output += f"\n[{why_missing}]\n{shell}"
        exit_code = int(code.read_text()) if code.exists() else None
        outcomes.append(Outcome(command, exit_code, output))
    return outcomes


@dataclass
class Server:
    """A background block's server, running for the rest of its section."""

    command: Command
    process: subprocess.Popen[bytes]
    log: Path
    documented_port: int
    port: int

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


def start_server(block: Block, scratch: Path, env: dict[str, str]) -> tuple[Server, str | None]:
    """Start the block's command on a free port; wait until `ready_path` answers 200.

    Returns the server and None, or the server and why it is not ready."""
    command = block.commands[0]
    port = free_port()
    text, documented = _with_port(command.text, port)
    log = scratch.parent / f"server-{block.line}.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            ["bash", "-c", text],
            cwd=scratch,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(command, process, log, documented or DEFAULT_PORT, port)
    if documented is None:
        return server, "a background command must be `bastion serve ...` (its port is set)"
    url = f"http://127.0.0.1:{port}{block.ready_path}"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    waited = block.ready_timeout_s or READY_TIMEOUT_S
    deadline = time.monotonic() + waited
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return server, f"it exited with {process.returncode} before {url} answered 200"
        try:
            with opener.open(url, timeout=2) as response:
                if response.status == 200:
                    return server, None
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    return server, f"{url} did not answer 200 within {waited:.0f} s"


def stop_server(server: Server) -> int | None:
    """SIGTERM, then wait; the exit code, or None when it had to be killed."""
    if server.process.poll() is not None:
        return server.process.returncode
    server.process.send_signal(signal.SIGTERM)
    try:
        return server.process.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        _kill_group(server.process)
        server.process.wait()
        return None


def describe(outcome: Outcome, wanted_exit: int, problem: str) -> str:
    """A failure as a reader wants it: where, the command, what went wrong, the output's tail."""
    lines = [
        f"{outcome.command.where}: {problem}",
        *(
            f"    $ {line}" if n == 0 else f"      {line}"
            for n, line in enumerate(outcome.command.text.splitlines())
        ),
        f"  exit code {outcome.exit_code}, the document expects {wanted_exit}",
        f"  output (last {OUTPUT_TAIL_LINES} lines):",
        *(f"    | {line}" for line in tail(outcome.output)),
    ]
    return "\n".join(lines)


def check(outcome: Outcome, wanted_exit: int) -> str | None:
    """None when the command did what the document says; else the failure, described."""
    if outcome.exit_code != wanted_exit:
        return describe(outcome, wanted_exit, "wrong exit code")
    missing = output_matches(outcome.command.expected, outcome.output)
    if missing is not None:
        return describe(outcome, wanted_exit, f"the output has no line matching {missing!r}")
    return None


def tail(output: str, count: int = OUTPUT_TAIL_LINES) -> Iterable[str]:
    lines = output.rstrip("\n").splitlines()
    return lines[-count:] if lines else ["(no output)"]


def _with_port(text: str, port: int) -> tuple[str, int | None]:
    option = _PORT_OPTION.search(text)
    if option:
        start, end = option.span("port")
        return text[:start] + str(port) + text[end:], int(option["port"])
    if _SERVE.search(text):
        return _SERVE.sub(f"bastion serve --port {port}", text, count=1), DEFAULT_PORT
    return text, None


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


def _quote(path: Path) -> str:
    return "'" + str(path).replace("'", "'\\''") + "'"
