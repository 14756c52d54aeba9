"""A tenant's rate limit, on demand, for any sandbox platform.

Anaplan allows 600 requests a minute per tenant and answers 429 beyond; the SAP services answer 429
too. :class:`RateLimiter` lets a test or benchmark switch that on for one platform: beyond
``per_minute`` accepted requests in any sliding window of ``window_seconds`` (60 by default), the
server answers 429 with ``Retry-After`` (whole seconds until the oldest request in the window leaves
it). Refused requests do not use up the window (they were not served). Authentication endpoints
(the platform's token/login mounts) and the ``/_sandbox`` control API are never limited.

Counters per platform: requests accepted and refused (429), accepted requests per minute since the
limit was set, and the most requests seen in any sliding window, both accepted and offered (accepted
+ refused: what the clients asked for). Served under ``rate_limits`` in ``GET /_sandbox/stats``.
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class PlatformLimit:
    """One platform's limit and what it has seen since it was set."""

    per_minute: int
    window_seconds: float = 60.0
    since: float = 0.0
    accepted: int = 0
    limited: int = 0
    max_accepted_in_window: int = 0
    max_offered_in_window: int = 0
    accepted_per_minute: Counter[int] = field(default_factory=Counter)
    _accepted_times: deque[float] = field(default_factory=deque)
    _offered_times: deque[float] = field(default_factory=deque)

    def __post_init__(self) -> None:
        if isinstance(self.per_minute, bool) or not isinstance(self.per_minute, int) or self.per_minute < 1:
            raise ValueError(f"per_minute must be a whole number of requests of at least 1, got {self.per_minute!r}")
        if not isinstance(self.window_seconds, (int, float)) or self.window_seconds <= 0:
            raise ValueError(f"window_seconds must be a positive number of seconds, got {self.window_seconds!r}")
        self.window_seconds = float(self.window_seconds)

    def admit(self, now: float) -> float | None:
        """Count one request at ``now``: None if accepted, else the seconds the client should wait."""
        horizon = now - self.window_seconds
        for times in (self._accepted_times, self._offered_times):
            while times and times[0] <= horizon:
                times.popleft()
        self._offered_times.append(now)
        self.max_offered_in_window = max(self.max_offered_in_window, len(self._offered_times))
        if len(self._accepted_times) >= self.per_minute:
            self.limited += 1
            return max(0.0, self._accepted_times[0] + self.window_seconds - now)
        self._accepted_times.append(now)
        self.accepted += 1
        self.accepted_per_minute[int((now - self.since) // 60)] += 1
        self.max_accepted_in_window = max(self.max_accepted_in_window, len(self._accepted_times))
        return None

    def to_dict(self) -> dict[str, Any]:
        """JSON form (minute indexes as strings, counted from when the limit was set)."""
        return {
            "per_minute": self.per_minute,
            "window_seconds": self.window_seconds,
            "accepted": self.accepted,
            "limited": self.limited,
            "max_accepted_in_window": self.max_accepted_in_window,
            "max_offered_in_window": self.max_offered_in_window,
            "accepted_per_minute": {str(k): v for k, v in sorted(self.accepted_per_minute.items())},
        }


class RateLimiter:
    """Thread-safe per-platform sliding-window limits; consulted by the server for every API request.

    Usage from Python: ``sandbox.rate_limits.set("anaplan", 600)``; ``set("anaplan", 0)`` removes it.
    Over HTTP: ``POST /_sandbox/rate_limit {"platform": "anaplan", "per_minute": 600}``.
    """

    def __init__(self, clock: Callable[[], float] | None = None) -> None:
        self._clock = clock or time.monotonic
        self._lock = threading.Lock()
        self._limits: dict[str, PlatformLimit] = {}

    def set(self, platform: str, per_minute: int, window_seconds: float = 60.0) -> PlatformLimit | None:
        """Limit ``platform`` to ``per_minute`` requests per sliding window (0 removes the limit).

        Setting a limit again starts its counters afresh.
        """
        if per_minute == 0:
            with self._lock:
                self._limits.pop(platform, None)
            return None
        limit = PlatformLimit(per_minute=per_minute, window_seconds=window_seconds, since=self._clock())
        with self._lock:
            self._limits[platform] = limit
        return limit

    def clear(self) -> None:
        """Remove every limit (and its counters)."""
        with self._lock:
            self._limits.clear()

    def admit(self, platform: str | None) -> float | None:
        """Count one request to ``platform``: None to serve it, else the ``Retry-After`` seconds of a 429."""
        if platform is None:
            return None
        with self._lock:
            limit = self._limits.get(platform)
            if limit is None:
                return None
            return limit.admit(self._clock())

    def to_dict(self) -> dict[str, Any]:
        """Every limit with its counters, by platform."""
        with self._lock:
            return {name: limit.to_dict() for name, limit in sorted(self._limits.items())}


def retry_after_header(seconds: float) -> str:
    """``Retry-After`` in whole seconds (HTTP allows no fractions), at least 1."""
    return str(max(1, math.ceil(seconds)))
