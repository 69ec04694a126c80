"""The status page's own files: GET / (the HTML), GET /ui/status.js, /ui/status.css and
/ui/icon.svg.

They hold no data and are open to anyone (as /healthz is), with or without --auth: the
page fetches everything it shows from the JSON API (GET /api/v1/overview, viewer) with
the token the operator typed, and posts resets and silences to the API the same way —
the role table applies to every byte of data and every button. The files are read once
from the package (no CDN, no external font: the page works on an isolated host) and
served with a Content-Security-Policy that allows this origin's script and style only,
no inline script, no frames, no form posts elsewhere.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

STATIC = Path(__file__).with_name("static")
# path -> (file, content type)
FILES = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/ui/status.js": ("status.js", "text/javascript; charset=utf-8"),
    "/ui/status.css": ("status.css", "text/css; charset=utf-8"),
    "/ui/icon.svg": ("icon.svg", "image/svg+xml"),
}
# The page's <meta name="bastion-auth">: with --auth it asks for a token before it asks
# the API anything (no refused request, logged and audited, on every visit).
AUTH_MARK = b"__BASTION_AUTH__"
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


@cache
def _content(name: str, auth: bool) -> bytes:
    return (STATIC / name).read_bytes().replace(AUTH_MARK, b"required" if auth else b"off")


def routes(*, auth: bool) -> list[Route]:
    """The page's routes, for the service's Starlette router (open: they hold no data);
    `auth`: the service runs with --auth (the page asks for a token first)."""

    async def serve(request: Request) -> Response:
        name, content_type = FILES[request.url.path]
        return Response(_content(name, auth), 200, HEADERS, content_type)

    return [Route(path, serve, methods=["GET", "HEAD"]) for path in FILES]
