"""When a request is retried, and how long to wait in between: written once for every platform.

The rules:

* connection errors, timeouts, and the statuses in :attr:`RetryPolicy.retry_statuses` (429, 500,
  502, 503, 504 by default: gateways and SAP services answer a passing 500 too) are retried; other
  4xx never are;
* a request that starts remote work (``idempotent=False``, e.g. the POST of a task) is retried only
  when the platform certainly did not act on it: the connection was refused before anything was
  sent, or the status is in :attr:`RetryPolicy.unsent_statuses` (429, 503, and a platform's own
  "busy, try later" codes). A read timeout after sending is *not* retried, so a retry never starts
  the work twice;
* the server's ``Retry-After`` (seconds or HTTP date) or SAP's ``throttling`` (milliseconds) header
  sets the wait, capped at :attr:`RetryPolicy.max_wait`; otherwise exponential backoff with full
  jitter.

The budget is bounded and documented: :meth:`RetryPolicy.worst_case_wait` is the most a request can
spend sleeping between attempts, :meth:`RetryPolicy.worst_case_seconds` adds one connect timeout per
attempt (what an unreachable host costs). With the default policy (6 attempts, 1 s doubling to at most
60 s) that is 31 s of waits, 91 s with a 10 s connect timeout; Anaplan's policy (8 attempts, 2 s
doubling to at most 120 s, for models busy with other work) 246 s of waits, 326 s in all. A malformed
URL is not retried at all (the connection is validated first) and the Test button sends every call
once.
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from email.utils import parsedate_to_datetime
from typing import Any

import requests

from airflow_provider_sapplan.exceptions import SapplanError


@dataclass(frozen=True)
class RetryPolicy:
    """How one platform's requests are retried.

    :param max_attempts: attempts in total, the first included.
    :param initial_wait: first backoff step in seconds (doubles each attempt, with jitter).
    :param max_wait: cap in seconds for any single wait, including a server's ``Retry-After``.
    :param retry_statuses: statuses retried for idempotent requests.
    :param unsent_statuses: statuses that prove the request was not acted on; retried even for
        requests that start remote work.
    """

    max_attempts: int = 6
    initial_wait: float = 1.0
    max_wait: float = 60.0
    retry_statuses: frozenset[int] = field(default_factory=lambda: frozenset({429, 500, 502, 503, 504}))
    unsent_statuses: frozenset[int] = field(default_factory=lambda: frozenset({429, 503}))

    def worst_case_wait(self) -> float:
        """The longest total sleep between attempts when no server asks for a delay (backoff ceilings)."""
        return sum(
            min(self.max_wait, self.initial_wait * (2 ** (attempt - 1))) for attempt in range(1, self.max_attempts)
        )

    def worst_case_seconds(self, connect_timeout: float) -> float:
        """The longest an unreachable host can hold a request: every wait plus one connect timeout per attempt."""
        return self.worst_case_wait() + self.max_attempts * connect_timeout

    def with_statuses(self, *statuses: int, unsent: bool = True) -> RetryPolicy:
        """A copy that also retries ``statuses`` (and treats them as unsent when ``unsent``)."""
        extra = frozenset(statuses)
        return replace(
            self,
            retry_statuses=self.retry_statuses | extra,
            unsent_statuses=self.unsent_statuses | extra if unsent else self.unsent_statuses,
        )

    def should_retry_status(self, status: int, *, idempotent: bool) -> bool:
        statuses = self.retry_statuses if idempotent else self.unsent_statuses
        return status in statuses

    def backoff(self, attempt: int) -> float:
        """Full-jitter exponential backoff for attempt ``attempt`` (1-based), capped."""
        ceiling = min(self.max_wait, self.initial_wait * (2 ** max(attempt - 1, 0)))
        return random.uniform(ceiling / 2, ceiling) if ceiling > 0 else 0.0

    def wait_for(self, attempt: int, server_delay: float | None) -> float:
        """Seconds to sleep before the next attempt."""
        if server_delay is not None:
            return min(max(server_delay, 0.0), self.max_wait)
        return self.backoff(attempt)


def server_requested_delay(headers: Mapping[str, str]) -> float | None:
    """The wait a server asked for: ``Retry-After`` (seconds or HTTP date) or ``throttling`` (ms).

    SAP BTP Job Scheduling sends ``throttling`` in milliseconds with its 503s; everyone else uses the
    standard ``Retry-After``. Unparseable values are ignored (backoff applies).
    """
    lowered = {key.lower(): value for key, value in headers.items()}
    retry_after = lowered.get("retry-after")
    if retry_after:
        retry_after = retry_after.strip()
        try:
            return max(float(retry_after), 0.0)
        except ValueError:
            pass
        try:
            when = parsedate_to_datetime(retry_after)
        except (TypeError, ValueError, IndexError):
            when = None
        if when is not None:
            return max(when.timestamp() - time.time(), 0.0)
    throttling = lowered.get("throttling")
    if throttling:
        try:
            return max(float(throttling.strip()) / 1000.0, 0.0)
        except ValueError:
            return None
    return None


def is_unsent_connection_error(exc: BaseException) -> bool:
    """True when a ``requests`` error proves nothing reached the server (refused, DNS, connect timeout).

    Anything else (read timeout, connection reset after sending) may have reached the platform.
    """
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    if isinstance(exc, requests.exceptions.ConnectionError):
        reason: Any = exc.args[0] if exc.args else None
        inner = getattr(reason, "reason", reason)
        text = f"{type(inner).__name__} {inner}"
        return any(
            marker in text for marker in ("NewConnectionError", "Connection refused", "NameResolutionError", "Errno -2")
        )
    return False


class RetryableFailure(Exception):
    """Raised inside one attempt to ask for another; carries the error to raise when attempts run out."""

    def __init__(self, error: SapplanError, server_delay: float | None = None) -> None:
        super().__init__(error.message)
        self.error = error
        self.server_delay = server_delay
