"""Anaplan sandbox state: seed ids, limits, task states and the data classes the backend keeps.

Plain Python: no HTTP, no routing (the routes render these in :mod:`.routes`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..storage import Blob, Content

# ---------------------------------------------------------------------------------------- seed ids

USER_EMAIL = "demo@example.com"
USER_PASSWORD = "demo"
WORKSPACE_ID = "8a868cd97d1e2f3b017d2f4a5b6c0001"
ARCHIVE_WORKSPACE_ID = "8a868cd97d1e2f3b017d2f4a5b6c0002"
MODEL_ID = "75A40874E6B64FA3AE0743278996850F"
HEADCOUNT_MODEL_ID = "0B6B3F4D1E2A4C5F8A9B0C1D2E3F4A5B"
ACTUALS_FILE_ID = "113000000001"
HEADCOUNT_FILE_ID = "113000000002"
BUDGET_FILE_IDS = ("113000000003", "113000000004")
FORECAST_FILE_ID = "116000000001"
LOAD_ACTUALS_ID = "112000000001"
LOAD_HEADCOUNT_ID = "112000000002"
EXPORT_FORECAST_ID = "116000000001"
MONTHLY_CLOSE_ID = "118000000001"
RELOAD_HEADCOUNT_ID = "118000000002"
DELETE_OLD_ACTUALS_ID = "117000000001"
ORDER_PRODUCTS_ID = "117000000002"

# -------------------------------------------------------------------------------------- constants

AUTH_PREFIX = "/anaplan/auth"
API_PREFIX = "/anaplan/api/2/0"
CONTROL_PREFIX = "/_sandbox/anaplan"

MAX_CHUNK_BYTES = 50 * 1024 * 1024  #: an upload chunk is at most 50 MB uncompressed
MAX_CHUNKS = 1000  #: a file has at most 1,000 chunks (ids 0..999)
DOWNLOAD_CHUNK_BYTES = 10 * 1024 * 1024  #: export files and dumps are served in chunks of 10 MB
DEFAULT_PAGE_LIMIT = 5000  #: lists return the first 5000 items unless limit/offset say otherwise
CANCEL_SECONDS = 0.3  #: emulated time from CANCELLING to CANCELLED (scaled)
CERT_V2_WINDOW_SECONDS = 300  #: a v2 certificate payload's timestamp must be this close to now
CERT_MIN_DATA_BYTES = 100
INVALID_MARKER = b"#INVALID"  #: source rows containing this text fail to import

NOT_STARTED = "NOT_STARTED"
IN_PROGRESS = "IN_PROGRESS"
COMPLETE = "COMPLETE"
CANCELLING = "CANCELLING"
CANCELLED = "CANCELLED"
TERMINAL_STATES = (COMPLETE, CANCELLED)

OUTCOMES = ("success", "fail", "warnings", "cancelled")
#: model state -> HTTP status of model-scoped endpoints (None: served normally)
MODEL_STATE_STATUS: dict[str, int | None] = {
    "ok": None,
    "busy": 409,
    "archived": 422,
    "locked": 423,
    "offline": 424,
}
_MODEL_STATE_MESSAGES = {
    409: "Conflict: the model is busy with another operation; retry later",
    422: "Model archived: unarchive the model, then try your request again",
    423: "Model locked: unlock the model and try the request again",
    424: "Model offline: bring your model online, then retry your request",
}
_ACTIVE_STATE = {
    "ok": "UNLOCKED",
    "busy": "UNLOCKED",
    "locked": "LOCKED",
    "archived": "ARCHIVED",
    "offline": "UNLOCKED",
}

#: URL segment of each action kind -> name of its path parameter (used in route templates)
KINDS = {"imports": "import", "exports": "export", "processes": "process", "actions": "action"}

_REGIONS = ("EMEA", "APAC", "AMER", "LATAM")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


class AnaplanError(Exception):
    """A request the API refuses: HTTP status and the message put in ``status.message``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class AnaplanAuthError(Exception):
    """An authentication request the auth service refuses (401 with a FAILURE status)."""

    def __init__(self, message: str, status: str = "FAILURE_BAD_CREDENTIAL") -> None:
        super().__init__(message)
        self.status = status
        self.message = message


# ------------------------------------------------------------------------------------ state model


@dataclass
class ActionConfig:
    """How tasks of one action behave: outcome, emulated durations (seconds, scaled), row counts.

    ``failed_rows`` is the number of rows an import fails (``fail``) or warns about
    (``warnings``) besides those marked ``#INVALID``; ``export_rows`` is the number of data rows
    an export writes.
    """

    outcome: str = "success"
    queue_seconds: float = 0.2
    run_seconds: float = 1.0
    failed_rows: int = 3
    export_rows: int = 1000

    def validate(self) -> None:
        """Raise ValueError for values a task cannot run with."""
        if self.outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}, not {self.outcome!r}")
        if self.queue_seconds < 0 or self.run_seconds < 0:
            raise ValueError("queue_seconds and run_seconds must not be negative")
        if self.failed_rows < 0 or self.export_rows < 0:
            raise ValueError("failed_rows and export_rows must not be negative")


@dataclass
class Token:
    """An issued AnaplanAuthToken."""

    value: str
    token_id: str
    refresh_token_id: str
    user: str
    expires_at: float
    revoked: bool = False


@dataclass
class PendingUpload:
    """An upload in progress: the announced chunk count (-1: unknown) and the chunks received."""

    chunk_count: int
    chunks: dict[int, Blob] = field(default_factory=dict)


@dataclass
class ModelFile:
    """A model file: default content (set in the UI), the user's private content, a pending upload."""

    id: str
    name: str
    export: bool = False
    default: Content | None = None
    private: Content | None = None
    pending: PendingUpload | None = None

    @property
    def content(self) -> Content | None:
        """What imports and downloads see: the private file, else the default file."""
        return self.private if self.private is not None else self.default

    def to_json(self) -> dict[str, Any]:
        """The ``file`` object of the files endpoints."""
        if self.pending is not None:
            chunk_count = self.pending.chunk_count
        else:
            chunk_count = self.private.chunk_count if self.private is not None else 0
        if self.export:
            return {
                "id": self.id,
                "name": self.name,
                "chunkCount": chunk_count,
                "firstDataRow": 0,
                "headerRow": 0,
            }
        return {
            "id": self.id,
            "name": self.name,
            "chunkCount": chunk_count,
            "delimiter": '"',
            "encoding": "UTF-8",
            "firstDataRow": 2,
            "format": "txt",
            "headerRow": 1,
            "separator": ",",
        }


@dataclass
class ImportDef:
    """An import action: its source file and what it loads into."""

    id: str
    name: str
    source_file_id: str
    import_type: str
    target: str

    def to_json(self) -> dict[str, Any]:
        """Entry of the imports list."""
        return {
            "id": self.id,
            "name": self.name,
            "importDataSourceId": self.source_file_id,
            "importType": self.import_type,
        }


@dataclass
class ExportDef:
    """An export action; its output file has the same id."""

    id: str
    name: str
    export_type: str = "TABULAR_MULTI_COLUMN"
    export_format: str = "text/csv"

    def to_json(self) -> dict[str, Any]:
        """Entry of the exports list."""
        return {
            "id": self.id,
            "name": self.name,
            "exportType": self.export_type,
            "exportFormat": self.export_format,
        }


@dataclass
class ProcessDef:
    """A process: action ids run in order."""

    id: str
    name: str
    steps: list[str]

    def to_json(self) -> dict[str, Any]:
        """Entry of the processes list."""
        return {"id": self.id, "name": self.name}


@dataclass
class OtherAction:
    """Any other action (delete from list using selection, order list, ...)."""

    id: str
    name: str
    action_type: str
    extra: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """Entry of the actions list."""
        return {"id": self.id, "actionType": self.action_type, "name": self.name}


@dataclass
class DumpRecord:
    """A failure dump and the task that produced it (only the latest task's dump is kept)."""

    task_id: str
    content: Content


@dataclass
class Task:
    """A running or finished task; its state is derived from timestamps (epoch seconds)."""

    id: str
    kind: str
    action_id: str
    model_id: str
    created: float
    starts: float
    ends: float
    config: ActionConfig
    request: dict[str, Any]
    cancel_requested: float | None = None
    cancel_done: float | None = None
    result: dict[str, Any] | None = None
    final_state: str | None = None
    cancel_delay: float = 0.0

    @property
    def terminal_time(self) -> float:
        """When the task reaches COMPLETE or CANCELLED."""
        if self.cancel_done is not None:
            return self.cancel_done
        if self.config.outcome == "cancelled":
            return self.ends + self.cancel_delay
        return self.ends

    def state(self, now: float) -> str:
        """The task state at time ``now``."""
        if self.final_state is not None and now >= self.terminal_time:
            return self.final_state
        if self.cancel_requested is not None:
            return CANCELLED if now >= self.terminal_time else CANCELLING
        if now < self.starts:
            return NOT_STARTED
        if now < self.ends:
            return IN_PROGRESS
        if self.config.outcome == "cancelled":
            return CANCELLED if now >= self.terminal_time else CANCELLING
        return COMPLETE

    def progress(self, now: float) -> float:
        """Fraction done, as Anaplan reports it (1.0 when finished)."""
        state = self.state(now)
        if state in TERMINAL_STATES:
            return 1.0
        if state == NOT_STARTED or self.ends <= self.starts:
            return 0.0
        return round(min(max((now - self.starts) / (self.ends - self.starts), 0.0), 0.99), 4)


@dataclass
class Workspace:
    """A workspace."""

    id: str
    name: str
    size_allowance: int = 1073741824

    def to_json(self, current_size: int, details: bool) -> dict[str, Any]:
        """The ``workspace`` object (sizes only with ``tenantDetails=true``)."""
        out: dict[str, Any] = {"id": self.id, "name": self.name, "active": True}
        if details:
            out.update({"sizeAllowance": self.size_allowance, "currentSize": current_size})
        return out


@dataclass
class Model:
    """A model and everything in it."""

    id: str
    name: str
    workspace_id: str
    state: str = "ok"
    memory_usage: int = 163950621
    files: dict[str, ModelFile] = field(default_factory=dict)
    imports: dict[str, ImportDef] = field(default_factory=dict)
    exports: dict[str, ExportDef] = field(default_factory=dict)
    processes: dict[str, ProcessDef] = field(default_factory=dict)
    actions: dict[str, OtherAction] = field(default_factory=dict)
    tasks: dict[str, Task] = field(default_factory=dict)
    import_dumps: dict[str, DumpRecord] = field(default_factory=dict)
    process_dumps: dict[tuple[str, str], DumpRecord] = field(default_factory=dict)

    def definitions(self, kind: str) -> dict[str, Any]:
        """The action definitions of one kind (``imports``, ``exports``, ``processes``, ``actions``)."""
        table: dict[str, dict[str, Any]] = {
            "imports": self.imports,
            "exports": self.exports,
            "processes": self.processes,
            "actions": self.actions,
        }
        return table[kind]

    def kind_of(self, action_id: str) -> str | None:
        """Which kind of definition ``action_id`` is, or None."""
        for kind in KINDS:
            if action_id in self.definitions(kind):
                return kind
        return None


def _ms(seconds: float) -> int:
    """Epoch seconds -> epoch milliseconds, as Anaplan's JSON carries times."""
    return int(seconds * 1000)


def _detail(kind: str, text: str, values: list[str] | None = None, occurrences: int = 0) -> dict[str, Any]:
    """One entry of a task result's ``details``."""
    return {"type": kind, "localMessageText": text, "values": values or [], "occurrences": occurrences}
