"""Host names in one canonical form: IDNA (punycode) ASCII, lower-case, no port, no trailing dot.

Browsers send ``Origin`` with the ASCII form (``https://xn--80atjc.xn--p1ai``) while agencies type the
Unicode one (``окна.рф``), sometimes as a URL with a scheme, port or path; comparing both in this form makes
them equal. UTS 46 mapping is what browsers apply to what is typed in an address bar.
"""

from __future__ import annotations

import re
from functools import lru_cache
from urllib.parse import urlsplit

import idna

# Hosts IDNA refuses but browsers still reach (underscores in intranet names, IPv6 literals).
_PLAIN_ASCII = re.compile(r"[a-z0-9_.:-]+")


def host_of(text: str | None) -> str | None:
    """The host of a URL or a bare host ("google.com/search"), lower-case, without port, credentials or
    a trailing dot; None when there is none."""
    if not text or not text.strip():
        return None
    raw = text.strip()
    if "//" not in raw:
        raw = "//" + raw
    try:
        host = urlsplit(raw).hostname
    except ValueError:
        return None
    return (host or "").rstrip(".").lower() or None


# Every snippet request compares its Origin with the site's domains: the same few texts, each converted once
# per process rather than through IDNA on every request.
@lru_cache(maxsize=4096)
def canonical_host(text: str | None) -> str | None:
    """The canonical host of a host name or URL, or None when it names no host."""
    host = host_of(text)
    if host is None:
        return None
    try:
        return idna.encode(host, uts46=True).decode("ascii").lower()
    except idna.IDNAError:
        return host if _PLAIN_ASCII.fullmatch(host) else None


@lru_cache(maxsize=4096)
def canonical_domain_entry(entry: str) -> str | None:
    """A site domain entry as stored: a canonical host, or "*." and one for every subdomain of it."""
    text = entry.strip()
    if text.startswith("*."):
        host = canonical_host(text[2:])
        return f"*.{host}" if host else None
    return canonical_host(text)
