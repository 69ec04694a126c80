"""`bastion serve`'s HTTP options: who may call (--auth), where (--host), over what (TLS).

Kept apart from cli/serve.py (which parses, builds the service and runs it) so that
the rules about exposure read in one place:

- without --auth every caller is the officer "local", so the service binds loopback
  only: a --host that is not loopback without --auth is refused (exit 2);
- a bad --auth file is refused at start (exit 2, naming file:line);
- --tls-cert and --tls-key go together; a certificate or key that does not load is
  refused at start (exit 2).
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import ssl
from dataclasses import dataclass
from pathlib import Path

from bastion.engine.errors import UsageError
from bastion.service.auth import Authenticator
from bastion.service.http import HttpServer, ServiceView
from bastion.service.metrics import ServiceMetrics

_LOOPBACK_NAMES = frozenset({"localhost"})


def add_http_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--auth",
        metavar="FILE",
        help="principals allowed to call the API (YAML: name, role, token_sha256; see "
        "`bastion auth token`); re-read when it changes, so removing a line revokes a "
        "token at the next request. Without it the API is open to local callers only "
        "and --host must be loopback",
    )
    parser.add_argument(
        "--auth-metrics",
        action="store_true",
        help="with --auth, /metrics, /healthz and /readyz need a token too (role viewer); "
        "by default they stay open for scrapers and load balancers",
    )
    parser.add_argument(
        "--tls-cert",
        metavar="PEM",
        help="serve HTTPS with this certificate (chain) file; needs --tls-key",
    )
    parser.add_argument("--tls-key", metavar="PEM", help="the private key of --tls-cert")


@dataclass(frozen=True, slots=True)
class HttpOptions:
    authenticator: Authenticator | None
    auth_metrics: bool
    tls_cert: str | None
    tls_key: str | None


def http_options(args: argparse.Namespace) -> HttpOptions:
    """The HTTP options, checked before anything starts; UsageError / AuthFileError
    (exit 2) say what is wrong and how to fix it."""
    if bool(args.tls_cert) != bool(args.tls_key):
        raise UsageError("--tls-cert and --tls-key go together: pass both, or neither")
    for flag, path in (("--tls-cert", args.tls_cert), ("--tls-key", args.tls_key)):
        if path and not os.access(path, os.R_OK):
            raise UsageError(f"{flag} {path}: no such file, or not readable")
    if args.auth_metrics and not args.auth:
        raise UsageError("--auth-metrics needs --auth FILE (the tokens to ask for)")
    if not args.auth and not is_loopback(args.host):
        raise UsageError(
            f"--host {args.host} is not a loopback address, and without --auth every caller "
            "may check orders, reset breakers and reload policies as the officer 'local'; "
            "pass --auth FILE (tokens from `bastion auth token NAME --role ROLE`), or bind "
            "127.0.0.1 and put an authenticating proxy in front"
        )
    authenticator = Authenticator(Path(args.auth)) if args.auth else None
    return HttpOptions(authenticator, args.auth_metrics, args.tls_cert, args.tls_key)


def is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name: it may resolve anywhere
        return False


def start_http(
    args: argparse.Namespace, options: HttpOptions, view: ServiceView, metrics: ServiceMetrics
) -> HttpServer:
    """The HTTP server, listening; UsageError (exit 2) when it cannot."""
    http = HttpServer(
        args.host,
        args.port,
        view,
        metrics,
        authenticator=options.authenticator,
        auth_metrics=options.auth_metrics,
        tls_cert=options.tls_cert,
        tls_key=options.tls_key,
    )
    try:
        http.start()
    except ssl.SSLError as error:
        raise UsageError(
            f"--tls-cert {args.tls_cert} / --tls-key {args.tls_key}: cannot be used "
            f"({error.reason or error}); pass a PEM certificate and its private key"
        ) from error
    except OSError as error:
        raise UsageError(
            f"cannot listen on {args.host}:{args.port} ({error.strerror or error}); "
            "pass another --port, or --port 0 for any free one"
        ) from error
    return http
