"""The Kubernetes manifests (deploy/kubernetes/): every object validated against the
Kubernetes JSON schemas of a pinned version, offline (kubernetes-validate bundles them;
strict, so a misspelt field fails), and what matters to Bastion asserted: one writer,
non-root and read-only, the probes, real `bastion serve` flags, a policies ConfigMap
mounted as a directory and listing exactly policies/*.yaml. `kubectl kustomize` renders
the kustomization when kubectl exists."""

from __future__ import annotations

import argparse
import re
import shutil
import socket
import subprocess
from pathlib import Path, PurePosixPath
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml

from bastion.cli.main import build_parser
from bastion.service.auth import load_auth_file
from tests.conftest import POLICIES, ROOT
from tests.deploy.kit import DEPLOY

KUBE = DEPLOY / "kubernetes"
KUSTOMIZATION = KUBE / "kustomization.yaml"
SERVICE_MONITOR = KUBE / "servicemonitor.yaml"
# The Kubernetes version the manifests are checked against; raise it on purpose.
KUBERNETES_VERSION = "1.32.0"
PORT = 9108
UID = 10001


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _kustomization() -> dict[str, Any]:
    data: dict[str, Any] = _load(KUSTOMIZATION)
    return data


def _resources() -> list[Path]:
    return [KUBE / name for name in _kustomization()["resources"]]


def _object(kind: str) -> dict[str, Any]:
    for path in _resources():
        data: dict[str, Any] = _load(path)
        if data["kind"] == kind:
            return data
    raise AssertionError(f"no {kind} among the kustomization's resources")


def _pod() -> dict[str, Any]:
    spec: dict[str, Any] = _object("Deployment")["spec"]["template"]["spec"]
    return spec


def _container() -> dict[str, Any]:
    (container,) = _pod()["containers"]
    assert isinstance(container, dict)
    return container


def _args() -> dict[str, str]:
    """The container's `--flag value` pairs after `serve`."""
    args = [str(arg) for arg in _container()["args"]]
    assert args[0] == "serve"
    return dict(zip(args[1::2], args[2::2], strict=True))


def _volume(name: str) -> dict[str, Any]:
    for volume in _pod()["volumes"]:
        if volume["name"] == name:
            assert isinstance(volume, dict)
            return volume
    raise AssertionError(f"no volume {name}")


def _mount(name: str) -> dict[str, Any]:
    for mount in _container()["volumeMounts"]:
        if mount["name"] == name:
            assert isinstance(mount, dict)
            return mount
    raise AssertionError(f"no volumeMount {name}")


def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any network connection attempted from here on fails the test."""

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("network access during schema validation")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.mark.parametrize("path", _resources(), ids=lambda p: p.name)
def test_validate_when_manifest_checked_offline_then_it_matches_the_pinned_schema(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each resource of the kustomization is valid for the pinned Kubernetes version,
    in strict mode (unknown fields refused), without touching the network."""
    _offline(monkeypatch)
    checked = kubernetes_validate.validate(_load(path), KUBERNETES_VERSION, strict=True)
    assert checked == KUBERNETES_VERSION.rsplit(".", 1)[0]


def test_validate_when_field_misspelt_then_the_schema_refuses_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A typo (readinesProbe) fails validation: the check really catches mistakes."""
    _offline(monkeypatch)
    deployment = _object("Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["readinesProbe"] = container.pop("readinessProbe")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


def test_deployment_when_read_then_one_replica_is_recreated_never_rolled() -> None:
    """One writer of the state file and audit chain: replicas 1, strategy Recreate."""
    spec = _object("Deployment")["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "Recreate"}
    assert _object("PersistentVolumeClaim")["spec"]["accessModes"] == ["ReadWriteOnce"]


def test_deployment_when_read_then_it_runs_non_root_read_only_without_capabilities() -> None:
    """uid 10001 as in deploy/Dockerfile, read-only root, no privilege escalation, no
    capabilities, an emptyDir for /tmp, requests and limits."""
    pod = _pod()
    container = _container()
    context = container["securityContext"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == UID
    assert context["runAsNonRoot"] is True
    assert context["runAsUser"] == UID
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"]["drop"] == ["ALL"]
    assert "add" not in context["capabilities"]
    assert _mount("tmp")["mountPath"] == "/tmp"
    assert "emptyDir" in _volume("tmp")
    for kind in ("requests", "limits"):
        assert set(container["resources"][kind]) == {"cpu", "memory"}
    dockerfile = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(rf"--uid {UID}\b", dockerfile)


def test_probes_when_read_then_liveness_is_healthz_and_readiness_is_readyz() -> None:
    """Liveness asks /healthz, readiness /readyz, both on the port the service listens on."""
    container = _container()
    (port,) = container["ports"]
    assert port["containerPort"] == PORT
    assert _args()["--port"] == str(PORT)
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        check = container[probe]["httpGet"]
        assert check["path"] == path
        assert check["port"] in (port["name"], PORT)


def test_args_when_parsed_by_the_real_parser_then_every_flag_exists() -> None:
    """The container's args are a `bastion serve` the real argparse parser accepts, with
    the paths the mounts provide."""
    args = [str(arg) for arg in _container()["args"]]
    (commands,) = [
        action
        for action in build_parser()._actions
        if isinstance(action, argparse._SubParsersAction)
    ]
    serve = commands.choices["serve"]
    known = {flag for action in serve._actions for flag in action.option_strings}
    for word in args[1:]:
        if word.startswith("-"):
            assert word in known, f"bastion serve has no flag {word}"
    try:
        parsed = build_parser().parse_args(args)
    except SystemExit as exit_:  # argparse: an unknown flag or a bad value
        pytest.fail(f"bastion {' '.join(args)} does not parse ({exit_})")
    assert parsed.host == "0.0.0.0"
    flags = _args()
    assert flags["--auth"] == "/etc/bastion/auth/principals.yaml"
    assert flags["--policies"] == "/etc/bastion/policies"
    assert flags["--state"] == "/var/lib/bastion/state.json"
    assert flags["--audit"] == "/var/lib/bastion/audit"
    assert _mount("policies")["mountPath"] == flags["--policies"]
    assert _mount("auth")["mountPath"] == str(PurePosixPath(flags["--auth"]).parent)
    state = PurePosixPath(_mount("state")["mountPath"])
    assert PurePosixPath(flags["--state"]).parent == state
    assert PurePosixPath(flags["--audit"]).is_relative_to(state)


def test_mounts_when_read_then_configmap_and_secret_are_whole_directories() -> None:
    """No subPath anywhere: a subPath mount never sees the kubelet's ..data swap."""
    assert _volume("policies")["configMap"]["name"] == "bastion-policies"
    assert _volume("auth")["secret"]["secretName"] == "bastion-auth"
    assert "persistentVolumeClaim" in _volume("state")
    for mount in _container()["volumeMounts"]:
        assert "subPath" not in mount and "subPathExpr" not in mount, mount["name"]
    assert _mount("policies")["readOnly"] is True
    assert _mount("auth")["readOnly"] is True


def test_audit_key_when_read_then_it_comes_from_a_required_secret() -> None:
    """BASTION_AUDIT_KEY from a Secret, not optional: no unkeyed trail by accident."""
    (variable,) = [v for v in _container()["env"] if v["name"] == "BASTION_AUDIT_KEY"]
    reference = variable["valueFrom"]["secretKeyRef"]
    assert reference["key"] == "BASTION_AUDIT_KEY"
    assert reference.get("optional", False) is False
    assert "value" not in variable


def test_image_when_read_then_it_is_the_one_deploying_builds() -> None:
    """The Deployment runs the image README "Deploying" builds (deploy/compose.yaml)."""
    compose = _load(DEPLOY / "compose.yaml")
    assert _container()["image"] == compose["services"]["bastion"]["image"]


def test_kustomization_when_read_then_configmap_lists_exactly_the_shipped_policies() -> None:
    """The generated ConfigMap holds every policies/*.yaml and nothing else, under a fixed
    name (no hash suffix) so that it is updated in place."""
    (generator,) = _kustomization()["configMapGenerator"]
    assert generator["name"] == _volume("policies")["configMap"]["name"]
    listed = sorted(PurePosixPath(entry).name for entry in generator["files"])
    assert listed == sorted(path.name for path in POLICIES.glob("*.yaml"))
    for entry in generator["files"]:
        assert (KUBE / entry).resolve() == POLICIES / PurePosixPath(entry).name
    assert generator["options"]["disableNameSuffixHash"] is True


def test_kustomization_when_read_then_auth_secret_holds_only_token_hashes() -> None:
    """The bastion-auth Secret is generated from principals.yaml, a valid --auth file
    with token_sha256 values only (no token in clear), updated in place."""
    (generator,) = _kustomization()["secretGenerator"]
    assert generator["name"] == "bastion-auth"
    assert generator["files"] == ["principals.yaml"]
    assert generator["options"]["disableNameSuffixHash"] is True
    assert load_auth_file(KUBE / "principals.yaml") == ()
    principals = _load(KUBE / "principals.yaml")["principals"]
    for principal in principals:
        assert set(principal) == {"name", "role", "token_sha256"}


def test_service_when_read_then_it_selects_the_pod_and_exposes_the_named_port() -> None:
    """The Service `bastion` (the alert rules' job) reaches the pod's http port, and the
    pod carries scrape annotations for the same port."""
    service = _object("Service")
    pod_labels = _object("Deployment")["spec"]["template"]["metadata"]["labels"]
    assert service["metadata"]["name"] == "bastion"
    assert service["spec"]["selector"].items() <= pod_labels.items()
    (port,) = service["spec"]["ports"]
    assert port["port"] == PORT and port["targetPort"] == "http"
    annotations = _object("Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == str(PORT)
    assert annotations["prometheus.io/path"] == "/metrics"


def test_servicemonitor_when_read_then_it_is_optional_and_scrapes_the_service(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The ServiceMonitor (a Prometheus Operator CRD: no Kubernetes schema for it) is
    kept out of the kustomization and points at the Service's http port."""
    _offline(monkeypatch)
    monitor = _load(SERVICE_MONITOR)
    assert SERVICE_MONITOR.name not in _kustomization()["resources"]
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["kind"] == "ServiceMonitor"
    with pytest.raises(kubernetes_validate.SchemaNotFoundError):
        kubernetes_validate.validate(monitor, KUBERNETES_VERSION, strict=True)
    service = _object("Service")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= (
        service["metadata"]["labels"].items()
    )
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] == service["spec"]["ports"][0]["name"]
    assert endpoint["path"] == "/metrics"


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kustomize_when_rendered_then_every_object_validates_and_holds_the_policies(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`kubectl kustomize --load-restrictor LoadRestrictionsNone` (the README command)
    renders the kit; each object validates, the ConfigMap holds the policy files as they
    are, and plain `kubectl kustomize` refuses the files outside the directory."""
    command = ["kubectl", "kustomize", "--load-restrictor", "LoadRestrictionsNone", str(KUBE)]
    rendered = subprocess.run(command, capture_output=True, text=True, timeout=60, check=True)
    objects = list(yaml.safe_load_all(rendered.stdout))
    assert sorted(obj["kind"] for obj in objects) == [
        "ConfigMap",
        "Deployment",
        "PersistentVolumeClaim",
        "Secret",
        "Service",
    ]
    _offline(monkeypatch)
    for obj in objects:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    (config_map,) = [obj for obj in objects if obj["kind"] == "ConfigMap"]
    assert config_map["metadata"]["name"] == "bastion-policies"
    assert config_map["data"] == {
        path.name: path.read_text(encoding="utf-8") for path in POLICIES.glob("*.yaml")
    }
    monkeypatch.undo()
    refused = subprocess.run(
        ["kubectl", "kustomize", str(KUBE)], check=False, capture_output=True, text=True, timeout=60
    )
    assert refused.returncode != 0
    assert "policies" in refused.stderr  # "... is not in or below deploy/kubernetes"


def test_readme_when_read_then_kubernetes_section_names_the_render_command() -> None:
    """README "Running on Kubernetes" shows the command the kustomization comment shows."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Running on Kubernetes", 1)[1].split("\n## ", 1)[0]
    assert "kubectl kustomize --load-restrictor LoadRestrictionsNone deploy/kubernetes" in section
    assert "kubectl kustomize --load-restrictor LoadRestrictionsNone deploy/kubernetes" in (
        KUSTOMIZATION.read_text(encoding="utf-8")
    )
