"""Token buckets per destination account, so the pipeline never outruns a platform's rate limit."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from connectors.base import RateLimit


class TokenBucket:
    def __init__(self, limit: RateLimit, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = max(limit.per_second, 1e-6)
        self.capacity = max(1, limit.burst)
        self._tokens = float(self.capacity)
        self._clock = clock
        self._at = clock()
        self._lock = threading.Lock()

    def _fill(self) -> None:
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._at) * self.rate)
        self._at = now

    def try_take(self, n: int = 1) -> float:
        """Take ``n`` tokens if there are enough and return 0; otherwise return seconds to wait."""
        with self._lock:
            self._fill()
            if self._tokens >= n:
                self._tokens -= n
                return 0.0
            return (n - self._tokens) / self.rate

    def take(self, n: int = 1, sleep: Callable[[float], None] = time.sleep) -> None:
        while (wait := self.try_take(n)) > 0:
            sleep(wait)


class Buckets:
    """One bucket per (connection, connector), created from the connector's declared limit."""

    def __init__(self) -> None:
        self._buckets: dict[tuple[int, str], TokenBucket] = {}
        self._lock = threading.Lock()

    def get(self, connection_id: int, connector: str, limit: RateLimit) -> TokenBucket:
        key = (connection_id, connector)
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None or bucket.rate != max(limit.per_second, 1e-6):
                bucket = self._buckets[key] = TokenBucket(limit)
            return bucket
