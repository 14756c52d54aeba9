"""How often to poll remote work, written once for workers (sync) and the triggerer (async)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta

MIN_POLL_INTERVAL = 5.0
"""Never poll more often than this: the platforms ask for it and rate limits are per tenant."""


@dataclass
class PollSchedule:
    """Intervals that start at ``first`` seconds and grow by ``factor`` up to ``cap``.

    Short jobs are noticed quickly; long ones are not polled hundreds of times.
    """

    first: float = 10.0
    cap: float = 60.0
    factor: float = 1.5

    def __post_init__(self) -> None:
        self.first = max(float(self.first), MIN_POLL_INTERVAL)
        self.cap = max(float(self.cap), self.first)
        self._current = self.first

    def next_interval(self) -> float:
        interval = self._current
        self._current = min(self._current * self.factor, self.cap)
        return interval


def seconds(value: float | int | timedelta | None) -> float | None:
    """A timeout given as seconds or a timedelta, as seconds (None stays None; 0 is a real value)."""
    if value is None:
        return None
    if isinstance(value, timedelta):
        return value.total_seconds()
    return float(value)


def deadline_after(timeout: float | int | timedelta | None) -> float | None:
    """A wall-clock deadline (epoch seconds): it is serialized across processes, so not monotonic."""
    span = seconds(timeout)
    return None if span is None else time.time() + span


def remaining(deadline: float | None) -> float | None:
    return None if deadline is None else deadline - time.time()
