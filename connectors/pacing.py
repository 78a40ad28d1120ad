"""Pacing requests to an API: a per-instance throttle and the server's own Retry-After."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import requests


class Throttle:
    """Spaces this instance's requests so a multi-request push stays under the per-second quota."""

    def __init__(self, per_second: float, sleep: Callable[[float], None] = time.sleep):
        self.interval = 1.0 / per_second if per_second > 0 else 0.0
        self._sleep = sleep
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        with self._lock:
            now = time.monotonic()
            delay = self._next - now
            self._next = max(now, self._next) + self.interval
        if delay > 0:
            self._sleep(delay)


def retry_after_header(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date; the caller falls back to its own default
