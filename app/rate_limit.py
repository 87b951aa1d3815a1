"""Per-key request limits, the same for the HTTP API and the MCP server over HTTP: a moving window of
``api_rate_limit_per_minute`` requests per key (``limits``), kept in memory by the serving process."""

from __future__ import annotations

import math
import time

from limits import RateLimitItemPerMinute
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from core.errors import ZhiwenError


class RateLimited(ZhiwenError):
    def __init__(self, per_minute: int, retry_after_s: int) -> None:
        self.retry_after_s = retry_after_s
        super().__init__(f"请求过于频繁：每分钟最多 {per_minute} 次 (rate limit exceeded); {retry_after_s} 秒后再试 (retry after {retry_after_s} s)")


class PerKeyRateLimit:
    def __init__(self, per_minute: int) -> None:
        self.rate = RateLimitItemPerMinute(per_minute) if per_minute > 0 else None
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    def hit(self, key_id: str) -> None:
        """Count one request of ``key_id``; RateLimited (with the seconds to wait) past the limit."""
        if self.rate is None or self._limiter.hit(self.rate, key_id):
            return
        reset = self._limiter.get_window_stats(self.rate, key_id).reset_time
        raise RateLimited(self.rate.amount, max(1, math.ceil(reset - time.time())))
