"""Anaplan sandbox: the emulated tenant (seed data, control settings, workspaces, models, definitions).

Composes the auth, file and task mixins into :class:`AnaplanBackend`. Plain Python, no HTTP.
"""

from __future__ import annotations

import csv
import threading
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

from ..platform import SandboxContext
from ..routing import FileSlice
from ..storage import Blob, BlobStore, Content
from .auth import TokensMixin
from .files import FilesMixin
from .models import (
    _ACTIVE_STATE,
    _MODEL_STATE_MESSAGES,
    _MONTHS,
    _REGIONS,
    ACTUALS_FILE_ID,
    ARCHIVE_WORKSPACE_ID,
    BUDGET_FILE_IDS,
    DELETE_OLD_ACTUALS_ID,
    EXPORT_FORECAST_ID,
    FORECAST_FILE_ID,
    HEADCOUNT_FILE_ID,
    HEADCOUNT_MODEL_ID,
    IN_PROGRESS,
    LOAD_ACTUALS_ID,
    LOAD_HEADCOUNT_ID,
    MODEL_ID,
    MODEL_STATE_STATUS,
    MONTHLY_CLOSE_ID,
    ORDER_PRODUCTS_ID,
    RELOAD_HEADCOUNT_ID,
    USER_EMAIL,
    WORKSPACE_ID,
    ActionConfig,
    AnaplanError,
    ExportDef,
    ImportDef,
    Model,
    ModelFile,
    OtherAction,
    ProcessDef,
    Task,
    Token,
    Workspace,
    _ms,
)
from .tasks import TasksMixin

# ----------------------------------------------------------------------------------- the backend


class AnaplanBackend(TokensMixin, FilesMixin, TasksMixin):
    """State and behaviour of the emulated Anaplan tenant; every public method is thread-safe.

    Seed data (fixed ids) is described in the module constants. Tests script it directly
    (``configure``, ``set_model_state``, ``expire_tokens``, ``read_file``/``write_file``) or through
    the HTTP control API that :class:`AnaplanPlatform` maps onto the same methods.
    """

    def __init__(self, context: SandboxContext) -> None:
        self.context = context
        #: Like a strict gateway, file bodies sent with ``Transfer-Encoding: chunked`` (no Content-Length)
        #: are refused with 411; set True to accept them.
        self.accept_chunked_bodies = False
        #: List keys (``"processes"``, ``"files"``, ...) answered as a bare JSON array, the way the API
        #: reference documents the process list, instead of ``{"meta": ..., key: [...]}``.
        self.bare_array_lists: set[str] = set()
        self.store = BlobStore(Path(context.data_dir) / "anaplan")
        self._lock = threading.RLock()
        self.tokens: dict[str, Token] = {}
        self.workspaces: dict[str, Workspace] = {}
        self.models: dict[str, Model] = {}
        self.defaults = ActionConfig()
        self.action_configs: dict[str, dict[str, Any]] = {}
        #: last JSON body POSTed to start a task, per action id (mapping parameters etc.)
        self.last_task_request: dict[str, dict[str, Any]] = {}
        self._unfinished: list[Task] = []
        self._seed()

    # ------------------------------------------------------------------------------ seed / reset

    def _seed(self) -> None:
        """Build the seed tenant (called at start and by :meth:`reset`)."""
        self.workspaces = {
            WORKSPACE_ID: Workspace(WORKSPACE_ID, "FP&A Sandbox"),
            ARCHIVE_WORKSPACE_ID: Workspace(ARCHIVE_WORKSPACE_ID, "Sandbox Archive"),
        }
        sales = Model(MODEL_ID, "Sales Planning", WORKSPACE_ID)
        actuals = "Version,Region,Product,Month,Amount\n" + "".join(
            f"Actual,{_REGIONS[i % 4]},Product {i + 1:04d},{_MONTHS[i % 12]} FY26,{1000 + 37.5 * i:.2f}\n"
            for i in range(10)
        )
        headcount = "Employee,Parent,Code,Department,Start Date\n" + "".join(
            f"Employee {i + 1:03d},{dept},E{i + 1:03d},{dept},2024-{(i % 12) + 1:02d}-01\n"
            for i, dept in enumerate(("Sales", "Finance", "Engineering", "Sales", "Operations", "Finance", "HR", "IT"))
        )
        budget = "Version,Region,Amount\nBudget,EMEA,1000\nBudget,APAC,800\n"
        for file_id, name, text in (
            (ACTUALS_FILE_ID, "Actuals.csv", actuals),
            (HEADCOUNT_FILE_ID, "Headcount.csv", headcount),
            (BUDGET_FILE_IDS[0], "Budget.csv", budget),
            (BUDGET_FILE_IDS[1], "Budget.csv", budget),
        ):
            sales.files[file_id] = ModelFile(file_id, name, default=Content([self.store.write_bytes(text.encode())]))
        sales.files[FORECAST_FILE_ID] = ModelFile(FORECAST_FILE_ID, "Forecast.csv", export=True)
        sales.imports = {
            LOAD_ACTUALS_ID: ImportDef(
                LOAD_ACTUALS_ID, "Load Actuals", ACTUALS_FILE_ID, "MODULE_DATA", "Sales Actuals"
            ),
            LOAD_HEADCOUNT_ID: ImportDef(
                LOAD_HEADCOUNT_ID, "Load Headcount", HEADCOUNT_FILE_ID, "HIERARCHY_DATA", "Employees"
            ),
        }
        sales.exports = {EXPORT_FORECAST_ID: ExportDef(EXPORT_FORECAST_ID, "Export Forecast")}
        sales.processes = {
            MONTHLY_CLOSE_ID: ProcessDef(MONTHLY_CLOSE_ID, "Monthly Close", [LOAD_ACTUALS_ID, EXPORT_FORECAST_ID]),
            RELOAD_HEADCOUNT_ID: ProcessDef(RELOAD_HEADCOUNT_ID, "Reload Headcount", [LOAD_HEADCOUNT_ID]),
        }
        sales.actions = {
            DELETE_OLD_ACTUALS_ID: OtherAction(
                DELETE_OLD_ACTUALS_ID,
                "Delete Old Actuals",
                "DELETE_BY_SELECTION",
                {"listId": "101000000015", "filterLineItemId": "503000000001"},
            ),
            ORDER_PRODUCTS_ID: OtherAction(
                ORDER_PRODUCTS_ID,
                "Order Products",
                "ORDER_HIERARCHY",
                {"listId": "101000000004", "sortOrder": "Descending", "lineItemId": "411000000002"},
            ),
        }
        headcount_model = Model(HEADCOUNT_MODEL_ID, "Headcount Planning", WORKSPACE_ID, memory_usage=763180)
        self.models = {MODEL_ID: sales, HEADCOUNT_MODEL_ID: headcount_model}
        self.defaults = ActionConfig()
        self.action_configs = {}
        self.last_task_request = {}
        self._unfinished = []

    def reset(self) -> None:
        """Return to the seed state. Issued tokens stay valid (a reset isolates data, not sessions)."""
        with self._lock:
            self.store.clear()
            self.accept_chunked_bodies = False
            self.bare_array_lists = set()
            self._seed()

    def close(self) -> None:
        """Nothing to release beyond the data directory, which the server removes."""

    # ------------------------------------------------------------------------------------ control

    def configure(self, action_id: str | None = None, **settings: Any) -> ActionConfig:
        """Set how tasks behave: for one action id, or the defaults of all actions (``None``).

        Keys: ``outcome`` (success | fail | warnings | cancelled), ``queue_seconds``,
        ``run_seconds``, ``failed_rows``, ``export_rows``. Returns the effective configuration.
        """
        known = {f.name for f in fields(ActionConfig)}
        unknown = set(settings) - known
        if unknown:
            raise ValueError(f"unknown configuration keys: {', '.join(sorted(unknown))}")
        types = {
            "outcome": str,
            "queue_seconds": float,
            "run_seconds": float,
            "failed_rows": int,
            "export_rows": int,
        }
        try:
            clean = {k: types[k](v) for k, v in settings.items() if v is not None}
        except (TypeError, ValueError) as exc:
            raise ValueError(f"invalid configuration value: {exc}") from exc
        with self._lock:
            if action_id is None:
                candidate = replace(self.defaults, **clean)
                candidate.validate()
                self.defaults = candidate
                return replace(candidate)
            merged = {**self.action_configs.get(action_id, {}), **clean}
            candidate = replace(self.defaults, **merged)
            candidate.validate()
            self.action_configs[action_id] = merged
            return candidate

    def config_for(self, action_id: str) -> ActionConfig:
        """Effective configuration of one action (its overrides on top of the defaults)."""
        with self._lock:
            return replace(self.defaults, **self.action_configs.get(action_id, {}))

    def set_model_state(self, model_id: str, state: str) -> None:
        """``ok``, ``busy`` (409 except task/dump/definition endpoints), ``archived`` (422),
        ``locked`` (423) or ``offline`` (424)."""
        if state not in MODEL_STATE_STATUS:
            raise ValueError(f"state must be one of {', '.join(MODEL_STATE_STATUS)}, not {state!r}")
        with self._lock:
            if model_id not in self.models:
                raise KeyError(model_id)
            self.models[model_id].state = state

    def read_file(self, file_id: str, model_id: str = MODEL_ID) -> bytes:
        """Content of a model file (private, else default) in memory; for tests with small files."""
        with self._lock:
            self._advance()
            content = self._file(self.models[model_id], file_id).content
            return b"" if content is None else content.read_bytes()

    def open_file(self, file_id: str, model_id: str = MODEL_ID) -> list[FileSlice]:
        """Open a model file's whole content for streaming (the caller closes the slices)."""
        with self._lock:
            self._advance()
            content = self._file(self.models[model_id], file_id).content
            return [] if content is None else content.open_all()

    def write_file(self, file_id: str, data: bytes | Blob, model_id: str = MODEL_ID, name: str | None = None) -> None:
        """Set a file's private content directly (creating the file if needed), as one chunk."""
        blob = data if isinstance(data, Blob) else self.store.write_bytes(bytes(data))
        with self._lock:
            model = self.models[model_id]
            file = model.files.get(file_id)
            if file is None:
                file = model.files[file_id] = ModelFile(file_id, name or file_id, export=file_id.startswith("116"))
            self._commit(file, Content([blob]))

    def tasks(self) -> list[dict[str, Any]]:
        """Every task of every model with its state (for debugging and the control API)."""
        with self._lock:
            now = self._advance()
            return [
                {
                    "modelId": t.model_id,
                    "kind": t.kind,
                    "actionId": t.action_id,
                    **self._task_json(t, now, True),
                }
                for model in self.models.values()
                for t in model.tasks.values()
            ]

    # ------------------------------------------------------------------------- workspaces/models

    def list_workspaces(self, details: bool = False) -> list[dict[str, Any]]:
        """The user's workspaces."""
        with self._lock:
            return [ws.to_json(self._workspace_size(ws.id), details) for ws in self.workspaces.values()]

    def get_workspace(self, workspace_id: str, details: bool = False) -> dict[str, Any]:
        """One workspace, or 404."""
        with self._lock:
            ws = self.workspaces.get(workspace_id)
            if ws is None:
                raise AnaplanError(404, f"Not Found: workspace {workspace_id}")
            return ws.to_json(self._workspace_size(ws.id), details)

    def _workspace_size(self, workspace_id: str) -> int:
        return sum(m.memory_usage for m in self.models.values() if m.workspace_id == workspace_id)

    def _model_json(self, model: Model, details: bool) -> dict[str, Any]:
        ws = self.workspaces[model.workspace_id]
        out: dict[str, Any] = {
            "id": model.id,
            "activeState": _ACTIVE_STATE[model.state],
            "name": model.name,
            "currentWorkspaceId": ws.id,
            "currentWorkspaceName": ws.name,
            "modelUrl": f"https://us1a.app.anaplan.com/anaplan/framework.jsp?selectedWorkspaceId={ws.id}"
            f"&selectedModelId={model.id}",
            "categoryValues": [],
        }
        if details:
            out.update(
                {
                    "lastSavedSerialNumber": 2010876,
                    "modelTransactionRunning": model.state == "busy",
                    "memoryUsage": model.memory_usage,
                    "isoCreationDate": "2024-01-15T09:30:00.000+0000",
                    "lastModified": "2026-01-05T17:45:12.000+0000",
                }
            )
        return out

    def list_models(
        self, workspace_id: str | None = None, details: bool = False, search: str | None = None
    ) -> list[dict[str, Any]]:
        """Models of one workspace, or of the tenant; ``search`` filters names (case-insensitive)."""
        with self._lock:
            if workspace_id is not None and workspace_id not in self.workspaces:
                raise AnaplanError(404, f"Not Found: workspace {workspace_id}")
            return [
                self._model_json(m, details)
                for m in self.models.values()
                if (workspace_id is None or m.workspace_id == workspace_id)
                and (not search or search.lower() in m.name.lower())
            ]

    def get_model_info(self, workspace_id: str | None, model_id: str, details: bool = False) -> dict[str, Any]:
        """One model (answered whatever its state: ``activeState`` shows it)."""
        with self._lock:
            model = self.models.get(model_id)
            if model is None or (workspace_id is not None and model.workspace_id != workspace_id):
                raise AnaplanError(404, f"Not Found: model {model_id}")
            if workspace_id is not None and workspace_id not in self.workspaces:
                raise AnaplanError(404, f"Not Found: workspace {workspace_id}")
            return self._model_json(model, details)

    def _model(self, workspace_id: str | None, model_id: str, *, busy_ok: bool = False) -> Model:
        """The model behind a model-scoped path, after the model-state checks; call under the lock."""
        if workspace_id is not None and workspace_id not in self.workspaces:
            raise AnaplanError(404, f"Not Found: workspace {workspace_id}")
        model = self.models.get(model_id)
        if model is None or (workspace_id is not None and model.workspace_id != workspace_id):
            raise AnaplanError(404, f"Not Found: model {model_id}")
        status = MODEL_STATE_STATUS[model.state]
        if status is not None and not (status == 409 and busy_ok):
            raise AnaplanError(status, _MODEL_STATE_MESSAGES[status])
        return model

    def model_status(self, workspace_id: str, model_id: str) -> dict[str, Any]:
        """``requestStatus`` of ``POST .../status``: Open, Processing (a task runs) or Updating (busy)."""
        with self._lock:
            now = self._advance()
            model = self._model(workspace_id, model_id, busy_ok=True)
            running = [t for t in model.tasks.values() if t.state(now) == IN_PROGRESS]
            status: dict[str, Any] = {
                "peakMemoryUsageEstimate": None,
                "peakMemoryUsageTime": None,
                "progress": -1.0,
                "currentStep": "Open",
                "tooltip": None,
                "exportTaskType": None,
                "creationTime": _ms(now),
                "taskId": None,
            }
            if running:
                task = running[0]
                label = {
                    "imports": "Import",
                    "exports": "Export",
                    "processes": "Process",
                    "actions": "Action",
                }
                status.update(
                    {
                        "progress": task.progress(now),
                        "currentStep": "Processing ...",
                        "tooltip": f"The system is currently processing an {label[task.kind]}:\n\n"
                        f"{label[task.kind]} started by user {USER_EMAIL}\n"
                        "Tasks can be cancelled in Model Management.",
                        "creationTime": _ms(task.created),
                        "taskId": task.id,
                    }
                )
            elif model.state == "busy":
                status.update({"currentStep": "Updating", "creationTime": _ms(now)})
            return status

    # -------------------------------------------------------------------------------- definitions

    def list_definitions(self, workspace_id: str, model_id: str, kind: str) -> list[dict[str, Any]]:
        """Entries of the imports, exports, processes or actions list (answers while busy)."""
        with self._lock:
            model = self._model(workspace_id, model_id, busy_ok=True)
            return [d.to_json() for d in model.definitions(kind).values()]

    def get_definition(
        self, workspace_id: str | None, model_id: str, kind: str, action_id: str, show_source: bool = False
    ) -> tuple[str, dict[str, Any]]:
        """Metadata of one definition as ``(json key, object)``: importMetadata, exportMetadata, ..."""
        with self._lock:
            model = self._model(workspace_id, model_id, busy_ok=True)
            definition = model.definitions(kind).get(action_id)
            if definition is None:
                raise AnaplanError(404, f"Not Found: {kind[:-1] if kind != 'processes' else 'process'} {action_id}")
            if isinstance(definition, ImportDef):
                header = self._header_of(model, definition.source_file_id)
                return "importMetadata", {
                    "name": definition.name,
                    "type": "FILE",
                    "source": {
                        "textEncoding": "UTF-8",
                        "columnSeparator": ",",
                        "textDelimiter": '"',
                        "headerRow": 1,
                        "firstDataRow": 2,
                        "decimalSeparator": ".",
                        "headerNames": header,
                        "columnCount": len(header),
                    },
                }
            if isinstance(definition, ExportDef):
                config = self.config_for(definition.id)
                header = self._export_header()
                return "exportMetadata", {
                    "columnCount": len(header),
                    "dataTypes": ["ENTITY", "ENTITY", "ENTITY", "ENTITY", "NUMBER"],
                    "delimiter": '"',
                    "encoding": "UTF-8",
                    "exportFormat": definition.export_format,
                    "headerNames": header,
                    "listNames": ["Versions", "Regions", "Products", ""],
                    "rowCount": config.export_rows,
                    "separator": ",",
                }
            if isinstance(definition, ProcessDef):
                return "processMetadata", {
                    "name": definition.name,
                    "actions": [self._step_json(model, step, show_source) for step in definition.steps],
                }
            assert isinstance(definition, OtherAction)
            action = {"id": definition.id, **definition.extra}
            action.update({"actionType": definition.action_type, "name": definition.name})
            return "action", action

    def _step_json(self, model: Model, step_id: str, show_source: bool) -> dict[str, Any]:
        if step_id in model.imports:
            imp = model.imports[step_id]
            out: dict[str, Any] = {
                "id": imp.id,
                "name": imp.name,
                "actionType": "IMPORT",
                "importDataSourceId": imp.source_file_id,
                "importType": imp.import_type,
            }
            if show_source:
                out["importDataSource"] = {"importDataSourceId": imp.source_file_id, "type": "FILE"}
            return out
        if step_id in model.exports:
            exp = model.exports[step_id]
            return {
                "id": exp.id,
                "name": exp.name,
                "actionType": "EXPORT",
                "exportType": exp.export_type,
                "exportFormat": exp.export_format,
                "layout": exp.export_type,
            }
        action = model.actions[step_id]
        return {"id": action.id, "name": action.name, "actionType": action.action_type}

    def _header_of(self, model: Model, file_id: str) -> list[str]:
        file = model.files.get(file_id)
        content = file.default if file is not None and file.default is not None else (file.content if file else None)
        if content is None:
            return []
        first = next(content.iter_lines(), b"")
        return next(csv.reader([first.decode("utf-8", "replace").rstrip("\r\n")]), [])

    @staticmethod
    def _export_header() -> list[str]:
        return ["Version", "Region", "Product", "Month", "Forecast"]
