"""Anaplan, emulated: the authentication service and the Integration API v2 bulk endpoints.

Faithful to Anaplan's documentation (help.anaplan.com / apiary, see ``shared/reference``): the same
paths, status codes, JSON envelopes (``meta``/``status``, ``paging``), task state machine
(NOT_STARTED -> IN_PROGRESS -> COMPLETE, or CANCELLING -> CANCELLED), result details, dump files
and their replacement rules, model-busy behaviour, and the sharp edges real clients trip over
(POSTing a chunk count to an unknown file id silently creates a file; a replaced dump answers 404
while its task still says ``failureDumpAvailable: true``).

:class:`AnaplanBackend` holds the state and is scriptable from Python (``server.anaplan``);
:class:`AnaplanPlatform` renders it over HTTP under ``/anaplan/auth`` and ``/anaplan/api/2/0``,
with a control API under ``/_sandbox/anaplan``. Task state is computed lazily from timestamps:
whenever the backend is touched, tasks whose end time has passed are finalised in order (results,
dumps, export files), so no background thread is needed.
"""

from __future__ import annotations

import base64
import binascii
import copy
import csv
import json
import re
import secrets
import struct
import threading
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from ..platform import Platform, SandboxContext
from ..routing import FileSlice, Handler, HttpError, Mount, Request, Response, Route
from ..storage import BadEncodingError, Blob, BlobStore, Content, ContentTooLargeError

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


# ----------------------------------------------------------------------------------- the backend


class AnaplanBackend:
    """State and behaviour of the emulated Anaplan tenant; every public method is thread-safe.

    Seed data (fixed ids) is described in the module constants. Tests script it directly
    (``configure``, ``set_model_state``, ``expire_tokens``, ``read_file``/``write_file``) or through
    the HTTP control API that :class:`AnaplanPlatform` maps onto the same methods.
    """

    def __init__(self, context: SandboxContext) -> None:
        self.context = context
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
            self._seed()

    def close(self) -> None:
        """Nothing to release beyond the data directory, which the server removes."""

    # ------------------------------------------------------------------------------------- tokens

    def _now(self) -> float:
        return self.context.clock()

    def _issue(self, user: str) -> Token:
        value = (
            base64.b64encode(secrets.token_bytes(16)).decode()
            + "."
            + base64.b64encode(secrets.token_bytes(48)).decode()
        )
        token = Token(
            value=value,
            token_id=str(uuid.uuid4()),
            refresh_token_id=str(uuid.uuid4()),
            user=user,
            expires_at=self._now() + self.context.token_ttl,
        )
        self.tokens[value] = token
        return token

    def create_token(self, user: str = USER_EMAIL) -> Token:
        """Issue a token without an HTTP round trip (for tests that skip authentication)."""
        with self._lock:
            return self._issue(user)

    def authenticate_basic(self, authorization: str) -> Token:
        """``Authorization: Basic ...`` -> a new token, or :class:`AnaplanAuthError`."""
        try:
            decoded = base64.b64decode(authorization.split(None, 1)[1], validate=True).decode()
            user, _, password = decoded.partition(":")
        except (IndexError, ValueError, binascii.Error) as exc:
            raise AnaplanAuthError("Malformed Basic authorization header") from exc
        if user != USER_EMAIL or password != USER_PASSWORD:
            raise AnaplanAuthError("Login failed: the user name or password is incorrect")
        with self._lock:
            return self._issue(user)

    def authenticate_certificate(self, header_value: str, body: Any) -> Token:
        """``Authorization: CACertificate ...`` plus signed payload -> a new token.

        The header value may be base64 of the whole PEM file or the PEM body (DER in base64). The
        signature must be RSA PKCS#1 v1.5 with SHA-512 over the decoded ``encodedData``. With
        ``"encodedDataFormat": "v2"`` the data starts with an 8-byte big-endian epoch-seconds
        timestamp that must be within 300 s of now.
        """
        try:
            from cryptography import x509
            from cryptography.exceptions import InvalidSignature
            from cryptography.hazmat.primitives import hashes
            from cryptography.hazmat.primitives.asymmetric import padding, rsa
        except ImportError as exc:  # pragma: no cover - cryptography ships with Airflow
            raise AnaplanAuthError("Certificate authentication needs the 'cryptography' package") from exc

        cert_text = header_value.strip()
        try:
            raw = base64.b64decode(cert_text + "=" * (-len(cert_text) % 4))
            if b"-----BEGIN" in raw:
                cert = x509.load_pem_x509_certificate(raw[raw.index(b"-----BEGIN") :])
            else:
                cert = x509.load_der_x509_certificate(raw)
        except (ValueError, binascii.Error) as exc:
            raise AnaplanAuthError(f"Login failed: the CACertificate header is not a certificate ({exc})") from exc
        if not isinstance(body, dict):
            raise AnaplanAuthError("Login failed: the body must be JSON with encodedData and encodedSignedData")
        try:
            data = base64.b64decode(str(body["encodedData"]), validate=True)
            signature = base64.b64decode(str(body["encodedSignedData"]), validate=True)
        except KeyError as exc:
            raise AnaplanAuthError(f"Login failed: {exc.args[0]} is missing from the body") from exc
        except (ValueError, binascii.Error) as exc:
            raise AnaplanAuthError("Login failed: encodedData and encodedSignedData must be base64") from exc
        data_format = body.get("encodedDataFormat")
        if data_format not in (None, "v1", "v2"):
            raise AnaplanAuthError(f"Login failed: unsupported encodedDataFormat {data_format!r}")
        if len(data) < CERT_MIN_DATA_BYTES:
            raise AnaplanAuthError(
                f"Login failed: encodedData must be at least {CERT_MIN_DATA_BYTES} bytes, got {len(data)}"
            )
        public_key = cert.public_key()
        if not isinstance(public_key, rsa.RSAPublicKey):
            raise AnaplanAuthError("Login failed: the certificate's key is not an RSA key")
        try:
            public_key.verify(signature, data, padding.PKCS1v15(), hashes.SHA512())
        except InvalidSignature as exc:
            raise AnaplanAuthError(
                "Login failed: encodedSignedData is not a valid SHA512withRSA signature of encodedData "
                "made with the certificate's private key"
            ) from exc
        if data_format == "v2":
            (stamp,) = struct.unpack(">Q", data[:8])
            skew = stamp - self._now()
            if abs(skew) > CERT_V2_WINDOW_SECONDS:
                raise AnaplanAuthError(
                    f"Login failed: the v2 encodedData timestamp {stamp} (8-byte big-endian epoch seconds) "
                    f"is {abs(skew):.0f} s {'ahead of' if skew > 0 else 'behind'} the server clock; "
                    f"it must be within {CERT_V2_WINDOW_SECONDS} s"
                )
        emails = [a.value for a in cert.subject if a.oid == x509.NameOID.EMAIL_ADDRESS]
        names = [a.value for a in cert.subject if a.oid == x509.NameOID.COMMON_NAME]
        user = str((emails or names or [USER_EMAIL])[0])
        with self._lock:
            return self._issue(user)

    def _valid_token(self, value: str) -> Token | None:
        token = self.tokens.get(value)
        if token is None or token.revoked or token.expires_at <= self._now():
            return None
        return token

    def check_token(self, value: str) -> bool:
        """True if ``value`` is a current, unexpired token."""
        with self._lock:
            return self._valid_token(value) is not None

    def refresh_token(self, value: str) -> Token:
        """Issue a new token for a valid one and invalidate the old one."""
        with self._lock:
            token = self._valid_token(value)
            if token is None:
                raise AnaplanAuthError("Token refresh failed: the token is invalid or expired", "FAILURE_INVALID_TOKEN")
            token.revoked = True
            return self._issue(token.user)

    def validate_token(self, value: str) -> Token:
        """The token behind ``value``, or :class:`AnaplanAuthError`."""
        with self._lock:
            token = self._valid_token(value)
            if token is None:
                raise AnaplanAuthError(
                    "Token validation failed: the token is invalid or expired", "FAILURE_INVALID_TOKEN"
                )
            return token

    def logout(self, value: str) -> None:
        """Invalidate a token."""
        with self._lock:
            token = self._valid_token(value)
            if token is None:
                raise AnaplanAuthError("Logout failed: the token is invalid or expired", "FAILURE_INVALID_TOKEN")
            token.revoked = True

    def expire_tokens(self) -> int:
        """Make every issued token expired (API calls then answer 401); returns how many."""
        with self._lock:
            now = self._now()
            count = 0
            for token in self.tokens.values():
                if not token.revoked and token.expires_at > now:
                    token.expires_at = now - 1
                    count += 1
            return count

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

    # -------------------------------------------------------------------------------------- files

    @staticmethod
    def _file(model: Model, file_id: str) -> ModelFile:
        file = model.files.get(file_id)
        if file is None:
            raise AnaplanError(404, f"Not Found: file {file_id}")
        return file

    def list_files(self, workspace_id: str, model_id: str) -> list[dict[str, Any]]:
        """The model's import and export files."""
        with self._lock:
            self._advance()
            model = self._model(workspace_id, model_id)
            return [f.to_json() for f in model.files.values()]

    def check_upload_target(self, workspace_id: str, model_id: str, file_id: str) -> None:
        """Raise the error an upload to this file would get, before its body is read."""
        with self._lock:
            self._file(self._model(workspace_id, model_id), file_id)

    def set_chunk_count(self, workspace_id: str, model_id: str, file_id: str, chunk_count: Any) -> dict[str, Any]:
        """``POST .../files/{id}``: start a fresh upload of ``chunk_count`` chunks (-1: unknown).

        Like Anaplan, a file id the model does not have is silently created (and recorded in
        ``stats.files_created``): that is how a typo turns into a stray file in a real model.
        """
        if isinstance(chunk_count, bool) or not isinstance(chunk_count, int):
            raise AnaplanError(400, "Bad Request: chunkCount must be an integer")
        if chunk_count != -1 and not 1 <= chunk_count <= MAX_CHUNKS:
            raise AnaplanError(400, f"Bad Request: chunkCount must be -1 or between 1 and {MAX_CHUNKS}")
        with self._lock:
            model = self._model(workspace_id, model_id)
            file = model.files.get(file_id)
            if file is None:
                file = model.files[file_id] = ModelFile(file_id, file_id, export=file_id.startswith("116"))
                self.context.stats.record_file_created(f"{model_id}/{file_id}")
            if file.pending is not None:
                self.store.delete(list(file.pending.chunks.values()))
            file.pending = PendingUpload(chunk_count)
            return file.to_json()

    def store_chunk(self, workspace_id: str, model_id: str, file_id: str, index: int, blob: Blob) -> None:
        """Keep an uploaded chunk; once all announced chunks are there the file content is replaced.

        A chunk PUT without a preceding chunk-count POST starts an upload of unknown length (it
        needs ``/complete``), except that re-sending a chunk of the last finished upload replaces
        that chunk in place (a retry of a chunk whose 204 was lost).
        """
        with self._lock:
            try:
                model = self._model(workspace_id, model_id)
                file = self._file(model, file_id)
            except AnaplanError:
                self.store.delete([blob])
                raise
            pending = file.pending
            if pending is None:
                if file.private is not None and file.private.split is None and index < len(file.private.blobs):
                    old = file.private.blobs[index]
                    file.private.blobs[index] = blob
                    self.store.delete([old])
                    return
                pending = file.pending = PendingUpload(-1)
            if pending.chunk_count != -1 and index >= pending.chunk_count:
                self.store.delete([blob])
                raise AnaplanError(
                    400,
                    f"Bad Request: chunk {index} is beyond the announced chunkCount {pending.chunk_count}",
                )
            old_blob = pending.chunks.get(index)
            pending.chunks[index] = blob
            if old_blob is not None:
                self.store.delete([old_blob])
            if pending.chunk_count != -1 and len(pending.chunks) == pending.chunk_count:
                self._commit(file, Content([pending.chunks[i] for i in range(pending.chunk_count)]))

    def store_single(self, workspace_id: str, model_id: str, file_id: str, blob: Blob) -> None:
        """``PUT .../files/{id}``: the whole file as one chunk, replacing any upload in progress."""
        with self._lock:
            try:
                file = self._file(self._model(workspace_id, model_id), file_id)
            except AnaplanError:
                self.store.delete([blob])
                raise
            self._commit(file, Content([blob]))

    def complete_upload(self, workspace_id: str, model_id: str, file_id: str) -> dict[str, Any]:
        """``POST .../files/{id}/complete``: finish an upload; 400 names the first missing chunk."""
        with self._lock:
            file = self._file(self._model(workspace_id, model_id), file_id)
            pending = file.pending
            if pending is None:
                if file.private is not None:
                    return file.to_json()  # a repeated complete (its first answer was lost)
                raise AnaplanError(400, f"Bad Request: no upload in progress for file {file_id}")
            if not pending.chunks:
                raise AnaplanError(400, f"Bad Request: no chunks were uploaded for file {file_id}")
            last = max(pending.chunks) if pending.chunk_count == -1 else pending.chunk_count - 1
            missing = [i for i in range(last + 1) if i not in pending.chunks]
            if missing:
                raise AnaplanError(
                    400,
                    f"Bad Request: chunk {missing[0]} of file {file_id} is missing ({len(missing)} missing)",
                )
            self._commit(file, Content([pending.chunks[i] for i in range(last + 1)]))
            return file.to_json()

    def _commit(self, file: ModelFile, content: Content) -> None:
        """Make ``content`` the file's private content; the previous content's blobs are unlinked."""
        old = file.private
        file.private = content
        pending, file.pending = file.pending, None
        if pending is not None:
            keep = {id(b) for b in content.blobs}
            self.store.delete([b for b in pending.chunks.values() if id(b) not in keep])
        if old is not None:
            self.store.delete(old.blobs)

    def delete_file(self, workspace_id: str, model_id: str, file_id: str) -> None:
        """``DELETE .../files/{id}``: remove the private content (the file and its default remain)."""
        with self._lock:
            file = self._file(self._model(workspace_id, model_id), file_id)
            if file.pending is not None:
                self.store.delete(list(file.pending.chunks.values()))
                file.pending = None
            if file.private is not None:
                self.store.delete(file.private.blobs)
                file.private = None

    def file_chunk_count(self, workspace_id: str, model_id: str, file_id: str) -> int:
        """Number of download chunks of a file."""
        with self._lock:
            self._advance()
            content = self._file(self._model(workspace_id, model_id), file_id).content
            return 0 if content is None else content.chunk_count

    def open_file_chunk(self, workspace_id: str, model_id: str, file_id: str, index: int) -> list[FileSlice]:
        """Open one download chunk for streaming, or 404."""
        with self._lock:
            self._advance()
            content = self._file(self._model(workspace_id, model_id), file_id).content
            if content is None or not 0 <= index < content.chunk_count:
                raise AnaplanError(404, f"Not Found: chunk {index} of file {file_id}")
            return content.open_chunk(index)

    # -------------------------------------------------------------------------------------- tasks

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

    # -------------------------------------------------------------------------------------- dumps

    def _import_dump(self, workspace_id: str, model_id: str, import_id: str, task_id: str) -> Content:
        task = self._task(workspace_id, model_id, "imports", import_id, task_id)
        model = self.models[task.model_id]
        record = model.import_dumps.get(import_id)
        if record is None or record.task_id != task_id:
            raise AnaplanError(404, f"Not Found: no dump file for task {task_id} (it was replaced or never existed)")
        return record.content

    def _process_dump(self, workspace_id: str, model_id: str, process_id: str, task_id: str, object_id: str) -> Content:
        task = self._task(workspace_id, model_id, "processes", process_id, task_id)
        model = self.models[task.model_id]
        record = model.process_dumps.get((process_id, object_id))
        if record is None or record.task_id != task_id:
            raise AnaplanError(
                404,
                f"Not Found: no dump file for object {object_id} of task {task_id} (replaced or never existed)",
            )
        return record.content

    def dump_chunk_count(
        self, workspace_id: str, model_id: str, action_id: str, task_id: str, object_id: str | None = None
    ) -> int:
        """Number of chunks of an import dump (``object_id=None``) or a process dump."""
        with self._lock:
            self._advance()
            content = (
                self._import_dump(workspace_id, model_id, action_id, task_id)
                if object_id is None
                else self._process_dump(workspace_id, model_id, action_id, task_id, object_id)
            )
            return content.chunk_count

    def open_dump(
        self,
        workspace_id: str,
        model_id: str,
        action_id: str,
        task_id: str,
        object_id: str | None = None,
        chunk: int | None = None,
    ) -> list[FileSlice]:
        """Open a whole dump (``chunk=None``) or one of its chunks for streaming."""
        with self._lock:
            self._advance()
            content = (
                self._import_dump(workspace_id, model_id, action_id, task_id)
                if object_id is None
                else self._process_dump(workspace_id, model_id, action_id, task_id, object_id)
            )
            if chunk is None:
                return content.open_all()
            if not 0 <= chunk < content.chunk_count:
                raise AnaplanError(404, f"Not Found: dump chunk {chunk}")
            return content.open_chunk(chunk)

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


# -------------------------------------------------------------------------------- HTTP rendering


def _api_error(request: Request, status: int, message: str) -> Response:
    """Anaplan's error envelope: ``{"status": {"code": ..., "message": ...}}`` (404 adds path/timestamp)."""
    body: dict[str, Any] = {"status": {"code": status, "message": message}}
    if status == 404:
        body["path"] = request.path
        body["timestamp"] = datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")
    return Response.json(body, status=status)


def _auth_error(request: Request, status: int, message: str, code: str = "FAILURE_BAD_CREDENTIAL") -> Response:
    """The auth service's error envelope: ``{"status": "FAILURE_...", "statusMessage": ...}``."""
    if status != 401:
        code = "FAILURE"
    return Response.json({"status": code, "statusMessage": message}, status=status)


def _token_from(request: Request) -> str | None:
    """The value of ``Authorization: AnaplanAuthToken <value>``, or None."""
    scheme, _, value = request.header("Authorization").strip().partition(" ")
    if scheme.lower() != "anaplanauthtoken" or not value.strip():
        return None
    return value.strip()


class AnaplanPlatform(Platform):
    """HTTP face of :class:`AnaplanBackend`: auth service, Integration API v2 and control API."""

    name = "anaplan"
    title = "Anaplan (Integration API v2)"

    backend_class = AnaplanBackend

    @property
    def backend(self) -> AnaplanBackend:
        """The Anaplan state."""
        return self._backend

    def connection_hints(self, base_url: str) -> list[str]:
        """The ``AIRFLOW_CONN_ANAPLAN_DEFAULT`` line for this server."""
        conn = {
            "conn_type": "anaplan",
            "login": USER_EMAIL,
            "password": USER_PASSWORD,
            "extra": {
                "auth_url": f"{base_url}{AUTH_PREFIX}",
                "api_url": f"{base_url}{API_PREFIX}",
                "workspace_id": WORKSPACE_ID,
                "model_id": MODEL_ID,
            },
        }
        return [
            f"# {self.title}: basic auth {USER_EMAIL} / {USER_PASSWORD}; any RSA client certificate also works",
            f"export AIRFLOW_CONN_ANAPLAN_DEFAULT='{json.dumps(conn)}'",
        ]

    # ------------------------------------------------------------------------------------- mounts

    def mounts(self) -> list[Mount]:
        """``/anaplan/auth``, ``/anaplan/api/2/0`` and ``/_sandbox/anaplan``."""
        auth = Mount(
            prefix=AUTH_PREFIX,
            platform=self.name,
            auth_endpoint=True,
            errors=_auth_error,
            routes=[
                Route("POST", "/token/authenticate", self._authenticate),
                Route("POST", "/token/refresh", self._refresh),
                Route("GET", "/token/validate", self._validate),
                Route("POST", "/token/logout", self._logout),
            ],
        )
        api = Mount(
            prefix=API_PREFIX,
            platform=self.name,
            routes=self._api_routes(),
            guard=self._guard,
            errors=_api_error,
        )
        control = Mount(
            prefix=CONTROL_PREFIX,
            platform=self.name,
            control=True,
            routes=[
                Route("GET", "/config", self._get_config),
                Route("POST", "/config", self._set_config),
                Route("POST", "/expire_tokens", self._expire_tokens),
                Route("POST", "/model_state", self._set_model_state),
                Route("GET", "/files/{file}", self._control_read_file),
                Route("PUT", "/files/{file}", self._control_write_file),
                Route("GET", "/last_task_request/{action}", self._control_last_request),
                Route("GET", "/tasks", self._control_tasks),
            ],
        )
        return [auth, api, control]

    def _api_routes(self) -> list[Route]:
        m = "/workspaces/{ws}/models/{model}"
        routes = [
            Route("GET", "/workspaces", self._list_workspaces),
            Route("GET", "/workspaces/{ws}", self._get_workspace),
            Route("GET", "/workspaces/{ws}/models", self._list_models),
            Route("GET", "/models", self._list_models),
            Route("GET", "/models/{model}", self._get_model),
            Route("GET", m, self._get_model),
            Route("POST", f"{m}/status", self._model_status),
            Route("GET", f"{m}/files", self._list_files),
            Route("POST", f"{m}/files/{{file}}", self._set_chunk_count),
            Route("PUT", f"{m}/files/{{file}}", self._put_single),
            Route("DELETE", f"{m}/files/{{file}}", self._delete_file),
            Route("POST", f"{m}/files/{{file}}/complete", self._complete),
            Route("GET", f"{m}/files/{{file}}/chunks", self._list_file_chunks),
            Route("GET", f"{m}/files/{{file}}/chunks/{{chunk}}", self._get_file_chunk),
            Route("PUT", f"{m}/files/{{file}}/chunks/{{chunk}}", self._put_chunk),
        ]
        for kind, param in KINDS.items():
            base = f"{m}/{kind}"
            one = f"{base}/{{{param}}}"
            routes += [
                Route("GET", base, partial(self._list_definitions, kind)),
                Route("GET", one, partial(self._get_definition, kind)),
                Route("POST", f"{one}/tasks", partial(self._start_task, kind)),
                Route("GET", f"{one}/tasks", partial(self._list_tasks, kind)),
                Route("GET", f"{one}/tasks/{{task}}", partial(self._get_task, kind)),
                Route("DELETE", f"{one}/tasks/{{task}}", partial(self._cancel_task, kind)),
            ]
        routes += [
            Route("GET", "/models/{model}/processes/{process}", partial(self._get_definition, "processes")),
            Route("GET", f"{m}/imports/{{import}}/tasks/{{task}}/dump", self._import_dump),
            Route("GET", f"{m}/imports/{{import}}/tasks/{{task}}/dump/chunks", self._import_dump_chunks),
            Route("GET", f"{m}/imports/{{import}}/tasks/{{task}}/dump/chunks/{{chunk}}", self._import_dump_chunk),
            Route("GET", f"{m}/processes/{{process}}/tasks/{{task}}/dumps/{{object}}", self._process_dump),
            Route(
                "GET",
                f"{m}/processes/{{process}}/tasks/{{task}}/dumps/{{object}}/chunks",
                self._process_dump_chunks,
            ),
            Route(
                "GET",
                f"{m}/processes/{{process}}/tasks/{{task}}/dumps/{{object}}/chunks/{{chunk}}",
                self._process_dump_chunk,
            ),
        ]
        return [Route(r.method, r.template, self._wrap(r.handler)) for r in routes]

    @staticmethod
    def _wrap(handler: Handler) -> Handler:
        """Turn backend errors into Anaplan error responses."""

        def run(request: Request) -> Response:
            try:
                return handler(request)
            except AnaplanError as exc:
                return _api_error(request, exc.status, exc.message)

        return run

    def _guard(self, request: Request) -> Response | None:
        """Every API call needs a current ``AnaplanAuthToken``."""
        token = _token_from(request)
        if token is None or not self._backend.check_token(token):
            return Response.json({"status": {"code": 401, "message": "Unauthorized"}}, status=401)
        return None

    # ------------------------------------------------------------------------------ JSON helpers

    def _schema(self, request: Request, name: str) -> str:
        model = request.params.get("model")
        scope = f"/models/{model}" if model else ""
        return f"{request.base_url}{API_PREFIX}{scope}/objects/{name}"

    def _ok(self, request: Request, schema: str, **payload: Any) -> Response:
        return Response.json(
            {
                "meta": {"schema": self._schema(request, schema)},
                "status": {"code": 200, "message": "Success"},
                **payload,
            }
        )

    def _paged(self, request: Request, schema: str, key: str, items: list[dict[str, Any]]) -> Response:
        """A list response with ``meta.paging``, honouring ``limit``, ``offset`` and ``sort``."""
        limit = self._int_arg(request, "limit", DEFAULT_PAGE_LIMIT, minimum=1)
        offset = self._int_arg(request, "offset", 0, minimum=0)
        sort = (request.arg("sort") or "").replace(" ", "")
        if sort:
            field_name = sort.lstrip("+-")
            items = sorted(items, key=lambda item: _sort_key(item.get(field_name)), reverse=sort.startswith("-"))
        page = items[offset : offset + limit]
        paging: dict[str, Any] = {"currentPageSize": len(page), "offset": offset, "totalSize": len(items)}
        if offset + limit < len(items):
            paging["next"] = self._page_url(request, limit, offset + limit)
        if offset > 0:
            paging["previous"] = self._page_url(request, limit, max(offset - limit, 0))
        meta = {"paging": paging, "schema": self._schema(request, schema)}
        return Response.json({"meta": meta, "status": {"code": 200, "message": "Success"}, key: page})

    @staticmethod
    def _page_url(request: Request, limit: int, offset: int) -> str:
        query = {k: v[0] for k, v in request.query.items() if k not in ("limit", "offset")}
        query.update({"limit": str(limit), "offset": str(offset)})
        return f"{request.base_url}{request.path}?{urlencode(query)}"

    @staticmethod
    def _int_arg(request: Request, name: str, default: int, minimum: int) -> int:
        raw = request.arg(name)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            raise HttpError(_api_error(request, 400, f"Bad Request: {name} must be an integer")) from None
        if value < minimum:
            raise HttpError(_api_error(request, 400, f"Bad Request: {name} must be at least {minimum}"))
        return value

    @staticmethod
    def _flag(request: Request, name: str) -> bool:
        return (request.arg(name) or "").lower() == "true"

    def _json_body(self, request: Request, required: bool = True) -> Any:
        try:
            return request.json(required=required)
        except HttpError as exc:
            message = "Bad Request: the request body must be JSON"
            raise HttpError(_api_error(request, 400, message)) from exc

    @staticmethod
    def _chunk_index(request: Request, not_found: bool) -> int:
        raw = request.params["chunk"]
        index = int(raw) if re.fullmatch(r"[0-9]{1,6}", raw) else -1
        if not 0 <= index < MAX_CHUNKS:
            if not_found:
                raise HttpError(_api_error(request, 404, f"Not Found: chunk {raw}"))
            raise HttpError(_api_error(request, 400, f"Bad Request: chunk id must be between 0 and {MAX_CHUNKS - 1}"))
        return index

    # --------------------------------------------------------------------------------------- auth

    def _authenticate(self, request: Request) -> Response:
        header = request.header("Authorization").strip()
        scheme, _, value = header.partition(" ")
        try:
            if scheme.lower() == "basic":
                token = self._backend.authenticate_basic(header)
            elif scheme.lower() == "cacertificate":
                try:
                    body = request.json(required=True)
                except HttpError:
                    body = None
                token = self._backend.authenticate_certificate(value, body)
            else:
                return _auth_error(request, 401, "Login failed: use Basic or CACertificate authorization")
        except AnaplanAuthError as exc:
            return _auth_error(request, 401, exc.message, exc.status)
        return self._token_response(request, token, "Login successful")

    def _token_response(self, request: Request, token: Token, message: str) -> Response:
        return Response.json(
            {
                "meta": {"validationUrl": f"{request.base_url}{AUTH_PREFIX}/token/validate"},
                "status": "SUCCESS",
                "statusMessage": message,
                "tokenInfo": {
                    "tokenId": token.token_id,
                    "tokenValue": token.value,
                    "expiresAt": _ms(token.expires_at),
                    "refreshTokenId": token.refresh_token_id,
                },
            },
            status=201,
        )

    def _refresh(self, request: Request) -> Response:
        value = _token_from(request)
        if value is None:
            return _auth_error(
                request, 401, "Token refresh failed: AnaplanAuthToken header missing", "FAILURE_INVALID_TOKEN"
            )
        try:
            token = self._backend.refresh_token(value)
        except AnaplanAuthError as exc:
            return _auth_error(request, 401, exc.message, exc.status)
        return self._token_response(request, token, "Token refreshed")

    def _validate(self, request: Request) -> Response:
        value = _token_from(request)
        try:
            if value is None:
                raise AnaplanAuthError(
                    "Token validation failed: AnaplanAuthToken header missing", "FAILURE_INVALID_TOKEN"
                )
            token = self._backend.validate_token(value)
        except AnaplanAuthError as exc:
            return _auth_error(request, 401, exc.message, exc.status)
        return Response.json(
            {
                "meta": {"validationUrl": f"{request.base_url}{AUTH_PREFIX}/token/validate"},
                "status": "SUCCESS",
                "statusMessage": "Token validated",
                "userInfo": {
                    "userId": uuid.uuid5(uuid.NAMESPACE_DNS, token.user).hex,
                    "userGuid": token.user,
                },
                "tokenInfo": {
                    "tokenId": token.token_id,
                    "expiresAt": _ms(token.expires_at),
                    "refreshTokenId": token.refresh_token_id,
                },
            }
        )

    def _logout(self, request: Request) -> Response:
        value = _token_from(request)
        try:
            if value is None:
                raise AnaplanAuthError("Logout failed: AnaplanAuthToken header missing", "FAILURE_INVALID_TOKEN")
            self._backend.logout(value)
        except AnaplanAuthError as exc:
            return _auth_error(request, 401, exc.message, exc.status)
        return Response.empty(204)

    # -------------------------------------------------------------------------- workspaces/models

    def _list_workspaces(self, request: Request) -> Response:
        items = self._backend.list_workspaces(self._flag(request, "tenantDetails"))
        return self._paged(request, "workspace", "workspaces", items)

    def _get_workspace(self, request: Request) -> Response:
        ws = self._backend.get_workspace(request.params["ws"], self._flag(request, "tenantDetails"))
        return self._ok(request, "workspace", workspace=ws)

    def _list_models(self, request: Request) -> Response:
        items = self._backend.list_models(
            request.params.get("ws"), self._flag(request, "modelDetails"), request.arg("s")
        )
        return self._paged(request, "model", "models", items)

    def _get_model(self, request: Request) -> Response:
        model = self._backend.get_model_info(
            request.params.get("ws"), request.params["model"], self._flag(request, "modelDetails")
        )
        return self._ok(request, "model", model=model)

    def _model_status(self, request: Request) -> Response:
        status = self._backend.model_status(request.params["ws"], request.params["model"])
        return self._ok(request, "dimension", requestStatus=status)

    # -------------------------------------------------------------------------------------- files

    def _list_files(self, request: Request) -> Response:
        items = self._backend.list_files(request.params["ws"], request.params["model"])
        return self._paged(request, "file", "files", items)

    def _set_chunk_count(self, request: Request) -> Response:
        body = self._json_body(request)
        if not isinstance(body, dict) or "chunkCount" not in body:
            return _api_error(request, 400, 'Bad Request: the body must be {"chunkCount": N}')
        p = request.params
        file = self._backend.set_chunk_count(p["ws"], p["model"], p["file"], body["chunkCount"])
        return self._ok(request, "file", file=file)

    def _receive(self, request: Request, single: bool) -> Blob:
        """Stream the request body to a blob (gunzipping ``application/x-gzip`` chunks)."""
        content_type = request.header("Content-Type").split(";")[0].strip().lower()
        gzipped = content_type in ("application/x-gzip", "application/gzip")
        if gzipped and single:
            raise HttpError(
                _api_error(
                    request,
                    415,
                    "Unsupported Media Type: a single-chunk upload cannot be compressed; "
                    "upload gzipped content as chunks",
                )
            )
        length = request.body.declared_length
        if length is not None and not gzipped and length > MAX_CHUNK_BYTES and not single:
            raise HttpError(_api_error(request, 400, "Bad Request: a chunk must not exceed 50 MB uncompressed"))
        limit = MAX_CHUNK_BYTES if not single else 1 << 40
        try:
            return self._backend.store.receive(request.body, limit=limit, gunzip=gzipped)
        except ContentTooLargeError as exc:
            raise HttpError(
                _api_error(request, 400, "Bad Request: a chunk must not exceed 50 MB uncompressed")
            ) from exc
        except BadEncodingError as exc:
            raise HttpError(_api_error(request, 400, f"Bad Request: {exc}")) from exc

    def _put_chunk(self, request: Request) -> Response:
        p = request.params
        index = self._chunk_index(request, not_found=False)
        self._backend.check_upload_target(p["ws"], p["model"], p["file"])
        blob = self._receive(request, single=False)
        self._backend.store_chunk(p["ws"], p["model"], p["file"], index, blob)
        return Response.empty(204)

    def _put_single(self, request: Request) -> Response:
        p = request.params
        self._backend.check_upload_target(p["ws"], p["model"], p["file"])
        blob = self._receive(request, single=True)
        self._backend.store_single(p["ws"], p["model"], p["file"], blob)
        return Response.empty(204)

    def _complete(self, request: Request) -> Response:
        self._json_body(request, required=False)
        p = request.params
        file = self._backend.complete_upload(p["ws"], p["model"], p["file"])
        return self._ok(request, "file", file=file)

    def _delete_file(self, request: Request) -> Response:
        p = request.params
        self._backend.delete_file(p["ws"], p["model"], p["file"])
        return Response.empty(204)

    @staticmethod
    def _chunk_list(count: int) -> list[dict[str, str]]:
        return [{"id": str(i), "name": f"Chunk {i}"} for i in range(count)]

    def _list_file_chunks(self, request: Request) -> Response:
        p = request.params
        count = self._backend.file_chunk_count(p["ws"], p["model"], p["file"])
        return self._paged(request, "chunk", "chunks", self._chunk_list(count))

    def _get_file_chunk(self, request: Request) -> Response:
        p = request.params
        index = self._chunk_index(request, not_found=True)
        return Response.stream(self._backend.open_file_chunk(p["ws"], p["model"], p["file"], index))

    # -------------------------------------------------------------------------- actions and tasks

    def _list_definitions(self, kind: str, request: Request) -> Response:
        items = self._backend.list_definitions(request.params["ws"], request.params["model"], kind)
        return self._paged(
            request,
            {"imports": "import", "exports": "export", "processes": "process", "actions": "action"}[kind],
            kind,
            items,
        )

    def _get_definition(self, kind: str, request: Request) -> Response:
        p = request.params
        key, value = self._backend.get_definition(
            p.get("ws"), p["model"], kind, p[KINDS[kind]], self._flag(request, "showImportDataSource")
        )
        return self._ok(request, key, **{key: value})

    def _start_task(self, kind: str, request: Request) -> Response:
        body = self._json_body(request, required=False)
        p = request.params
        task = self._backend.start_task(p["ws"], p["model"], kind, p[KINDS[kind]], body)
        return self._ok(request, "task", task=task)

    def _list_tasks(self, kind: str, request: Request) -> Response:
        p = request.params
        items = self._backend.list_tasks(p["ws"], p["model"], kind, p[KINDS[kind]])
        return self._paged(request, "task", "tasks", items)

    def _get_task(self, kind: str, request: Request) -> Response:
        p = request.params
        task = self._backend.get_task(
            p["ws"], p["model"], kind, p[KINDS[kind]], p["task"], self._flag(request, "includeProcessDetails")
        )
        return self._ok(request, "task", task=task)

    def _cancel_task(self, kind: str, request: Request) -> Response:
        p = request.params
        task = self._backend.cancel_task(p["ws"], p["model"], kind, p[KINDS[kind]], p["task"])
        return self._ok(request, "task", task=task)

    # -------------------------------------------------------------------------------------- dumps

    def _import_dump(self, request: Request) -> Response:
        p = request.params
        return Response.stream(self._backend.open_dump(p["ws"], p["model"], p["import"], p["task"]), "text/csv")

    def _import_dump_chunks(self, request: Request) -> Response:
        p = request.params
        count = self._backend.dump_chunk_count(p["ws"], p["model"], p["import"], p["task"])
        return self._paged(request, "chunk", "chunks", self._chunk_list(count))

    def _import_dump_chunk(self, request: Request) -> Response:
        p = request.params
        index = self._chunk_index(request, not_found=True)
        return Response.stream(self._backend.open_dump(p["ws"], p["model"], p["import"], p["task"], None, index))

    def _process_dump(self, request: Request) -> Response:
        p = request.params
        slices = self._backend.open_dump(p["ws"], p["model"], p["process"], p["task"], p["object"])
        return Response.stream(slices, "text/csv")

    def _process_dump_chunks(self, request: Request) -> Response:
        p = request.params
        count = self._backend.dump_chunk_count(p["ws"], p["model"], p["process"], p["task"], p["object"])
        return self._paged(request, "chunk", "chunks", self._chunk_list(count))

    def _process_dump_chunk(self, request: Request) -> Response:
        p = request.params
        index = self._chunk_index(request, not_found=True)
        slices = self._backend.open_dump(p["ws"], p["model"], p["process"], p["task"], p["object"], index)
        return Response.stream(slices)

    # -------------------------------------------------------------------------------- control API

    def _get_config(self, request: Request) -> Response:
        return Response.json(
            {
                "defaults": asdict(self._backend.defaults),
                "actions": {a: asdict(self._backend.config_for(a)) for a in self._backend.action_configs},
            }
        )

    def _set_config(self, request: Request) -> Response:
        body = request.json()
        if not isinstance(body, dict):
            return Response.json({"error": "the body must be a JSON object"}, status=400)
        settings = dict(body)
        action_id = settings.pop("action_id", None)
        try:
            config = self._backend.configure(None if action_id is None else str(action_id), **settings)
        except ValueError as exc:
            return Response.json({"error": str(exc)}, status=400)
        return Response.json({"action_id": action_id, "config": asdict(config)})

    def _expire_tokens(self, request: Request) -> Response:
        return Response.json({"expired": self._backend.expire_tokens()})

    def _set_model_state(self, request: Request) -> Response:
        body = request.json()
        if not isinstance(body, dict):
            return Response.json({"error": "the body must be a JSON object"}, status=400)
        model_id = str(body.get("model_id", MODEL_ID))
        try:
            self._backend.set_model_state(model_id, str(body.get("state", "")))
        except ValueError as exc:
            return Response.json({"error": str(exc)}, status=400)
        except KeyError:
            return Response.json({"error": f"unknown model {model_id}"}, status=404)
        return Response.json({"model_id": model_id, "state": body["state"]})

    def _control_read_file(self, request: Request) -> Response:
        model_id = request.arg("model_id", MODEL_ID) or MODEL_ID
        try:
            slices = self._backend.open_file(request.params["file"], model_id)
        except (KeyError, AnaplanError):
            return Response.json({"error": f"unknown file {request.params['file']} in model {model_id}"}, status=404)
        return Response.stream(slices)

    def _control_write_file(self, request: Request) -> Response:
        model_id = request.arg("model_id", MODEL_ID) or MODEL_ID
        if model_id not in self._backend.models:
            return Response.json({"error": f"unknown model {model_id}"}, status=404)
        blob = self._backend.store.receive(request.body, limit=1 << 40, gunzip=False)
        self._backend.write_file(request.params["file"], blob, model_id, request.arg("name"))
        return Response.empty(204)

    def _control_last_request(self, request: Request) -> Response:
        body = self._backend.last_task_request.get(request.params["action"])
        if body is None:
            return Response.json({"error": "no task was started for this action"}, status=404)
        return Response.json(body)

    def _control_tasks(self, request: Request) -> Response:
        return Response.json({"tasks": self._backend.tasks()})


def _sort_key(value: Any) -> tuple[int, Any]:
    """Sort numbers numerically and everything else as text (None last)."""
    if value is None:
        return (2, "")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (0, value)
    return (1, str(value).lower())


__all__ = [
    "ACTUALS_FILE_ID",
    "API_PREFIX",
    "AUTH_PREFIX",
    "MODEL_ID",
    "WORKSPACE_ID",
    "ActionConfig",
    "AnaplanBackend",
    "AnaplanError",
    "AnaplanPlatform",
]
