"""The shape every "start remote work, then wait" operator shares, written once.

A platform operator implements :class:`RemoteJobOperator`'s small platform API (submit, fetch,
classify, cancel, build its trigger, turn a finished job into a result or an error). This base
class owns the rest:

* the job reference is pushed to XCom before any waiting;
* waiting polls in the worker, or (``deferrable``) checks once and defers with no framework
  timeout; the trigger enforces the wall-clock deadline itself;
* on Airflow 3.3+ the non-deferrable path is durable (``ResumableJobMixin``): a retry reconnects
  to the job it already started instead of starting a second one;
* ``on_kill`` and a timed-out wait cancel the remote job (best effort) when ``cancel_on_kill``;
* multi-phase waits: when :meth:`RemoteJobOperator.next_ref` returns a reference for a phase that
  succeeded (a change request accepted, then the tasks it started), waiting carries on with that
  reference in the worker or in a new trigger, under the same deadline.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any, NoReturn

from airflow_provider_sapplan._compat import (
    BaseOperator,
    BaseTrigger,
    ResumableJobMixin,
    default_deferrable,
)
from airflow_provider_sapplan.core.remote_job import RemoteJobMixin
from airflow_provider_sapplan.core.status import Outcome
from airflow_provider_sapplan.core.trigger import EVENT_STATUSES
from airflow_provider_sapplan.core.validation import ArgumentError, CheckedArguments, as_bool, as_duration
from airflow_provider_sapplan.core.waiting import (
    DEFAULT_OUTAGE_WINDOW,
    OutageTolerance,
    PollSchedule,
    deadline_after,
    seconds,
)
from airflow_provider_sapplan.exceptions import (
    NotFoundError,
    RemoteJobTimeoutError,
    SapplanError,
    TransientError,
)

NOT_FOUND = "not_found"


class RemoteJobOperator(CheckedArguments, RemoteJobMixin, ResumableJobMixin, BaseOperator):
    """Base for operators that start one remote job and (optionally) wait for it.

    :param wait_for_completion: wait for the job to end; otherwise return right after starting it.
    :param deferrable: wait in the triggerer instead of the worker (default from
        ``[operators] default_deferrable``).
    :param poll_interval: first interval between status checks, in seconds (at least 5; grows
        towards ``max_poll_interval``).
    :param max_poll_interval: cap for the growing interval, in seconds.
    :param timeout: overall wait deadline (seconds or timedelta); None waits as long as the task may run.
    :param cancel_on_kill: cancel the remote job when the task is killed or its wait times out.
    :param durable: on Airflow 3.3+, reconnect to the job already started when the task is retried.
    :param outage_window: seconds of transient status-check failures in a row (network, 5xx, 429) a wait
        rides out before failing (default 900); 0 fails at the first one.
    """

    xcom_ref_key: str = "remote_job"
    ui_color = "#e8f0fe"

    def __init__(
        self,
        *,
        wait_for_completion: bool = True,
        deferrable: bool | None = None,
        poll_interval: float = 10.0,
        max_poll_interval: float = 60.0,
        timeout: float | timedelta | None = None,
        cancel_on_kill: bool = True,
        durable: bool = True,
        outage_window: float = DEFAULT_OUTAGE_WINDOW,
        **kwargs: Any,
    ) -> None:
        super().__init__(durable=as_bool(durable, "durable"), **kwargs)
        # Every waiting argument is checked here, for every platform, before any remote call.
        self.outage_window = as_duration(outage_window, "outage_window", allow_zero=True)
        OutageTolerance(self.outage_window)
        self.wait_for_completion = as_bool(wait_for_completion, "wait_for_completion")
        self.deferrable = default_deferrable() if deferrable is None else as_bool(deferrable, "deferrable")
        self.poll_interval = as_duration(poll_interval, "poll_interval")
        self.max_poll_interval = as_duration(max_poll_interval, "max_poll_interval")
        if self.max_poll_interval < self.poll_interval:
            raise ArgumentError(
                f"max_poll_interval ({max_poll_interval!r}) must not be below poll_interval ({poll_interval!r})."
            )
        self.timeout = None if timeout is None else seconds(as_duration(timeout, "timeout"))
        self.cancel_on_kill = as_bool(cancel_on_kill, "cancel_on_kill")
        self._ref: dict[str, Any] | None = None
        self._deadline: float | None = None
        self._completed: tuple[Any, Any] | None = None

    def check_rendered_arguments(self) -> None:
        """The waiting arguments again (a subclass or a caller may have set them after construction)."""
        super().check_rendered_arguments()
        if self.timeout is not None:
            self.timeout = as_duration(self.timeout, "timeout")
        self.poll_interval = as_duration(self.poll_interval, "poll_interval")

    # -- platform API (plus RemoteJobMixin's fetch/outcome/raw_state/succeeded/failed) -------------

    def submit(self, context: Any) -> dict[str, Any]:
        """Start the remote job; return its JSON reference (ids only)."""
        raise NotImplementedError

    def cancel(self, ref: dict[str, Any]) -> None:
        raise NotImplementedError

    def make_trigger(self, ref: dict[str, Any], deadline: float | None) -> BaseTrigger:
        return self.build_trigger(
            ref,
            deadline,
            poll_interval=self.poll_interval,
            max_poll_interval=self.max_poll_interval,
            cancel_on_kill=self.cancel_on_kill,
            outage_window=self.outage_window,
        )

    def extra_xcom(self, ref: dict[str, Any]) -> dict[str, Any]:
        """More XCom values to push with the reference (a UI link, ...)."""
        return {}

    def not_waiting_result(self, ref: dict[str, Any]) -> Any:
        return ref

    def next_ref(self, ref: dict[str, Any], status: dict[str, Any], context: Any) -> dict[str, Any] | None:
        """Multi-phase waits: the reference to wait on after ``ref`` succeeded, or None when done.

        The default (one phase) is None. A platform whose work has phases (a request is accepted,
        then the objects it changed settle) returns the next phase's reference, which must differ
        from ``ref``; it may start the next phase's remote work. The wait then continues with it.
        Give it a ``"deadline"`` key (``self._deadline``) so a deferred wait keeps its deadline.
        """
        return None

    # -- execution -------------------------------------------------------------------------------

    def execute(self, context: Any) -> Any:
        try:
            return self._execute(context)
        except Exception:
            if self._ref is None and not getattr(self, "_link_pushed", False):
                self._link_missing = True  # failed before submit: extra links render empty, quietly
            raise

    def _execute(self, context: Any) -> Any:
        self.run_argument_checks()  # rendered values, before the job is started
        self._deadline = deadline_after(self.timeout)
        if not self.wait_for_completion:
            return self.not_waiting_result(self.submit_job(context))
        if self.deferrable:
            ref = self._stored_ref(context)
            if ref is None:
                ref = self.submit_job(context)
                self._store_ref(context, ref)
            return self._finish_or_defer(ref, context)
        return self.execute_resumable(context)

    def _task_state_store(self, context: Any) -> Any:
        store = context.get("task_state_store") if hasattr(context, "get") else None
        return store if store is not None and self.durable else None

    def _store_ref(self, context: Any, ref: dict[str, Any]) -> None:
        """Remember the started job for this task instance's retries (Airflow 3.3+), as the mixin does."""
        store = self._task_state_store(context)
        if store is not None:
            store.set(self.external_id_key, ref)

    def _stored_ref(self, context: Any) -> dict[str, Any] | None:
        """A deferrable retry reconnects to the job an earlier try started if it is still running or succeeded.

        An earlier try can end after its job was started or even finished (a worker or API-server hiccup
        after the trigger fired); starting the remote work again would do it twice. A job that failed, or
        is gone, is started afresh: that is what the retry is for.
        """
        store = self._task_state_store(context)
        ref = store.get(self.external_id_key) if store is not None else None
        if not ref:
            return None
        status = self.get_job_status(ref, context)
        if self.is_job_active(status) or self.is_job_succeeded(status):
            self.log.info("Reconnecting to %s, started by an earlier try (%s).", ref, status)
            self._ref = ref
            return dict(ref)
        self.log.info("The job of an earlier try, %s, ended %s; starting a new one.", ref, status)
        return None

    def _finish_or_defer(self, ref: dict[str, Any], context: Any) -> Any:
        """Check once (following finished phases); finish, or defer to the trigger for ``ref``.

        The job is running by now: a check that fails transiently (the platform went down right after the
        start) defers anyway, and the trigger rides the outage out within ``outage_window``.
        """
        while True:
            try:
                status = self.fetch(ref)
            except TransientError as err:
                if not self.outage_window:
                    raise
                self.log.warning(
                    "Checking %s failed (%s: %s); deferring, the trigger keeps checking for up to %.0fs of failures.",
                    ref,
                    type(err).__name__,
                    err,
                    self.outage_window,
                )
                self.defer(trigger=self.make_trigger(ref, self._deadline), method_name="execute_complete", timeout=None)
            following = self._following_ref(ref, status, context)
            if following is not None:
                ref = following
                continue
            if self.outcome(status).is_terminal:
                return self._finish(ref, status, context)
            self.defer(
                trigger=self.make_trigger(ref, self._deadline),
                method_name="execute_complete",
                timeout=None,
            )

    def _following_ref(self, ref: dict[str, Any], status: dict[str, Any], context: Any) -> dict[str, Any] | None:
        """The next phase's reference when ``ref`` succeeded and has one (remembered for retries)."""
        if self.outcome(status) is not Outcome.SUCCEEDED:
            return None
        following = self.next_ref(ref, status, context)
        if following is None or following == ref:
            return None
        self._ref = following
        self.log.info("%s done (%s); now waiting on %s.", ref, self.raw_state(status), following)
        store = context.get("task_state_store") if hasattr(context, "get") else None
        if store is not None and self.durable:
            # A retry on Airflow 3.3+ reconnects to the current phase, not the first one.
            store.set(self.external_id_key, following)
        return following

    def submit_job(self, context: Any) -> dict[str, Any]:
        ref = self.submit(context)
        self._ref = ref
        ti = context.get("ti") if hasattr(context, "get") else None
        if ti is not None:
            ti.xcom_push(key=self.xcom_ref_key, value=ref)
            for key, value in self.extra_xcom(ref).items():
                ti.xcom_push(key=key, value=value)
        self.log.info("Started %s", ref)
        return ref

    # ResumableJobMixin (Airflow 3.3+): statuses are "<outcome>:<raw state>" strings.

    def get_job_status(self, external_id: Any, context: Any) -> str:
        try:
            status = self.fetch(external_id)
        except NotFoundError:
            return f"{NOT_FOUND}:"
        return f"{self.outcome(status).value}:{self.raw_state(status)}"

    def is_job_active(self, status: str) -> bool:
        return status.startswith(f"{Outcome.RUNNING.value}:")

    def is_job_succeeded(self, status: str) -> bool:
        return status.startswith(f"{Outcome.SUCCEEDED.value}:")

    def poll_until_complete(self, external_id: Any, context: Any) -> Any:
        first = external_id
        self._ref = external_id
        schedule = PollSchedule(self.poll_interval, self.max_poll_interval)
        outage = OutageTolerance(self.outage_window)
        raw: str | None = None
        while True:
            try:
                status = self.fetch(external_id)
            except TransientError as err:
                if not outage.tolerate(err):
                    raise type(err)(f"Waiting on {external_id}: {outage.gave_up(err)}", platform=err.platform) from err
                self.log.warning("Waiting on %s: %s.", external_id, outage.describe(err))
            else:
                outage.recovered()
                raw = self.raw_state(status)
                following = self._following_ref(external_id, status, context)
                if following is not None:
                    external_id = following
                    schedule = PollSchedule(self.poll_interval, self.max_poll_interval)
                    continue
                if self.outcome(status).is_terminal:
                    result = self._finish(external_id, status, context)
                    self._completed = (first, result)
                    return result
            now = time.time()
            if self._deadline is not None and now >= self._deadline:
                self._timed_out(external_id, raw)
            wait = schedule.next_interval()
            if self._deadline is not None:
                wait = max(0.0, min(wait, self._deadline - now))
            self.log.info("%s is %s; checking again in %.0fs.", external_id, raw, wait)
            time.sleep(wait)

    def get_job_result(self, external_id: Any, context: Any) -> Any:
        # Airflow 3.3 asks for the result right after poll_until_complete: reuse it instead of
        # fetching (and judging) the job a second time.
        completed = getattr(self, "_completed", None)
        if completed is not None and completed[0] == external_id:
            return completed[1]
        return self.poll_until_complete(external_id, context)

    def _finish(self, ref: dict[str, Any], status: dict[str, Any], context: Any) -> Any:
        """Turn a terminal status into the task's result or error, once per task try."""
        if self.outcome(status) is Outcome.SUCCEEDED:
            return self.succeeded(ref, status, context)
        self.failed(ref, status, context)

    def _timed_out(self, ref: dict[str, Any], raw_state: str | None) -> NoReturn:
        if self.cancel_on_kill:
            self._cancel_quietly(ref)
        raise RemoteJobTimeoutError(
            f"{ref} was still {raw_state} after the {self.timeout:.0f}s timeout"
            f"{'; it was cancelled' if self.cancel_on_kill else ''}.",
            details={"ref": ref, "raw_state": raw_state},
        )

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> Any:
        """Resume after the trigger fired; validates the event instead of trusting it."""
        if not isinstance(event, dict) or event.get("status") not in EVENT_STATUSES:
            raise SapplanError(
                f"{self.task_id} resumed with an unexpected trigger event {event!r}; the triggerer and "
                "worker may run different provider versions."
            )
        ref = event.get("ref") or {}
        self._ref = ref
        status = event["status"]
        if status == "success" and self._deadline is None:
            # A multi-phase reference may carry the wait's deadline (the event repeats the ref's keys).
            self._deadline = event.get("deadline")
        if status == "success":
            following = self._following_ref(ref, event.get("result") or {}, context)
            if following is not None:
                return self._finish_or_defer(following, context)
        if status in ("success", "failed"):
            return self._finish(ref, event.get("result") or {}, context)
        if status == "timeout":
            self._timed_out(ref, event.get("raw_state"))
        raise SapplanError(
            f"Waiting on {ref} failed in the triggerer: {event.get('message')}",
            details={"ref": ref, "raw_state": event.get("raw_state")},
        )

    def on_kill(self) -> None:
        if self.cancel_on_kill and self._ref:
            self._cancel_quietly(self._ref)

    def _cancel_quietly(self, ref: dict[str, Any]) -> None:
        try:
            self.cancel(ref)
            self.log.info("Cancelled %s.", ref)
        except Exception:
            self.log.warning("Could not cancel %s.", ref, exc_info=True)
