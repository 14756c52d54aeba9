"""Waiting for a platform to accept a request, or for a condition, within a deadline (sync).

Some refusals are not errors but "not now": too many active jobs, a run still in flight. Retrying
them belongs in one place, with the same growing intervals and wall-clock deadline as every other
wait in the provider, so platform modules only say which errors mean "not now".
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from airflow_provider_sapplan.core.waiting import PollSchedule
from airflow_provider_sapplan.exceptions import RemoteJobTimeoutError

log = logging.getLogger(__name__)

T = TypeVar("T")


def call_until_accepted(
    call: Callable[[], T],
    *,
    busy: tuple[type[BaseException], ...],
    deadline: float | None,
    what: str,
    first_interval: float = 10.0,
    max_interval: float = 60.0,
    sleep: Callable[[float], None] | None = None,
    max_wait_without_deadline: float = 3600.0,
) -> T:
    """Call ``call`` until it does not raise one of ``busy``; the last refusal is raised at the deadline.

    :param deadline: epoch seconds; None allows ``max_wait_without_deadline`` seconds.
    :param what: what is being attempted, for the log ("create the import job").
    """
    if deadline is None:
        deadline = time.time() + max_wait_without_deadline
    schedule = PollSchedule(first_interval, max_interval)
    while True:
        try:
            return call()
        except busy as refusal:
            now = time.time()
            if now >= deadline:
                raise
            wait = max(0.0, min(schedule.next_interval(), deadline - now))
            log.warning("Could not %s yet (%s); trying again in %.0fs.", what, refusal, wait)
            (sleep or time.sleep)(wait)


def wait_until(
    condition: Callable[[], tuple[bool, str]],
    *,
    deadline: float | None,
    what: str,
    first_interval: float = 10.0,
    max_interval: float = 60.0,
    sleep: Callable[[float], None] | None = None,
) -> None:
    """Poll ``condition`` (returning ``(done, description)``) until done; raise at the deadline."""
    schedule = PollSchedule(first_interval, max_interval)
    while True:
        done, description = condition()
        if done:
            return
        now = time.time()
        if deadline is not None and now >= deadline:
            raise RemoteJobTimeoutError(f"Gave up waiting for {what}: still {description} at the deadline.")
        wait = schedule.next_interval()
        if deadline is not None:
            wait = max(0.0, min(wait, deadline - now))
        log.info("Waiting for %s: %s; checking again in %.0fs.", what, description, wait)
        (sleep or time.sleep)(wait)
