"""The Dockerfile and the compose file, read statically; a real build when docker works."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from bastion.cli.main import build_parser
from tests.conftest import ROOT
from tests.deploy.kit import DEPLOY, get, running_service

DOCKERFILE = DEPLOY / "Dockerfile"
COMPOSE = DEPLOY / "compose.yaml"
_PINNED = re.compile(r"^[\w.\-/]+:(?P<tag>[\w.\-]+)$")


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    result = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            word, _, rest = stripped.partition(" ")
            result.append((word.upper(), rest.strip()))
    return result


def _args() -> dict[str, str]:
    return dict(
        rest.split("=", 1) for word, rest in _instructions() if word == "ARG" and "=" in rest
    )


def _images() -> list[str]:
    args = _args()
    images = []
    for word, rest in _instructions():
        if word == "FROM":
            image = rest.split()[0]
            images.append(re.sub(r"\$\{(\w+)\}", lambda m: args[m[1]], image))
    return images


def test_dockerfile_when_parsed_then_the_service_runs_as_a_non_root_user() -> None:
    """The last USER is a named unprivileged user, not root or uid 0."""
    users = [rest for word, rest in _instructions() if word == "USER"]
    assert users, "no USER: the service would run as root"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}


def test_dockerfile_when_parsed_then_healthcheck_asks_healthz() -> None:
    """HEALTHCHECK calls /healthz on the port the service listens on."""
    checks = [rest for word, rest in _instructions() if word == "HEALTHCHECK"]
    assert len(checks) == 1
    assert "http://127.0.0.1:9108/healthz" in checks[0]
    assert ("EXPOSE", "9108") in _instructions()


def test_dockerfile_when_parsed_then_base_images_are_slim_and_pinned() -> None:
    """Every FROM is a pinned, slim Python image (or an earlier stage): no `latest`."""
    images = _images()
    assert images
    for image in images:
        match = _PINNED.match(image)
        assert match, f"{image}: no tag"
        assert match["tag"] != "latest"
        assert "slim" in match["tag"]


def test_dockerfile_when_parsed_then_it_installs_the_built_wheel_offline() -> None:
    """The runtime stage installs bastion-risk from the wheels built in the first stage,
    with --no-index: nothing is fetched at install time that was not built there."""
    runs = [rest for word, rest in _instructions() if word == "RUN"]
    assert any("pip wheel" in run and "--wheel-dir /wheels ." in run for run in runs)
    assert any("--no-index --find-links /wheels bastion-risk" in run for run in runs)


def test_dockerfile_when_parsed_then_cmd_is_a_serve_command_bastion_accepts() -> None:
    """ENTRYPOINT + CMD is `bastion serve ...` with --auth (it binds 0.0.0.0)."""
    entry = [rest for word, rest in _instructions() if word == "ENTRYPOINT"]
    cmd = [rest for word, rest in _instructions() if word == "CMD"]
    assert yaml.safe_load(entry[-1]) == ["bastion"]
    argv = yaml.safe_load(cmd[-1])
    args = build_parser().parse_args(argv)
    assert args.command == "serve"
    assert args.host == "0.0.0.0"
    assert args.auth == "/etc/bastion/principals.yaml"


def test_dockerfile_when_cmd_run_natively_then_probes_open_and_api_closed(
    tmp_path: Path,
) -> None:
    """The image's command, run here with the image's files mapped to this checkout (and
    loopback instead of 0.0.0.0, a closed port for the Alertmanager): the --alerts file
    loads, /healthz and /metrics answer without a token, the shipped empty principals
    file lets nobody call the API."""
    argv = yaml.safe_load([rest for word, rest in _instructions() if word == "CMD"][-1])
    alerts = tmp_path / "alerts.yaml"  # the compose Alertmanager's address: nothing listens
    shipped = (DEPLOY / "alerts.yaml").read_text()
    alerts.write_text(shipped.replace("http://alertmanager:9093", "http://127.0.0.1:9"))
    mapped = {
        "/etc/bastion/policies": str(ROOT / "policies"),
        "/etc/bastion/principals.yaml": str(DEPLOY / "principals.yaml"),
        "/var/lib/bastion/state.json": str(tmp_path / "state.json"),
        "/etc/bastion/alerts.yaml": str(alerts),
        "0.0.0.0": "127.0.0.1",
    }
    arguments = [mapped.get(word, word) for word in argv[1:]]
    port_at = arguments.index("--port")
    del arguments[port_at : port_at + 2]  # running_service picks a free one
    with running_service(tmp_path, *arguments) as port:
        assert get(port, "/healthz")[0] == 200
        status, metrics = get(port, "/metrics")
        assert status == 200 and "bastion_evaluations_total" in metrics
        assert get(port, "/api/v1/status")[0] == 401
    assert (tmp_path / "state.json").exists()
    assert (tmp_path / "audit").is_dir()  # the trail beside the state file: in the volume


def test_dockerfile_when_parsed_then_every_copied_path_exists_and_is_not_ignored() -> None:
    """Each COPY source (from the build context, the repository root) exists and is let
    through by deploy/Dockerfile.dockerignore."""
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    for word, rest in _instructions():
        if word != "COPY" or rest.startswith("--from"):
            continue
        sources = shlex.split(rest)[:-1]
        for source in sources:
            assert (ROOT / source).exists(), source
            assert source.rstrip("/") in allowed or source.split("/")[0] in allowed, source


def test_compose_when_parsed_then_images_are_pinned_and_files_exist() -> None:
    """Every image has a version tag (never `latest`), every mounted file exists, and
    the four services are there."""
    compose = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    services = compose["services"]
    assert set(services) == {"bastion", "prometheus", "alertmanager", "grafana"}
    for name, service in services.items():
        image = service["image"]
        match = _PINNED.match(image)
        assert match and match["tag"] != "latest", f"{name}: {image}"
        assert re.search(r"\d", match["tag"]), f"{name}: {image} is not a version"
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"{name}: {volume}"
    build = services["bastion"]["build"]
    assert (DEPLOY / build["context"] / build["dockerfile"]).resolve() == DOCKERFILE


def test_compose_when_docker_compose_present_then_config_validates() -> None:
    """`docker compose config` accepts the file (needs the compose plugin, not a daemon)."""
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("docker is not installed")
    probe = subprocess.run(
        [docker, "compose", "version"], capture_output=True, text=True, check=False
    )
    if probe.returncode != 0:
        pytest.skip("the docker compose plugin is not installed")
    result = subprocess.run(
        [docker, "compose", "-f", str(COMPOSE), "config", "--quiet"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def _docker_daemon() -> bool:
    docker = shutil.which("docker")
    if docker is None:
        return False
    probe = subprocess.run(
        [docker, "info"], capture_output=True, text=True, timeout=30, check=False
    )
    return probe.returncode == 0


@pytest.mark.slow
def test_docker_build_when_daemon_available_then_image_runs_as_bastion() -> None:
    """A real build when a docker daemon answers (needs the base image locally or a
    registry): the image's user is `bastion` and `bastion --version` runs in it."""
    if not _docker_daemon():
        pytest.skip("no docker daemon answers `docker info` on this machine")
    tag = "bastion-risk:test"
    build = subprocess.run(
        ["docker", "build", "-q", "-f", str(DOCKERFILE), "-t", tag, str(ROOT)],
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    assert build.returncode == 0, build.stderr[-3000:]
    user = subprocess.run(
        ["docker", "image", "inspect", "-f", "{{.Config.User}}", tag],
        capture_output=True,
        text=True,
        check=True,
    )
    assert user.stdout.strip() == "bastion:bastion"
    version = subprocess.run(
        ["docker", "run", "--rm", tag, "--version"], capture_output=True, text=True, check=False
    )
    assert version.returncode == 0 and version.stdout.startswith("bastion "), version.stderr
