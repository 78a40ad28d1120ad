"""Symmetric encryption of secrets kept in the database (Fernet, keyed by the app's ENCRYPTION_KEY)."""

from __future__ import annotations

import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken


class SecretUnreadable(Exception):
    """The stored token was not made with this key (key rotated or data tampered with)."""


def encrypt(key: str, text: str) -> str:
    return Fernet(key.encode()).encrypt(text.encode()).decode()


def decrypt(key: str, token: str) -> str:
    try:
        return Fernet(key.encode()).decrypt(token.encode()).decode()
    except InvalidToken:
        raise SecretUnreadable("stored secret cannot be decrypted with the configured key") from None


def encrypt_json(key: str, value: dict[str, Any]) -> str:
    return encrypt(key, json.dumps(value, sort_keys=True))


def decrypt_json(key: str, token: str) -> dict[str, Any]:
    return json.loads(decrypt(key, token))
