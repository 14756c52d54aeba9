"""How often to poll remote work, written once for workers (sync) and the triggerer (async)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from airflow_provider_sapplan.exceptions import TransientError

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


DEFAULT_OUTAGE_WINDOW = 900.0
"""Seconds a wait rides out a platform that keeps failing transiently (about 15 minutes)."""


class OutageTolerance:
    """Lets a long wait survive a platform outage of bounded length.

    A poll that fails with a :class:`~airflow_provider_sapplan.exceptions.TransientError` (network
    trouble, 5xx, 429 or a busy target, after the HTTP core's own retries) is tolerated while the
    failures in a row have lasted less than ``window`` seconds; the first successful poll ends the
    outage. Permanent errors (credentials, ids) are never tolerated. ``window=0`` disables it.
    """

    def __init__(self, window: float | None = DEFAULT_OUTAGE_WINDOW, clock: Any = None) -> None:
        self.window = DEFAULT_OUTAGE_WINDOW if window is None else float(window)
        if self.window < 0:
            raise ValueError(f"outage_window must be 0 or more seconds, got {window!r}.")
        self._clock = clock or (lambda: time.monotonic())
        self._since: float | None = None
        self.failures = 0

    def tolerate(self, err: BaseException) -> bool:
        """True when the wait should carry on after ``err``; False when it must fail now."""
        if not isinstance(err, TransientError) or self.window == 0:
            return False
        now = self._clock()
        if self._since is None:
            self._since = now
        self.failures += 1
        return now - self._since < self.window

    def recovered(self) -> None:
        """A poll succeeded: the outage, if any, is over."""
        self._since = None
        self.failures = 0

    @property
    def lasted(self) -> float:
        """Seconds the current outage has lasted (0 when there is none)."""
        return 0.0 if self._since is None else self._clock() - self._since

    def describe(self, err: BaseException) -> str:
        """A log line for a tolerated failure."""
        return (
            f"poll failed ({type(err).__name__}: {err}); the platform has been failing for {self.lasted:.0f}s, "
            f"still waiting (gives up after {self.window:.0f}s of failures in a row)"
        )

    def gave_up(self, err: BaseException) -> str:
        """The message when the outage outlasted the window."""
        return (
            f"the platform kept failing for {self.lasted:.0f}s ({self.failures} polls in a row; the outage window "
            f"is {self.window:.0f}s, set outage_window to wait longer): {type(err).__name__}: {err}"
        )
