"""A per-tenant request budget shared by every hook, client and trigger of one process.

Anaplan allows 600 requests a minute per tenant, and the SAP services answer 429 when a client
asks too often. A triggerer that waits on hundreds of jobs of one tenant must stay under that
limit: each request first reserves a slot from its tenant's :class:`RequestBudget`, which hands out
slots evenly spaced in time (polls are spread, not burst), and a 429 pushes the next free slot of
everybody sharing the budget past the server's ``Retry-After`` (they back off together).

Reservations are computed under a lock and never block: the sync client sleeps for the returned
delay, the async client awaits it, so threads of a worker and tasks of a triggerer share one budget.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from urllib.parse import urlsplit

ANAPLAN_REQUESTS_PER_MINUTE = 600.0
"""Anaplan's documented limit per tenant."""

WINDOW_SECONDS = 60.0
"""The window a per-minute limit is counted over (sliding)."""

WINDOW_SLACK_SECONDS = 1.0
"""Added to the window when the budget is full: a request's event-loop and network delay (its slot
is when it may leave, the server counts when it arrives) must not squeeze 601 arrivals into 60 s."""


class RequestBudget:
    """Evenly spaced request slots: at most ``per_minute`` requests in any sliding minute.

    Spacing alone would let a fresh (or rested) budget's burst add up to ``burst - 1`` requests to
    a full minute of evenly spaced ones; a server that counts a sliding window (as the sandbox and
    Anaplan's gateway do) answers those 429. So a slot is also never earlier than one minute after
    the slot ``per_minute`` reservations back (plus :data:`WINDOW_SLACK_SECONDS` for the time a
    request takes to arrive): the burst is paid back within the same minute.

    :param per_minute: the sustained rate.
    :param burst: requests that may go out back to back before spacing applies (a fresh budget
        lets a handful of requests through at once, as a token bucket would).
    """

    def __init__(self, per_minute: float, *, burst: int = 5, clock: Callable[[], float] | None = None) -> None:
        if per_minute <= 0:
            raise ValueError(f"requests_per_minute must be more than 0, got {per_minute!r}.")
        self.per_minute = float(per_minute)
        self.interval = 60.0 / self.per_minute
        self.burst = max(1, int(burst))
        self._clock = clock or time.monotonic
        self._lock = threading.Lock()
        self._next_free = float("-inf")  # the earliest time the next slot may be used (a fresh budget has its burst)
        # The last `per_minute` slots handed out (ascending): the next one waits for the oldest to age a minute.
        self._recent: deque[float] = deque(maxlen=max(1, int(self.per_minute)))
        self.reserved = 0
        self.waited = 0.0

    def reserve(self) -> float:
        """Take the next slot; return how many seconds to wait before sending (0 when it is free now)."""
        with self._lock:
            now = self._clock()
            # Unused capacity accumulates up to `burst` slots, never more.
            earliest = now - (self.burst - 1) * self.interval
            slot = max(self._next_free, earliest)
            if len(self._recent) == self._recent.maxlen:
                slot = max(slot, self._recent[0] + WINDOW_SECONDS + WINDOW_SLACK_SECONDS)
            send = max(slot, now)  # a banked (past) slot goes out now: the window counts the real send time
            self._recent.append(send)
            self._next_free = slot + self.interval
            delay = send - now
            self.reserved += 1
            self.waited += delay
            return delay

    def back_off(self, seconds: float) -> None:
        """The server answered 429: nobody sharing this budget sends again for ``seconds``."""
        with self._lock:
            self._next_free = max(self._next_free, self._clock() + max(0.0, seconds))


class BudgetRegistry:
    """One budget per tenant (platform and host) per process, created on first use."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._budgets: dict[tuple[str, str], RequestBudget] = {}
        self.clock: Callable[[], float] | None = None  # tests substitute a fake clock here

    def for_tenant(self, platform: str, base_url: str, per_minute: float) -> RequestBudget:
        """The budget of the tenant behind ``base_url``; the first caller's rate sets it (a lower later rate wins)."""
        key = (platform, tenant_of(base_url))
        with self._lock:
            budget = self._budgets.get(key)
            if budget is None or per_minute < budget.per_minute:
                budget = self._budgets[key] = RequestBudget(per_minute, clock=self.clock)
            return budget

    def clear(self) -> None:
        with self._lock:
            self._budgets.clear()


def tenant_of(url: str) -> str:
    """The part of a URL that identifies the tenant's API host (scheme, host and port)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


BUDGETS = BudgetRegistry()
"""The process-wide registry: workers, triggerers and API servers each hold one."""
