"""Encryption of secrets kept in the database (OAuth tokens, webhook keys), with a Fernet key from config."""

from __future__ import annotations

import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken


class SecretUnreadable(ValueError):
    """The stored value was not made with this key (key rotated or data tampered with)."""


class SecretBox:
    """Seals and opens short secrets. Sealed values are URL-safe text, so they fit a Text column."""

    def __init__(self, key: str | bytes) -> None:
        if not key:
            raise ValueError("ENCRYPTION_KEY is not set")
        self._fernet = Fernet(key.encode() if isinstance(key, str) else key)

    def seal(self, secret: str | None) -> str | None:
        if secret is None:
            return None
        return self._fernet.encrypt(secret.encode()).decode()

    def open(self, sealed: str | None) -> str | None:
        if sealed is None:
            return None
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken:
            # A changed key must not look like an empty token: say clearly what is wrong.
            raise SecretUnreadable(
                "a stored secret cannot be decrypted with the configured ENCRYPTION_KEY"
            ) from None

    def __repr__(self) -> str:  # never show the key in logs or tracebacks
        return "SecretBox(<key hidden>)"


def encrypt_json(key: str, value: dict[str, Any]) -> str:
    """A dict of secrets (an integration's keys) sealed as one value."""
    sealed = SecretBox(key).seal(json.dumps(value, sort_keys=True))
    assert sealed is not None
    return sealed


def decrypt_json(key: str, token: str) -> dict[str, Any]:
    return json.loads(SecretBox(key).open(token) or "{}")
