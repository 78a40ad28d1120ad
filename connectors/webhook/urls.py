"""Which webhook URLs the hub may call: never, unless configured to, an address inside a network.

A webhook URL is chosen by a user; without this check the hub would be a proxy into its own network
(cloud metadata at 169.254.169.254, databases on 10.x, admin pages on 127.0.0.1). The host is resolved
and every address it resolves to must be public. Checked when the URL is saved and again before each
send (DNS can change in between); redirects are never followed.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit


class UnsafeURL(ValueError):
    pass


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def check(url: str, *, allow_private: bool = False) -> str:
    """The URL, if the hub may post to it; UnsafeURL says why not."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeURL("must be an http:// or https:// URL with a host")
    if parts.username or parts.password:
        raise UnsafeURL("must not carry a user name or password")
    if len(url) > 2000:
        raise UnsafeURL("is longer than 2000 characters")
    if allow_private:
        return url
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
    except (socket.gaierror, UnicodeError):
        raise UnsafeURL(f"host {parts.hostname!r} does not resolve") from None
    for info in infos:
        address = str(info[4][0])
        if not _public(address):
            raise UnsafeURL(f"host {parts.hostname!r} resolves to a non-public address ({address})")
    return url


def allowed_private(value: object) -> bool:
    return str(value or "").strip().lower() in ("1", "true", "yes", "on")
