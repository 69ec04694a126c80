"""Loaded by every Python the docs test starts (PYTHONPATH): loopback only.

A command in README.md or PLAYBOOKS.md that tries to resolve or connect to anything
beyond 127.0.0.1 fails at once with a message naming the host, instead of reaching
the internet.
"""

from __future__ import annotations

import socket
from typing import Any

_LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost", None, ""})
_connect = socket.socket.connect
_connect_ex = socket.socket.connect_ex
_getaddrinfo = socket.getaddrinfo


def _refuse(host: object) -> None:
    raise OSError(f"docs test: the network beyond 127.0.0.1 is off (tried {host!r})")


def _address_host(address: Any) -> object:
    return address[0] if isinstance(address, tuple) else None


def _guarded_connect(self: socket.socket, address: Any) -> None:
    if self.family in (socket.AF_INET, socket.AF_INET6):
        host = _address_host(address)
        if host not in _LOOPBACK:
            _refuse(host)
    _connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: Any) -> int:
    if self.family in (socket.AF_INET, socket.AF_INET6):
        host = _address_host(address)
        if host not in _LOOPBACK:
            _refuse(host)
    return _connect_ex(self, address)


def _guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    name = host.decode() if isinstance(host, bytes) else host
    if name not in _LOOPBACK:
        _refuse(name)
    return _getaddrinfo(host, *args, **kwargs)


socket.socket.connect = _guarded_connect  # type: ignore[method-assign,assignment]
socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign,assignment]
socket.getaddrinfo = _guarded_getaddrinfo
