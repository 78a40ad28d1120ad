"""The signature of an outgoing webhook: HMAC-SHA256 over ``timestamp + "." + body``.

Header ``Otkuda-Signature: t=<unix seconds>,v1=<hex digest>``. A receiver recomputes the digest with its
secret over the timestamp it was given and the raw body, compares in constant time, and refuses
timestamps too far from its clock (replays). docs/outgoing-webhooks.md shows it in Python and PHP.
"""

from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE_HEADER = "Otkuda-Signature"
DEFAULT_TOLERANCE = 300  # seconds


def sign(secret: str, body: bytes, timestamp: int) -> str:
    mac = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify(
    secret: str, body: bytes, header: str, *, tolerance: int = DEFAULT_TOLERANCE, now: float | None = None
) -> bool:
    """What a receiver does; used by our tests' receiver and offered to Python integrators."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs((now if now is not None else time.time()) - timestamp) > tolerance:
        return False
    expected = sign(secret, body, timestamp).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))
