"""Anaplan sandbox: the task state machine (start, list, get, cancel) and its side effects.

Task state is computed lazily from timestamps: whenever the backend is touched, tasks whose end
time has passed are finalised in order (results, dumps, export files). Plain Python, no HTTP;
mixed into :class:`~.backend.AnaplanBackend`.
"""

from __future__ import annotations

import copy
import csv
import uuid
from collections.abc import Iterator
from typing import Any

from ..storage import Blob, Content
from .models import (
    _MONTHS,
    _REGIONS,
    CANCEL_SECONDS,
    CANCELLED,
    CANCELLING,
    COMPLETE,
    DOWNLOAD_CHUNK_BYTES,
    IN_PROGRESS,
    INVALID_MARKER,
    NOT_STARTED,
    TERMINAL_STATES,
    ActionConfig,
    AnaplanError,
    DumpRecord,
    ExportDef,
    ImportDef,
    Model,
    ModelFile,
    OtherAction,
    ProcessDef,
    Task,
    _detail,
    _ms,
)


class TasksMixin:
    """Import/export/process/action tasks and what finishing one does to the model's state."""

    def start_task(self, workspace_id: str, model_id: str, kind: str, action_id: str, body: Any) -> dict[str, Any]:
        """``POST .../{kind}/{id}/tasks``: start a task (answers while the model is busy)."""
        if not isinstance(body, dict) or not body.get("localeName"):
            raise AnaplanError(
                400, 'Bad Request: the request body must contain localeName, e.g. {"localeName": "en_US"}'
            )
        mapping = body.get("mappingParameters")
        if mapping is not None and (
            not isinstance(mapping, list)
            or not all(isinstance(m, dict) and "entityType" in m and "entityName" in m for m in mapping)
        ):
            raise AnaplanError(
                400, 'Bad Request: mappingParameters must be a list of {"entityType": ..., "entityName": ...}'
            )
        with self._lock:
            now = self._advance()
            model = self._model(workspace_id, model_id, busy_ok=True)
            if action_id not in model.definitions(kind):
                raise AnaplanError(404, f"Not Found: {action_id} is not one of the model's {kind}")
            config = self.config_for(action_id)
            starts = now + self.context.scaled(config.queue_seconds)
            task = Task(
                id=uuid.uuid4().hex.upper(),
                kind=kind,
                action_id=action_id,
                model_id=model.id,
                created=now,
                starts=starts,
                ends=starts + self.context.scaled(config.run_seconds),
                config=config,
                request=copy.deepcopy(body),
                cancel_delay=self.context.scaled(CANCEL_SECONDS),
            )
            model.tasks[task.id] = task
            self._unfinished.append(task)
            self.last_task_request[action_id] = copy.deepcopy(body)
            self.context.stats.record_task_started(action_id)
            # Anaplan answers a task start with NOT_STARTED, whatever the queue time.
            return {"taskId": task.id, "taskState": NOT_STARTED, "creationTime": _ms(task.created)}

    def _task(self, workspace_id: str, model_id: str, kind: str, action_id: str, task_id: str) -> Task:
        model = self._model(workspace_id, model_id, busy_ok=True)
        if action_id not in model.definitions(kind):
            raise AnaplanError(404, f"Not Found: {action_id} is not one of the model's {kind}")
        task = model.tasks.get(task_id)
        if task is None or task.action_id != action_id or task.kind != kind:
            raise AnaplanError(404, f"Not Found: task {task_id}")
        return task

    def list_tasks(self, workspace_id: str, model_id: str, kind: str, action_id: str) -> list[dict[str, Any]]:
        """Tasks of one action, in ascending creation time."""
        with self._lock:
            now = self._advance()
            model = self._model(workspace_id, model_id, busy_ok=True)
            if action_id not in model.definitions(kind):
                raise AnaplanError(404, f"Not Found: {action_id} is not one of the model's {kind}")
            tasks = sorted((t for t in model.tasks.values() if t.action_id == action_id), key=lambda t: t.created)
            return [self._task_json(t, now, False) for t in tasks]

    def get_task(
        self,
        workspace_id: str,
        model_id: str,
        kind: str,
        action_id: str,
        task_id: str,
        process_details: bool = False,
    ) -> dict[str, Any]:
        """``GET .../tasks/{taskId}``: state, progress and, once finished, the result."""
        with self._lock:
            now = self._advance()
            task = self._task(workspace_id, model_id, kind, action_id, task_id)
            return self._task_json(task, now, True, process_details)

    def cancel_task(self, workspace_id: str, model_id: str, kind: str, action_id: str, task_id: str) -> dict[str, Any]:
        """``DELETE .../tasks/{taskId}``: cancel a queued or running task (CANCELLING, then CANCELLED).

        Anaplan's docs only describe cancelling an ongoing task; cancelling one that already
        finished (or is already cancelling) changes nothing and answers its current state, so a
        best-effort cancel from ``on_kill`` is always safe.
        """
        with self._lock:
            now = self._advance()
            task = self._task(workspace_id, model_id, kind, action_id, task_id)
            if task.state(now) in (NOT_STARTED, IN_PROGRESS):
                task.cancel_requested = now
                task.cancel_done = now + self.context.scaled(CANCEL_SECONDS)
            return self._task_json(task, now, True)

    def _task_json(self, task: Task, now: float, detail: bool, process_details: bool = False) -> dict[str, Any]:
        state = task.state(now)
        if not detail:
            return {"taskId": task.id, "taskState": state, "creationTime": _ms(task.created)}
        out: dict[str, Any] = {
            "type": "taskInformation",
            "taskId": task.id,
            "currentStep": self._current_step(task, state, now),
            "progress": task.progress(now),
        }
        if state in TERMINAL_STATES and task.result is not None:
            result = copy.deepcopy(task.result)
            if process_details and task.kind == "processes":
                self._add_process_details(task, result)
            out["result"] = result
        out["taskState"] = state
        out["creationTime"] = _ms(task.created)
        return out

    def _current_step(self, task: Task, state: str, now: float) -> str:
        if state == NOT_STARTED:
            return "Waiting to start."
        if state == CANCELLING:
            return "Cancelling."
        if state == CANCELLED:
            return "Cancelled."
        if state == COMPLETE:
            return "Complete."
        if task.kind == "processes":
            steps = self.models[task.model_id].processes[task.action_id].steps
            index = min(int(task.progress(now) * len(steps)), len(steps) - 1)
            return f"Running step {index + 1} of {len(steps)}."
        return "Processing ..."

    def _add_process_details(self, task: Task, result: dict[str, Any]) -> None:
        nested = result.get("nestedResults", [])
        if not nested:
            return
        step = (task.ends - task.starts) / len(nested)
        for i, item in enumerate(nested):
            item["duration"] = str(int(step * 1000))
            item["startTime"] = str(_ms(task.starts + i * step))
        result["duration"] = str(int((task.ends - task.starts) * 1000))
        result["startTime"] = str(_ms(task.starts))

    # ----------------------------------------------------------------------- task side effects

    def _advance(self) -> float:
        """Finalise, in time order, every task whose end has passed; returns ``now``. Under the lock."""
        now = self._now()
        due = [t for t in self._unfinished if t.terminal_time <= now]
        if due:
            due.sort(key=lambda t: t.terminal_time)
            for task in due:
                self._unfinished.remove(task)
                self._finalize(task)
        return now

    def _finalize(self, task: Task) -> None:
        model = self.models.get(task.model_id)
        if model is None:
            return
        if task.cancel_requested is not None or task.config.outcome == "cancelled":
            task.final_state = CANCELLED
            task.result = self._cancelled_result(task)
            return
        task.final_state = COMPLETE
        if task.kind == "imports":
            result, dump = self._evaluate_import(model, model.imports[task.action_id], task.config)
            self._keep_dump(model.import_dumps, task.action_id, task.id, dump, result)
            task.result = result
        elif task.kind == "exports":
            task.result = self._run_export(model, model.exports[task.action_id], task.config)
        elif task.kind == "actions":
            task.result = self._run_action(model.actions[task.action_id], task.config)
        else:
            task.result = self._run_process(model, model.processes[task.action_id], task)

    def _keep_dump(
        self,
        dumps: dict[Any, DumpRecord],
        key: Any,
        task_id: str,
        dump: Content | None,
        result: dict[str, Any],
    ) -> None:
        """Dumps are kept per user and import: a new dump replaces the old one, a clean run removes it."""
        old = dumps.get(key)
        if dump is not None:
            dumps[key] = DumpRecord(task_id, dump)
        elif result.get("successful") and old is not None:
            del dumps[key]
        else:
            return
        if old is not None:
            self.store.delete(old.content.blobs)

    @staticmethod
    def _cancelled_result(task: Task) -> dict[str, Any]:
        message = {
            "imports": ("msgImportCancelled", "Import cancelled by user"),
            "exports": ("msgExportCancelled", "Export cancelled by user"),
        }.get(task.kind, ("taskElementFailed", "Task cancelled by user"))
        result: dict[str, Any] = {
            "successful": False,
            "failureDumpAvailable": False,
            "objectId": task.action_id,
            "details": [_detail(*message)],
        }
        if task.kind == "processes":
            result["nestedResults"] = []
        return result

    def _scan(self, content: Content) -> tuple[int, bool]:
        """Count lines and look for the failure marker, fast (block-wise, no line splitting)."""
        lines = 0
        found = False
        tail = b""
        last = b""
        keep = len(INVALID_MARKER) - 1
        for block in content.iter_blocks():
            lines += block.count(b"\n")
            if not found and INVALID_MARKER in tail + block:
                found = True
            tail = block[-keep:]
            last = block[-1:]
        if last not in (b"", b"\n"):
            lines += 1
        return lines, found

    def _evaluate_import(
        self, model: Model, imp: ImportDef, config: ActionConfig
    ) -> tuple[dict[str, Any], Content | None]:
        """Run an import against its source file: counts, failed/warned rows, and the dump."""
        file = model.files.get(imp.source_file_id)
        content = file.content if file is not None else None
        if content is None:
            return {
                "successful": False,
                "failureDumpAvailable": False,
                "objectId": imp.id,
                "details": [
                    _detail(
                        "uploadedFileNoLongerAvailable",
                        "The uploaded file is no longer available. Please upload the file again.",
                    )
                ],
            }, None
        lines, marked = self._scan(content)
        total = max(lines - 1, 0)
        forced_fail = config.failed_rows if config.outcome == "fail" else 0
        forced_warn = config.failed_rows if config.outcome == "warnings" else 0
        hierarchy = imp.import_type == "HIERARCHY_DATA"
        failed = warned = 0
        dump: Content | None = None
        if marked or forced_fail or forced_warn:
            failed, warned, dump = self._write_dump(content, hierarchy, marked, forced_fail, forced_warn)
        success = total - failed - warned
        prefix = "hierarchy" if hierarchy else "lineItem"
        name_key = "hierarchyName" if hierarchy else "lineItemName"
        values = [
            name_key, imp.target,
            "successRowCount", str(success), "successCreateCount", str(success), "successUpdateCount", "0",
            "warningsRowCount", str(warned), "warningsCreateCount", str(warned), "warningsUpdateCount", "0",
            "failedCount", str(failed), "ignoredCount", "0", "totalRowCount", str(total),
            "totalCreateCount", str(success + warned), "totalUpdateCount", "0", "invalidCount", "0",
            "updatedCount", "0", "renamedCount", "0", "createdCount", str(success + warned),
        ]  # fmt: skip
        text = f"{imp.target}: {success} ({success}/0) rows successful"
        if warned:
            text += f", {warned} ({warned}/0) rows has warnings"
        if failed:
            text += f", {failed} failed"
        text += ", 0 ignored"
        suffix = "WithFailures" if failed else "WithWarnings" if warned else ""
        details = [_detail(f"{prefix}RowsProcessed{suffix}", text, values)]
        if failed:
            code, message = (
                ("hierarchyImportInvalidName", "Invalid name")
                if hierarchy
                else ("moduleImportNumberFormat", "Invalid number")
            )
            details.append(_detail(code, message, [], failed))
        if warned:
            code, message = (
                ("hierarchyImportInvalidParent", "Invalid parent")
                if hierarchy
                else ("moduleImportInvalidListIdentifier", f"Item not located in {imp.target} list")
            )
            details.append(_detail(code, message, [], warned))
        if dump is not None and not (failed or warned):
            self.store.delete(dump.blobs)
            dump = None
        result = {
            "successful": failed == 0 and config.outcome != "fail",
            "failureDumpAvailable": dump is not None,
            "objectId": imp.id,
            "details": details,
        }
        return result, dump

    def _write_dump(
        self, content: Content, hierarchy: bool, marked: bool, forced_fail: int, forced_warn: int
    ) -> tuple[int, int, Content]:
        """Second pass over the source: write the dump CSV; returns (failed, warned, dump)."""
        error_text = "Invalid name" if hierarchy else "Invalid number"
        warn_text = "Invalid parent" if hierarchy else "Item not located in list"
        path = self.store.new_path(".csv")
        failed = warned = 0
        with open(path, "w", encoding="utf-8", newline="") as out:
            writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n")
            lines: Iterator[bytes] = content.iter_lines()
            header_line = next(lines, b"")
            header = next(csv.reader([header_line.decode("utf-8", "replace").rstrip("\r\n")]), [])
            writer.writerow(["_Status_", *header, "_Line_", "_Error_1_"])
            for number, raw in enumerate(lines, start=2):
                if not marked and failed >= forced_fail and warned >= forced_warn:
                    break
                status = ""
                if INVALID_MARKER in raw or failed < forced_fail:
                    status, message = "E", error_text
                    failed += 1
                elif warned < forced_warn:
                    status, message = "W", warn_text
                    warned += 1
                if status:
                    text = raw.decode("utf-8", "replace").rstrip("\r\n")
                    row = next(csv.reader([text]), [])
                    writer.writerow([status, *row, str(number), message])
        size = path.stat().st_size
        return failed, warned, Content([Blob(path, size)], split=DOWNLOAD_CHUNK_BYTES)

    def _run_export(self, model: Model, exp: ExportDef, config: ActionConfig) -> dict[str, Any]:
        """Write the export's output file (same id as the export) and report its size."""
        if config.outcome == "fail":
            return {
                "successful": False,
                "failureDumpAvailable": False,
                "objectId": exp.id,
                "details": [
                    _detail("actionFailed", "Action failed. The export could not be completed (sandbox fault).")
                ],
            }
        path = self.store.new_path(".csv")
        with open(path, "w", encoding="utf-8", newline="") as out:
            out.write(",".join(self._export_header()) + "\n")
            batch: list[str] = []
            for i in range(config.export_rows):
                batch.append(
                    f"Forecast,{_REGIONS[i % 4]},Product {i % 250 + 1:04d},{_MONTHS[i % 12]} FY26,"
                    f"{(i * 7919) % 1000000 / 100:.2f}\n"
                )
                if len(batch) >= 10000:
                    out.write("".join(batch))
                    batch.clear()
            out.write("".join(batch))
        size = path.stat().st_size
        file = model.files.get(exp.id)
        if file is None:
            file = model.files[exp.id] = ModelFile(exp.id, f"{exp.name}.csv", export=True)
        self._commit(file, Content([Blob(path, size)], split=DOWNLOAD_CHUNK_BYTES))
        return {
            "successful": True,
            "failureDumpAvailable": False,
            "objectId": exp.id,
            "details": [
                _detail(
                    "exportSucceeded",
                    f"Export for {exp.name} completed successfully. {size} bytes written.",
                    ["exportName", exp.name, "fileSize", str(size)],
                )
            ],
        }

    @staticmethod
    def _run_action(action: OtherAction, config: ActionConfig) -> dict[str, Any]:
        """Delete-from-list and other actions: success or a documented failure code."""
        delete = action.action_type == "DELETE_BY_SELECTION"
        target, selection = "Actuals Periods", "Delete Old Actuals Filter"
        if config.outcome == "fail":
            detail = (
                _detail(
                    "deleteFromSelectionFailed",
                    f"Deleting from the list {target} using {selection} failed: sandbox fault",
                    ["targetName", target, "filterName", selection, "errorMessage", "sandbox fault"],
                )
                if delete
                else _detail("actionFailed", f"Action failed. {action.name} could not run (sandbox fault).")
            )
            successful = False
        else:
            detail = (
                _detail(
                    "deleteFromSelectionSucceeded",
                    f"{config.failed_rows + 9} items were deleted from the list {target} using {selection}",
                    [
                        "affectedItems",
                        str(config.failed_rows + 9),
                        "targetName",
                        target,
                        "filterName",
                        selection,
                    ],
                )
                if delete
                else _detail("taskElementSucceeded", f"{action.name} completed successfully.")
            )
            successful = True
        return {
            "successful": successful,
            "failureDumpAvailable": False,
            "objectId": action.id,
            "details": [detail],
        }

    def _run_process(self, model: Model, process: ProcessDef, task: Task) -> dict[str, Any]:
        """Run the steps in order; a process succeeds only if every step did.

        Each step behaves as configured for its own action id; configuring the process itself with
        ``fail`` makes its first import step (or first step) fail ``failed_rows`` rows.
        """
        forced_index = -1
        if task.config.outcome == "fail":
            forced_index = next((i for i, s in enumerate(process.steps) if s in model.imports), 0)
        nested: list[dict[str, Any]] = []
        for index, step in enumerate(process.steps):
            config = self.config_for(step)
            if config.outcome == "cancelled":
                config.outcome = "success"
            if index == forced_index:
                config.outcome, config.failed_rows = "fail", task.config.failed_rows
            if step in model.imports:
                result, dump = self._evaluate_import(model, model.imports[step], config)
                self._keep_dump(model.process_dumps, (process.id, step), task.id, dump, result)
            elif step in model.exports:
                result = self._run_export(model, model.exports[step], config)
            else:
                result = self._run_action(model.actions[step], config)
            nested.append(
                {
                    "objectId": step,
                    "successful": result["successful"],
                    "failureDumpAvailable": result["failureDumpAvailable"],
                    "details": result["details"],
                }
            )
        return {
            "successful": all(n["successful"] for n in nested),
            "failureDumpAvailable": any(n["failureDumpAvailable"] for n in nested),
            "objectId": process.id,
            "nestedResults": nested,
        }
