"""Metrika's OAuth description: the shared Yandex provider with the Management API as its base."""

from __future__ import annotations

from connectors.yandex_oauth import provider_for

PROVIDER = provider_for("https://api-metrika.yandex.net")
