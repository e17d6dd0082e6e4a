"""A sliding-window rate limiter: at most `limit` events in any `window` seconds."""

from collections import deque


class RateLimiter:
    def __init__(self, limit, window):
        if limit < 1 or window <= 0:
            raise ValueError("limit must be at least 1 and window positive")
        self.limit = limit
        self.window = window
        self._hits = deque()

    def _evict(self, now):
        """Forget events that left the window (now - window, now]."""
        while self._hits and self._hits[0] < now - self.window:
            self._hits.popleft()

    def allow(self, now):
        """Record an event at `now` if the limit allows it; say whether it did."""
        self._evict(now)
        if len(self._hits) < self.limit:
            self._hits.append(now)
            return True
        return False

    def remaining(self, now):
        self._evict(now)
        return self.limit - len(self._hits)

    def retry_after(self, now):
        """Seconds until an event would be allowed (0 when it would be now)."""
        self._evict(now)
        if len(self._hits) < self.limit:
            return 0
        return self._hits[0] + self.window - now
