"""--tls-cert / --tls-key: HTTPS served directly, with a self-signed certificate made in
the test (the `openssl` command: the `cryptography` package is not installed here)."""

from __future__ import annotations

import argparse
import shutil
import ssl
import subprocess
import urllib.error
from pathlib import Path

import pytest

from bastion.cli.main import main
from bastion.cli.serve_http import HttpOptions, start_http
from bastion.engine.errors import UsageError
from bastion.service.metrics import ServiceMetrics
from tests.service.http_support import (  # noqa: F401
    FakeView,
    bearer,
    call,
    default_logging,
    serving,
    write_auth_file,
)

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key (PEM), valid one day."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
        timeout=60,
    )  # fmt: skip
    return cert, key


def test_serve_when_tls_configured_then_https_with_auth(
    certificate: tuple[Path, Path], tmp_path: Path
) -> None:
    """With a certificate and key the server speaks HTTPS (its url says so), and the
    token still decides: a client that trusts the certificate gets its answers."""
    cert, key = certificate
    auth = write_auth_file(tmp_path / "principals.yaml")
    trusted = ssl.create_default_context(cafile=str(cert))
    with serving(FakeView(), auth_file=auth, tls_cert=str(cert), tls_key=str(key)) as http:
        assert http.url.startswith("https://127.0.0.1:")
        reply = call(http.url + "/api/v1/status", headers=bearer("vera"), context=trusted)
        assert reply.status == 200
        assert call(http.url + "/api/v1/status", context=trusted).status == 401


def test_serve_when_tls_then_plain_http_gets_no_answer(certificate: tuple[Path, Path]) -> None:
    """Plain HTTP to the TLS port is not served."""
    cert, key = certificate
    with serving(FakeView(), tls_cert=str(cert), tls_key=str(key)) as http:
        plain = http.url.replace("https://", "http://")
        with pytest.raises((urllib.error.URLError, ConnectionError)):
            call(plain + "/healthz")


def test_start_http_when_certificate_unusable_then_usage_error(
    certificate: tuple[Path, Path], tmp_path: Path
) -> None:
    """A certificate that does not load stops `bastion serve` at start (exit 2)."""
    key = certificate[1]
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate\n")
    args = argparse.Namespace(host="127.0.0.1", port=0, tls_cert=str(bad), tls_key=str(key))
    options = HttpOptions(None, False, str(bad), str(key))
    with pytest.raises(UsageError, match=r"--tls-cert .*bad\.pem .* cannot be used"):
        start_http(args, options, FakeView(), ServiceMetrics())


def test_serve_when_certificate_missing_then_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A --tls-cert that does not exist is refused before anything starts."""
    missing = str(tmp_path / "nope.pem")
    assert main(["serve", "--tls-cert", missing, "--tls-key", missing]) == 2
    assert f"--tls-cert {missing}: no such file" in capsys.readouterr().err
