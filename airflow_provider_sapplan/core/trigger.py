"""The one async wait loop behind every platform's trigger.

A platform trigger says how to build its hook, fetch the job's status, classify it and cancel the
job; this base class owns polling, the wall-clock deadline, the terminal event and ``on_kill``.
Kwargs are plain JSON (connection id, job reference, numbers): no token or secret is serialized.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow_provider_sapplan._compat import BaseTrigger, TriggerEvent, task_instance_state
from airflow_provider_sapplan.core.status import Outcome
from airflow_provider_sapplan.core.waiting import DEFAULT_OUTAGE_WINDOW, OutageTolerance, PollSchedule
from airflow_provider_sapplan.exceptions import TransientError

log = logging.getLogger(__name__)

EVENT_STATUSES = frozenset({"success", "failed", "timeout", "error"})

#: The least time between a deferral and the trigger's first poll. Airflow 3.3 fails a resumed try
#: when the scheduler handles the deferring try's exit after the trigger has already fired
#: (apache/airflow#72716, #71580); on a busy scheduler that exit is seen seconds late (5-6 s in the
#: fault soak on 2 cores), so a trigger must not fire sooner. Costs short waits at most this long.
DEFER_SETTLE_SECONDS = 10.0

# Cancelling on kill (state check + cancel call) may take this long, whatever interrupts on_kill.
KILL_TIMEOUT = 120.0
_KILLS: set[asyncio.Future[None]] = set()  # cancels in flight (the event loop keeps only weak references)


class RemoteJobTrigger(BaseTrigger):
    """Polls one remote job until it ends or the deadline passes, then fires exactly one event.

    :param conn_id: the Airflow connection to use.
    :param ref: JSON reference of the job (ids only).
    :param poll_interval: first poll interval in seconds (grows to ``max_poll_interval``).
    :param deadline: epoch seconds after which a ``timeout`` event fires; None waits forever.
    :param cancel_on_kill: cancel the remote job when Airflow kills the deferred task (3.3+).
    :param outage_window: seconds of transient poll failures in a row (network, 5xx, 429) the wait rides
        out before it fails; 0 fails at the first poll that fails after the HTTP core's retries.
    :param checked_at: epoch seconds when the deferring operator or sensor last looked at the job; the
        first poll waits until one ``poll_interval`` (at least :data:`DEFER_SETTLE_SECONDS`) after it.
        That spares a request, and keeps the trigger from firing within seconds of the deferral, the
        window of Airflow 3.3's stale defer-exit race (a resumed try failed by the deferring try's
        late executor event). None polls at once.
    """

    def __init__(
        self,
        *,
        conn_id: str,
        ref: dict[str, Any],
        poll_interval: float = 10.0,
        max_poll_interval: float = 60.0,
        deadline: float | None = None,
        cancel_on_kill: bool = True,
        outage_window: float = DEFAULT_OUTAGE_WINDOW,
        checked_at: float | None = None,
    ) -> None:
        super().__init__()
        self.conn_id = conn_id
        self.ref = dict(ref)
        self.poll_interval = float(poll_interval)
        self.max_poll_interval = float(max_poll_interval)
        self.deadline = deadline
        self.cancel_on_kill = cancel_on_kill
        self.outage_window = float(outage_window)
        self.checked_at = checked_at
        self._hook: Any = None

    # -- what a platform provides ----------------------------------------------------------------

    def make_hook(self) -> Any:
        raise NotImplementedError

    async def fetch(self, hook: Any) -> dict[str, Any]:
        raise NotImplementedError

    def outcome(self, status: dict[str, Any]) -> Outcome:
        raise NotImplementedError

    def raw_state(self, status: dict[str, Any]) -> str:
        raise NotImplementedError

    async def cancel(self, hook: Any) -> None:
        raise NotImplementedError

    # -- shared machinery ------------------------------------------------------------------------

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "conn_id": self.conn_id,
                "ref": self.ref,
                "poll_interval": self.poll_interval,
                "max_poll_interval": self.max_poll_interval,
                "deadline": self.deadline,
                "cancel_on_kill": self.cancel_on_kill,
                "outage_window": self.outage_window,
                "checked_at": self.checked_at,
            },
        )

    def _event(self, status: str, raw_state: str | None, **extra: Any) -> TriggerEvent:
        return TriggerEvent({"status": status, "ref": self.ref, **self.ref, "raw_state": raw_state, **extra})

    def _hook_instance(self) -> Any:
        if self._hook is None:
            self._hook = self.make_hook()
        return self._hook

    async def run(self) -> AsyncIterator[TriggerEvent]:
        hook = self._hook_instance()
        schedule = PollSchedule(self.poll_interval, self.max_poll_interval)
        outage = OutageTolerance(self.outage_window)
        raw: str | None = None
        try:
            first_wait = self._first_wait()
            if first_wait > 0:
                await asyncio.sleep(first_wait)
            while True:
                try:
                    status = await self.fetch(hook)
                except TransientError as err:
                    if not outage.tolerate(err):
                        log.error("Waiting on %s: %s", self.ref, outage.gave_up(err).rstrip("."))
                        yield self._event("error", raw, message=outage.gave_up(err))
                        return
                    log.warning("Waiting on %s: %s.", self.ref, outage.describe(err))
                    if self.deadline is not None and time.time() >= self.deadline:
                        yield self._event("timeout", raw, message=f"Still {raw} when the wait's deadline passed.")
                        return
                    await asyncio.sleep(self._next_wait(schedule))
                    continue
                outage.recovered()
                raw = self.raw_state(status)
                outcome = self.outcome(status)
                if outcome is Outcome.SUCCEEDED:
                    yield self._event("success", raw, result=status)
                    return
                if outcome is Outcome.FAILED:
                    yield self._event("failed", raw, result=status)
                    return
                now = time.time()
                if self.deadline is not None and now >= self.deadline:
                    yield self._event(
                        "timeout", raw, message=f"Still {raw} when the wait's deadline passed.", result=status
                    )
                    return
                await asyncio.sleep(self._next_wait(schedule))
        except asyncio.CancelledError:
            raise
        except Exception as err:  # one terminal event, never a crashed trigger
            log.exception("Waiting on %s failed.", self.ref)
            yield self._event("error", raw, message=f"{type(err).__name__}: {err}")
        finally:
            await self._close_hook()

    def _first_wait(self) -> float:
        """Seconds until one poll interval after the deferring task's own look (never past the deadline)."""
        if self.checked_at is None:
            return 0.0
        wait = max(0.0, self.checked_at + max(self.poll_interval, DEFER_SETTLE_SECONDS) - time.time())
        if self.deadline is not None:
            wait = max(0.0, min(wait, self.deadline - time.time()))
        return wait

    def _next_wait(self, schedule: PollSchedule) -> float:
        wait = schedule.next_interval()
        if self.deadline is not None:
            wait = max(0.0, min(wait, self.deadline - time.time()))
        return wait

    async def _close_hook(self) -> None:
        hook, self._hook = self._hook, None
        if hook is not None and hasattr(hook, "aclose"):
            try:
                await hook.aclose()
            except Exception:
                log.debug("Closing the hook of %s failed.", self.ref, exc_info=True)

    async def on_kill(self) -> None:
        """Airflow 3.3+: the deferred task was marked failed/success or cleared; cancel best-effort.

        Airflow calls this when the trigger is cancelled "by user action": its trigger row went away
        while this triggerer ran it. That is also what happens when another triggerer took the trigger
        over (this one missed its heartbeats), and then the task still waits (on the other triggerer)
        for the very job we would cancel. So the job is cancelled only when the task instance is no
        longer deferred; when its state cannot be read, the job is left running (a job left running is
        what Airflow 2.11 always does; a job cancelled under a live wait fails the task). A triggerer
        restart or shutdown never gets here.
        """
        if not self.cancel_on_kill:
            return
        # Airflow 3.3.2's triggerer re-sends the cancel of a trigger on every loop (about once a second)
        # until the trigger has finished, and each one interrupts on_kill: the state check and the cancel
        # call run in their own task, shielded, bounded by KILL_TIMEOUT, and kept alive by _KILLS.
        kill = asyncio.ensure_future(self._kill())
        _KILLS.add(kill)
        kill.add_done_callback(_KILLS.discard)
        await asyncio.shield(kill)

    async def _kill(self) -> None:
        try:
            async with asyncio.timeout(KILL_TIMEOUT):
                if not await self._task_was_ended():
                    return
                await self.cancel(self._hook_instance())
            log.info("Ran the platform's cancel for %s after the deferred task was killed.", self.ref)
        except Exception:
            log.warning("Could not cancel %s on kill.", self.ref, exc_info=True)
        finally:
            await self._close_hook()

    async def _task_was_ended(self) -> bool:
        """True when the task this trigger waits for is no longer deferred (a user ended or cleared it)."""
        ti = getattr(self, "task_instance", None)
        if ti is None:
            return True  # not run by a triggerer (called directly): the caller asked for the cancel
        try:
            state = await task_instance_state(ti)
        except Exception:
            log.warning("Could not read the state of %s; leaving %s running.", _ti_name(ti), self.ref, exc_info=True)
            return False
        if state is None:
            log.warning("The state of %s is unknown; leaving %s running.", _ti_name(ti), self.ref)
            return False
        if state == "deferred":
            log.warning(
                "%s is still deferred (its wait moved to another triggerer?); leaving %s running.",
                _ti_name(ti),
                self.ref,
            )
            return False
        log.info("%s is now %s: cancelling %s.", _ti_name(ti), state, self.ref)
        return True


def _ti_name(ti: Any) -> str:
    return f"{getattr(ti, 'dag_id', '?')}.{getattr(ti, 'task_id', '?')} ({getattr(ti, 'run_id', '?')})"
