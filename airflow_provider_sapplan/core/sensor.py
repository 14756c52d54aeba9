"""The shape every "wait on remote work started elsewhere" sensor shares, written once."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow_provider_sapplan._compat import BaseSensorOperator, BaseTrigger, default_deferrable
from airflow_provider_sapplan.core.remote_job import RemoteJobMixin
from airflow_provider_sapplan.core.status import Outcome
from airflow_provider_sapplan.core.trigger import EVENT_STATUSES
from airflow_provider_sapplan.core.validation import CheckedArguments, as_bool, as_duration
from airflow_provider_sapplan.core.waiting import (
    DEFAULT_OUTAGE_WINDOW,
    MIN_POLL_INTERVAL,
    OutageTolerance,
    deadline_after,
)
from airflow_provider_sapplan.exceptions import RemoteJobTimeoutError, SapplanError, TransientError


class RemoteJobSensor(CheckedArguments, RemoteJobMixin, BaseSensorOperator):
    """Pokes (or defers on) one remote job; succeeds when it succeeds, fails when it fails.

    Subclasses provide :meth:`job_ref` and :class:`RemoteJobMixin`'s platform API.

    :param outage_window: seconds of transient status-check failures in a row (network, 5xx, 429) the
        wait rides out before failing (default 900; 0 fails at the first). Deferred, the trigger applies
        it; poking in the worker (``mode="poke"``), the sensor does. A ``reschedule`` sensor runs each
        poke in a new process and cannot bound an outage across them: a failed poke fails the try there
        (Airflow's retries apply), as before; defer for long waits.
    """

    def __init__(
        self,
        *,
        deferrable: bool | None = None,
        poke_interval: float | timedelta = 30.0,
        outage_window: float = DEFAULT_OUTAGE_WINDOW,
        **kwargs: Any,
    ) -> None:
        # The shared waiting arguments are checked here, for every platform, before any remote call.
        poke_interval = as_duration(poke_interval, "poke_interval")
        if "timeout" in kwargs and kwargs["timeout"] is not None:
            kwargs["timeout"] = as_duration(kwargs["timeout"], "timeout")
        outage_window = as_duration(outage_window, "outage_window", allow_zero=True)
        OutageTolerance(outage_window)
        super().__init__(poke_interval=max(poke_interval, MIN_POLL_INTERVAL), **kwargs)
        self.outage_window = outage_window
        self.deferrable = default_deferrable() if deferrable is None else as_bool(deferrable, "deferrable")
        self._last_status: dict[str, Any] | None = None
        self._outage: OutageTolerance | None = None

    def job_ref(self) -> dict[str, Any]:
        raise NotImplementedError

    def make_trigger(self, ref: dict[str, Any], deadline: float | None) -> BaseTrigger:
        # The sensor did not start this job: it never cancels it.
        return self.build_trigger(
            ref, deadline, poll_interval=self.poke_interval, cancel_on_kill=False, outage_window=self.outage_window
        )

    def succeeded(self, ref: dict[str, Any], status: dict[str, Any], context: Any) -> Any:
        return status

    def poke(self, context: Any) -> bool:
        ref = self.job_ref()
        try:
            status = self.fetch(ref)
        except TransientError as err:
            if not self._ride_out(ref, err):
                raise
            return False
        if self._outage is not None:
            self._outage.recovered()
        self._last_status = status
        outcome = self.outcome(status)
        if outcome is Outcome.FAILED:
            self.failed(ref, status, context)
        self.log.info("%s is %s.", ref, self.raw_state(status))
        return outcome is Outcome.SUCCEEDED

    def _ride_out(self, ref: dict[str, Any], err: TransientError) -> bool:
        """True to poke again after ``err``; raises once the outage outlasted the window; False: fail as is."""
        if getattr(self, "mode", "poke") == "reschedule":
            return False
        if self._outage is None:
            self._outage = OutageTolerance(self.outage_window)
        outage = self._outage
        if outage.tolerate(err):
            self.log.warning("Waiting on %s: %s.", ref, outage.describe(err))
            return True
        if not outage.failures:  # a window of 0: the error as it came
            return False
        raise type(err)(f"Waiting on {ref}: {outage.gave_up(err)}", platform=err.platform) from err

    def execute(self, context: Any) -> Any:
        self.run_argument_checks()  # rendered values, before the first status request
        if not self.deferrable:
            super().execute(context)
            return self.succeeded(self.job_ref(), self._last_status or {}, context)
        if self.poke(context):
            return self.succeeded(self.job_ref(), self._last_status or {}, context)
        self.defer(
            trigger=self.make_trigger(self.job_ref(), deadline_after(self.timeout)),
            method_name="execute_complete",
            timeout=None,
        )

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> Any:
        if not isinstance(event, dict) or event.get("status") not in EVENT_STATUSES:
            raise SapplanError(f"{self.task_id} resumed with an unexpected trigger event {event!r}.")
        ref = event.get("ref") or self.job_ref()
        if event["status"] == "success":
            return self.succeeded(ref, event.get("result") or {}, context)
        if event["status"] == "failed":
            self.failed(ref, event.get("result") or {}, context)
        if event["status"] == "timeout":
            raise RemoteJobTimeoutError(f"{ref} was still {event.get('raw_state')} when the sensor timed out.")
        raise SapplanError(f"Waiting on {ref} failed in the triggerer: {event.get('message')}")
