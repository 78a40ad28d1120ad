"""Direct's OAuth description: the shared Yandex provider with the Direct API as its base."""

from __future__ import annotations

from connectors.yandex_oauth import provider_for

PROVIDER = provider_for("https://api.direct.yandex.com")
