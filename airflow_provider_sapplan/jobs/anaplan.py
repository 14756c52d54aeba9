"""What an Anaplan task means: its states, outcome, row counts, result summary and failure error.

Shared by the Anaplan operators, sensor and trigger (which must not import one another), and built
on :mod:`airflow_provider_sapplan.hooks.anaplan` and :mod:`airflow_provider_sapplan.core` only.
The operator and sensor classes set ``trigger_class`` themselves.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, NoReturn

from airflow_provider_sapplan.core.remote_job import RemoteJobMixin
from airflow_provider_sapplan.core.status import Outcome, StatusTable
from airflow_provider_sapplan.exceptions import DumpUnavailableError, RemoteJobFailedError, SapplanError
from airflow_provider_sapplan.hooks.anaplan import ActionType, AnaplanHook

DUMP_PREVIEW_LINES = 10

TASK_STATES = StatusTable(
    "Anaplan",
    running=("NOT_STARTED", "IN_PROGRESS", "CANCELLING"),
    succeeded=("COMPLETE",),
    failed=("CANCELLED",),
)


def task_outcome(task: Mapping[str, Any]) -> Outcome:
    """A task's outcome: COMPLETE counts as success only when the result says ``successful``."""
    outcome = TASK_STATES.outcome(task.get("taskState"))
    if outcome is Outcome.SUCCEEDED and not (task.get("result") or {}).get("successful", False):
        return Outcome.FAILED
    return outcome


def task_has_warnings(task: Mapping[str, Any]) -> bool:
    """True when a finished task reports rows with warnings (``warningsRowCount`` > 0 or a warning type)."""
    result = task.get("result") or {}
    results = [result, *(result.get("nestedResults") or [])]
    for item in results:
        for detail in item.get("details") or []:
            values = detail_values(detail)
            if int(values.get("warningsRowCount", "0") or 0) > 0:
                return True
            if "warning" in str(detail.get("type", "")).lower():
                return True
    return False


def detail_values(detail: Mapping[str, Any]) -> dict[str, str]:
    """Anaplan's ``values`` list (``[name, value, name, value, ...]``) as a dict."""
    values = detail.get("values") or []
    return {str(values[i]): str(values[i + 1]) for i in range(0, len(values) - 1, 2)}


def row_counts(task: Mapping[str, Any]) -> dict[str, int]:
    """Rows processed, failed and with warnings, summed over a task's (nested) details."""
    totals = {"successRowCount": 0, "failedCount": 0, "warningsRowCount": 0, "ignoredCount": 0}
    result = task.get("result") or {}
    for item in [result, *(result.get("nestedResults") or [])]:
        for detail in item.get("details") or []:
            values = detail_values(detail)
            for key in totals:
                try:
                    totals[key] += int(values.get(key, "0") or 0)
                except ValueError:
                    continue
    return totals


def export_counts(task: Mapping[str, Any]) -> dict[str, int]:
    """What a finished export reports: the bytes it wrote (``exportSucceeded``'s ``fileSize``).

    An export's task result carries no row counts (the import counters would all read 0); Anaplan
    documents ``exportSucceeded`` as "Export for ${exportName} completed successfully. ${fileSize}
    bytes written.", so the size is the count that fits an export.
    """
    written = 0
    result = task.get("result") or {}
    for item in [result, *(result.get("nestedResults") or [])]:
        for detail in item.get("details") or []:
            try:
                written += int(detail_values(detail).get("fileSize", "0") or 0)
            except ValueError:
                continue
    return {"bytes_written": written}


def summary_line(summary: Mapping[str, Any]) -> str:
    """The counts of a finished task for its success log line: bytes (and lines) for exports, rows otherwise."""
    export = summary.get("export")
    if export is not None:
        text = f"{export['bytes_written']} bytes written"
        if "lines" in export:
            text += f", {export['lines']} line(s) downloaded"
        return text
    return str(summary.get("row_counts"))


def task_summary(ref: dict[str, Any], task: dict[str, Any]) -> dict[str, Any]:
    """The JSON-serializable XCom value of a finished task (exports add ``export``: their bytes written)."""
    result = task.get("result") or {}
    extra: dict[str, Any] = {}
    if ActionType.coerce(ref.get("action_type") or "imports") is ActionType.EXPORT:
        extra["export"] = export_counts(task)
    return {
        **{key: ref.get(key) for key in ("workspace_id", "model_id", "action_type", "action_id", "task_id")},
        "task_state": task.get("taskState"),
        "successful": bool(result.get("successful", False)),
        "failure_dump_available": bool(result.get("failureDumpAvailable", False)),
        "details": result.get("details") or [],
        "nested_results": result.get("nestedResults") or [],
        "row_counts": row_counts(task),
        **extra,
    }


def raise_task_failure(
    hook: AnaplanHook,
    ref: dict[str, Any],
    task: dict[str, Any],
    *,
    dump_destination: str | None,
    log: logging.Logger | Any,
) -> NoReturn:
    """Fetch the failure dumps of a failed task, log their first rows, and raise a clear error."""
    result = task.get("result") or {}
    state = task.get("taskState")
    dumps: list[dict[str, Any]] = []
    action_type = ActionType.coerce(ref["action_type"])
    targets: list[str | None] = []
    if action_type is ActionType.PROCESS:
        targets = [
            str(step.get("objectId"))
            for step in result.get("nestedResults") or []
            if not step.get("successful", True) and step.get("failureDumpAvailable")
        ]
    elif result.get("failureDumpAvailable"):
        targets = [None]
    for object_id in targets:
        dumps.append(_collect_dump(hook, ref, object_id, dump_destination, log))
    counts = row_counts(task)
    failed_steps = [
        str(step.get("objectId")) for step in result.get("nestedResults") or [] if not step.get("successful", True)
    ]
    message = (
        f"Anaplan {action_type.label} {ref['action_id']} (task {ref['task_id']}) ended {state}"
        f"{' without success' if state == 'COMPLETE' else ''}: {counts['failedCount']} row(s) failed, "
        f"{counts['warningsRowCount']} with warnings"
    )
    if failed_steps:
        message += f"; failed step(s): {', '.join(failed_steps)}"
    if dumps:
        message += f"; failure dump(s) for {', '.join(d['object_id'] or ref['action_id'] for d in dumps)}"
        saved = dump_destination and all(d.get("saved_to") for d in dumps if d.get("available"))
        message += " logged above" + (f" and saved under {dump_destination}" if saved else "")
        if any(d.get("save_error") for d in dumps):
            message += f" (saving under {dump_destination} failed, see the warning above)"
    raise RemoteJobFailedError(
        message + ".",
        platform="Anaplan",
        details={**task_summary(ref, task), "dumps": dumps},
    )


def _collect_dump(
    hook: AnaplanHook, ref: dict[str, Any], object_id: str | None, destination: str | None, log: Any
) -> dict[str, Any]:
    label = object_id or ref["action_id"]
    info: dict[str, Any] = {"object_id": object_id, "saved_to": None, "available": True}
    kwargs = {
        "object_id": object_id,
        "workspace_id": ref.get("workspace_id"),
        "model_id": ref.get("model_id"),
    }
    try:
        head = hook.dump_head(
            ref["action_type"], ref["action_id"], ref["task_id"], max_lines=DUMP_PREVIEW_LINES + 1, **kwargs
        )
        log.error("First rows of the failure dump of %s:\n%s", label, "\n".join(head))
    except DumpUnavailableError as err:
        log.warning("%s", err.message)
        info["available"] = False
        return info
    except SapplanError as err:
        log.warning("Could not read the failure dump of %s: %s", label, err.message)
        info["available"] = False
        return info
    if destination:
        name = f"{ref['action_id']}_{ref['task_id']}{'_' + object_id if object_id else ''}_dump.csv"
        target = str(destination).rstrip("/") + "/" + name
        try:
            hook.save_dump(target, ref["action_type"], ref["action_id"], ref["task_id"], **kwargs)
            info["saved_to"] = target
        except Exception as err:  # the task's own failure must win over a storage problem
            message = getattr(err, "message", None) or f"{type(err).__name__}: {err}"
            log.warning("Could not save the failure dump of %s to %s: %s", label, target, message)
            info["save_error"] = message
    return info


class AnaplanHookMixin:
    """One hook per task run for Anaplan operators and sensors: the connection is read once."""

    anaplan_conn_id: str
    workspace_id: str | None
    model_id: str | None

    @property
    def hook(self) -> AnaplanHook:
        hook = self.__dict__.get("_hook")
        if hook is None:
            hook = self.__dict__["_hook"] = AnaplanHook(
                self.anaplan_conn_id, workspace_id=self.workspace_id, model_id=self.model_id
            )
        return hook


class AnaplanTaskStatusMixin(AnaplanHookMixin, RemoteJobMixin):
    """How an Anaplan task is read and judged, shared by the run operators and the task sensor.

    :meth:`_hook_for` is the hook that reads a task (the task's own workspace/model for operators);
    ``dump_destination`` is where failure dumps are saved in full (operators only).
    """

    conn_id_field = "anaplan_conn_id"
    dump_destination: str | None = None

    def _hook_for(self, ref: dict[str, Any]) -> AnaplanHook:
        return self.hook

    def fetch(self, ref: dict[str, Any]) -> dict[str, Any]:
        return self._hook_for(ref).get_task(ref["action_type"], ref["action_id"], ref["task_id"])

    def outcome(self, status: dict[str, Any]) -> Outcome:
        return task_outcome(status)

    def raw_state(self, status: dict[str, Any]) -> str:
        return str(status.get("taskState"))

    def failed(self, ref: dict[str, Any], status: dict[str, Any], context: Any) -> NoReturn:
        raise_task_failure(
            self._hook_for(ref),
            ref,
            status,
            dump_destination=self.dump_destination,
            log=self.log,  # type: ignore[attr-defined]
        )
