"""SAP Analytics Cloud state, without HTTP: OAuth clients and tokens, CSRF sessions, Data Import jobs,
Multi Action executions and data-management schedules with their refresh logs.

States are computed lazily from timestamps (no background thread): an import job run finishes
``job_seconds`` after it started, a Multi Action ``multi_action_seconds`` after it started, and a
data-management run is logged ``log_delay_seconds`` after it was requested and ends
``run_seconds`` later. Every duration is an emulated one, scaled by the server's ``time_scale``.
"""

from __future__ import annotations

import secrets
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from ..platform import SandboxContext

# --------------------------------------------------------------------------------------------- seed ids

API_CLIENT_ID = "sb-sac-api-client"
API_CLIENT_SECRET = "sac-api-secret"
USER_CLIENT_ID = "sb-sac-interactive-client"
USER_CLIENT_SECRET = "sac-interactive-secret"
REFRESH_TOKEN = "sac-sandbox-refresh-token"
TENANT = "G"
MODEL_ID = "C9ZOF2L9O8JEEVDQ36A4J4Q0FG"
MODEL_NAME = "t.G:PLANNING_FORECAST"
SCHEDULE_ID = "F58CA15F78AA9039E200586F05E2BB93"
MAPPING_ID = "F48CA15F78AA9039E200586F05E2BB93"
MULTI_ACTION_ID = "t.G:CEEF5D0F8B3C4A5D9E7F"
MULTI_ACTION_WARNING_ID = "t.G:CEEF5D0F8B3C4A5DWARN"
MULTI_ACTION_FAILING_ID = "t.G:CEEF5D0F8B3C4A5DFAIL"

ACTIVE_JOB_STATES = ("READY_FOR_DATA", "READY_FOR_WRITE", "PROCESSING")


class SacError(Exception):
    """A refusal: HTTP status and SAC's message (with its ``[nnnn]`` number when SAC has one)."""

    def __init__(self, status: int, message: str, *, html: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.html = html


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass
class SacConfig:
    """What tests change through ``POST /_sandbox/sap_analytics_cloud/config``."""

    #: what the data-management service does with a client-credentials token: "allow", "html", "400"
    technical_token_on_dataintegration: str = "allow"
    rotate_refresh_tokens: bool = False
    max_active_jobs_per_user: int = 10  #: [1002]
    max_active_jobs_per_model: int = 5  #: [1007]
    job_seconds: float = 4.0
    job_outcome: str = "COMPLETED"  #: or FAILED
    multi_action_seconds: float = 4.0
    multi_action_status_case: str = "lower"  #: "lower" (running/successful), "title" (Running/Success)
    log_delay_seconds: float = 6.0
    run_seconds: float = 6.0
    rejected_rows: int = 0  #: >0: runs end with code 2 and a rejections CSV
    run_outcome: int = 0  #: 0 = by rejected_rows (1 or 2); 3 or 4 forces cancelled/stopped
    clock_offset_seconds: float = 0.0  #: SAC's clock minus ours (clock skew)

    def update(self, changes: dict[str, Any]) -> None:
        for key, value in changes.items():
            if not hasattr(self, key):
                raise ValueError(f"unknown config key {key!r}")
            current = getattr(self, key)
            setattr(self, key, type(current)(value))


@dataclass
class Token:
    value: str
    client_id: str
    purpose: str  #: "api" (client credentials) or "user" (refresh-token grant)
    expires_at: float


@dataclass
class ImportJob:
    job_id: str
    model_id: str
    import_type: str
    owner: str
    body: dict[str, Any]
    created: float
    status: str = "READY_FOR_DATA"
    rows: list[dict[str, Any]] = field(default_factory=list)
    invalid: list[dict[str, Any]] = field(default_factory=list)
    run_at: float | None = None
    outcome: str = "COMPLETED"


@dataclass
class Execution:
    execution_id: str
    multi_action_id: str
    started: float
    outcome: str
    messages: list[dict[str, str]]


@dataclass
class RefreshRun:
    execution_id: str
    requested: float
    outcome: int
    rejected: int
    stopped_at: float | None = None


@dataclass
class Schedule:
    schedule_id: str
    mapping_id: str
    model_name: str
    runs: list[RefreshRun] = field(default_factory=list)


MODEL_METADATA: dict[str, Any] = {
    "factData": {
        "keys": ["Version", "Date", "Region", "Product"],
        "columns": [
            {"columnName": "Version", "columnDataType": "string", "maxLength": 300, "isKey": True},
            {"columnName": "Date", "columnDataType": "string", "maxLength": 300, "isKey": True},
            {"columnName": "Region", "columnDataType": "string", "maxLength": 300, "isKey": True},
            {"columnName": "Product", "columnDataType": "string", "maxLength": 300, "isKey": True},
            {"columnName": "SignedData", "columnDataType": "decimal", "isKey": False},
        ],
    },
    "masterData": {
        "keys": ["ID"],
        "columns": [
            {"columnName": "ID", "columnDataType": "string", "maxLength": 300, "isKey": True},
            {"columnName": "Description", "columnDataType": "string", "maxLength": 300, "isKey": False},
        ],
    },
}


class SacBackend:
    """The tenant's state; thread-safe, scriptable from tests (``server.sap_analytics_cloud``)."""

    def __init__(self, context: SandboxContext) -> None:
        self.context = context
        self._lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        with getattr(self, "_lock", threading.RLock()):
            self.config = SacConfig()
            self.tokens: dict[str, Token] = {}
            #: refresh tokens issued by rotation -> client id; the seeded one is the credentials' own
            self.refresh_tokens: dict[str, str] = {}
            self.seed_refresh_token_used = False  #: the seeded refresh token was rotated away
            self.sessions: dict[str, str] = {}  #: session cookie -> CSRF token
            self.jobs: dict[str, ImportJob] = {}
            self.deleted_jobs: list[str] = []
            self.models: dict[str, dict[str, Any]] = {
                MODEL_ID: {"modelID": MODEL_ID, "modelName": "PLANNING_FORECAST", "metadata": MODEL_METADATA}
            }
            self.executions: dict[str, Execution] = {}
            self.multi_actions: dict[str, dict[str, Any]] = {
                MULTI_ACTION_ID: {"outcome": "successful", "required": ["Version"]},
                MULTI_ACTION_WARNING_ID: {"outcome": "warning", "required": []},
                MULTI_ACTION_FAILING_ID: {"outcome": "failed", "required": []},
            }
            self.schedules: dict[str, Schedule] = {
                SCHEDULE_ID: Schedule(SCHEDULE_ID, MAPPING_ID, MODEL_NAME),
            }
            self.noop_runs = 0  #: run requests answered 200 without effect (no or wrong tenant)

    def now(self) -> float:
        return self.context.clock()

    def scaled(self, seconds: float) -> float:
        return self.context.scaled(seconds)

    def configure(self, **changes: Any) -> SacConfig:
        with self._lock:
            self.config.update(changes)
            return self.config

    # -- auth ------------------------------------------------------------------------------------------

    def issue_token(self, client_id: str, secret: str, grant: str, refresh_token: str | None) -> dict[str, Any]:
        with self._lock:
            accepted = self.context.credentials
            user_client = accepted.get("sap_analytics_cloud", "user_client_id", USER_CLIENT_ID)
            clients = {
                accepted.get("sap_analytics_cloud", "api_client_id", API_CLIENT_ID): accepted.get(
                    "sap_analytics_cloud", "api_client_secret", API_CLIENT_SECRET
                ),
                user_client: accepted.get("sap_analytics_cloud", "user_client_secret", USER_CLIENT_SECRET),
            }
            if clients.get(client_id) != secret:
                raise SacError(401, "Bad credentials")
            body: dict[str, Any] = {}
            if grant == "client_credentials":
                purpose = "api"
            elif grant == "refresh_token":
                if client_id != user_client:
                    raise SacError(400, "unauthorized_client: the client's purpose does not allow this grant")
                seeded = accepted.get("sap_analytics_cloud", "refresh_token", REFRESH_TOKEN)
                is_seed = refresh_token == seeded and not self.seed_refresh_token_used
                if not is_seed and self.refresh_tokens.get(refresh_token or "") != client_id:
                    raise SacError(401, "invalid_grant: Invalid refresh token")
                purpose = "user"
                if self.config.rotate_refresh_tokens:
                    if is_seed:
                        self.seed_refresh_token_used = True
                    else:
                        del self.refresh_tokens[refresh_token or ""]
                    rotated = f"rt-{secrets.token_hex(12)}"
                    self.refresh_tokens[rotated] = client_id
                    body["refresh_token"] = rotated
            else:
                raise SacError(400, f"unsupported_grant_type: {grant}")
            ttl = self.context.token_ttl
            value = secrets.token_urlsafe(24)
            self.tokens[value] = Token(value, client_id, purpose, self.now() + ttl)
            return {"access_token": value, "token_type": "bearer", "expires_in": int(ttl), "scope": "", **body}

    def token(self, value: str) -> Token | None:
        with self._lock:
            token = self.tokens.get(value)
            if token is None or token.expires_at <= self.now():
                return None
            return token

    def expire_tokens(self) -> None:
        with self._lock:
            self.tokens.clear()

    def new_session(self) -> tuple[str, str]:
        with self._lock:
            session, csrf = secrets.token_hex(16), secrets.token_hex(16)
            self.sessions[session] = csrf
            return session, csrf

    def csrf_ok(self, session: str | None, csrf: str | None) -> bool:
        with self._lock:
            return bool(session and csrf and self.sessions.get(session) == csrf)

    def drop_sessions(self) -> None:
        """Forget every CSRF session (what an FPA session timeout looks like)."""
        with self._lock:
            self.sessions.clear()

    # -- Data Import API ---------------------------------------------------------------------------------

    def model(self, model_id: str) -> dict[str, Any]:
        model = self.models.get(model_id)
        if model is None:
            raise SacError(404, f"[1009] Model {model_id} not found or not accessible")
        return model

    def _refresh_job(self, job: ImportJob) -> None:
        finished = job.run_at is not None and self.now() >= job.run_at + self.scaled(self.config.job_seconds)
        if job.status == "PROCESSING" and finished:
            job.status = job.outcome

    def job(self, job_id: str) -> ImportJob:
        job = self.jobs.get(job_id)
        if job is None:
            raise SacError(404, f"[1009] Job {job_id} does not exist")
        self._refresh_job(job)
        return job

    def _active(self) -> list[ImportJob]:
        for job in self.jobs.values():
            self._refresh_job(job)
        return [job for job in self.jobs.values() if job.status in ACTIVE_JOB_STATES]

    def create_job(self, model_id: str, import_type: str, owner: str, body: dict[str, Any]) -> ImportJob:
        with self._lock:
            model = self.model(model_id)
            if import_type not in model["metadata"]:
                raise SacError(400, f"[1001] Import type {import_type} is not supported for model {model_id}")
            active = self._active()
            if sum(job.owner == owner for job in active) >= self.config.max_active_jobs_per_user:
                raise SacError(400, "[1002] The user has reached the maximum number of active jobs")
            if sum(job.model_id == model_id for job in active) >= self.config.max_active_jobs_per_model:
                raise SacError(400, f"[1007] The model {model_id} has reached the maximum number of active jobs")
            columns = {c["columnName"] for c in model["metadata"][import_type]["columns"]}
            bad = sorted(set(body.get("Mapping") or {}) - columns)
            if bad:
                raise SacError(400, f"[1004] Invalid target fields: {', '.join(bad)}")
            job = ImportJob(f"J{uuid.uuid4().hex[:24]}", model_id, import_type, owner, body, self.now())
            job.outcome = self.config.job_outcome
            self.jobs[job.job_id] = job
            return job

    def push_rows(self, job_id: str, rows: list[Any]) -> dict[str, Any]:
        with self._lock:
            job = self.job(job_id)
            if job.status not in ("READY_FOR_DATA", "READY_FOR_WRITE"):
                raise SacError(400, f"[1003] Job {job_id} is {job.status} and accepts no more data")
            model = self.model(job.model_id)["metadata"][job.import_type]
            mapping = job.body.get("Mapping") or {}
            source_of = {target: source for target, source in mapping.items()}
            failed = 0
            for row in rows:
                if not isinstance(row, dict):
                    raise SacError(400, "[1006] Each row of Data must be a JSON object")
                reason = self._invalid_reason(row, model, source_of, job.body.get("DefaultValues") or {})
                if reason:
                    failed += 1
                    job.invalid.append({"row": row, "reason": reason})
                else:
                    job.rows.append(row)
            job.status = "READY_FOR_WRITE"
            return {
                "upsertedNumberRows": len(rows) - failed,
                "failedNumberRows": failed,
                "totalNumberRowsInRequest": len(rows),
            }

    @staticmethod
    def _invalid_reason(
        row: dict[str, Any], model: dict[str, Any], source_of: dict[str, str], defaults: dict[str, Any]
    ) -> str | None:
        for column in model["columns"]:
            name = column["columnName"]
            value = row.get(source_of.get(name, name), defaults.get(name))
            if column.get("isKey") and value in (None, ""):
                return f"Key column {name} has no value"
            if column["columnDataType"] == "decimal" and value not in (None, ""):
                try:
                    float(str(value))
                except ValueError:
                    return f"Value {value!r} of {name} is not a number"
        return None

    def validate(self, job_id: str) -> dict[str, Any]:
        with self._lock:
            job = self.job(job_id)
            if job.status not in ("READY_FOR_WRITE", "READY_FOR_DATA"):
                raise SacError(400, f"[1003] Job {job_id} is {job.status}; it cannot be validated")
            if not job.rows and not job.invalid:
                raise SacError(400, "[1011] The temporary storage has no valid records")
            return {
                "jobStatus": "READY_FOR_WRITE",
                "totalNumberRowsInJob": len(job.rows) + len(job.invalid),
                "failedNumberRows": len(job.invalid),
                "invalidRowsURL": f"/api/v1/dataimport/jobs/{job_id}/invalidRows",
                "jobStatusURL": f"/api/v1/dataimport/jobs/{job_id}/status",
                "additionalInformation": {"cleanAndReplaceAffectedRows": 0},
            }

    def run(self, job_id: str, override: bool | None) -> dict[str, Any]:
        with self._lock:
            job = self.job(job_id)
            if job.status == "PROCESSING":
                raise SacError(400, f"[1010] A run of job {job_id} is already in progress")
            if job.status != "READY_FOR_WRITE":
                raise SacError(400, f"[1003] Job {job_id} is {job.status}; push rows and validate first")
            settings = job.body.get("JobSettings") or {}
            execute_failed = settings.get("executeWithFailedRows", False) if override is None else override
            if job.invalid and not execute_failed:
                job.outcome = "FAILED"
            job.status = "PROCESSING"
            job.run_at = self.now()
            # The work is the run: a staging job deleted before it ran wrote nothing.
            self.context.stats.record_task_started(f"sac:import:{job.model_id}")
            return {"jobStatus": "PROCESSING", "jobStatusURL": f"/api/v1/dataimport/jobs/{job_id}/status"}

    def status(self, job_id: str) -> dict[str, Any]:
        with self._lock:
            job = self.job(job_id)
            description = {
                "COMPLETED": f"Job {job_id} has been executed successfully",
                "FAILED": f"Job {job_id} failed: {len(job.invalid)} row(s) were rejected",
            }.get(job.status, f"Job {job_id} is {job.status}")
            return {
                "jobStatus": job.status,
                "jobStatusDescription": description,
                "additionalInformation": {
                    "totalNumberRowsInJob": str(len(job.rows) + len(job.invalid)),
                    "failedNumberRows": str(len(job.invalid)),
                },
            }

    def delete_job(self, job_id: str) -> None:
        with self._lock:
            self.job(job_id)
            del self.jobs[job_id]
            self.deleted_jobs.append(job_id)

    # -- Multi Actions ------------------------------------------------------------------------------------

    def start_execution(self, multi_action_id: str, body: Any) -> Execution:
        with self._lock:
            action = self.multi_actions.get(multi_action_id)
            if action is None:
                raise SacError(404, f"Multi Action {multi_action_id} not found")
            values = body.get("parameterValues") if isinstance(body, dict) else None
            if not isinstance(values, list):
                raise SacError(400, "The request body needs parameterValues (an empty list when there are none)")
            given = {v.get("parameterId") for v in values if isinstance(v, dict)}
            for name in action["required"]:
                if name not in given:
                    raise SacError(400, f"no value provided for parameter {name}")
            messages = []
            if action["outcome"] == "warning":
                messages = [{"type": "Warning", "message": "Data action step 2 changed no values"}]
            elif action["outcome"] == "failed":
                messages = [{"type": "Error", "message": "Data action step 1 failed: version is locked"}]
            execution = Execution(uuid.uuid4().hex, multi_action_id, self.now(), action["outcome"], messages)
            self.executions[execution.execution_id] = execution
            self.context.stats.record_task_started(f"sac:multiaction:{multi_action_id}")
            return execution

    def execution(self, multi_action_id: str, execution_id: str) -> dict[str, Any]:
        with self._lock:
            execution = self.executions.get(execution_id)
            if execution is None or execution.multi_action_id != multi_action_id:
                raise SacError(404, f"Execution {execution_id} of Multi Action {multi_action_id} not found")
            done = self.now() >= execution.started + self.scaled(self.config.multi_action_seconds)
            status = execution.outcome if done else "running"
            if self.config.multi_action_status_case == "title":
                status = {"successful": "Success", "failed": "Error"}.get(status, status.title())
            body: dict[str, Any] = {"executionId": execution_id, "status": status}
            if done and execution.messages:
                body["messages"] = execution.messages
            return body

    # -- data-management schedules ---------------------------------------------------------------------------

    def _run_view(self, run: RefreshRun) -> dict[str, Any] | None:
        now = self.now()
        logged_at = run.requested + self.scaled(self.config.log_delay_seconds)
        if now < logged_at:
            return None
        started = run.requested + self.config.clock_offset_seconds
        ends = logged_at + self.scaled(self.config.run_seconds)
        if run.stopped_at is not None:
            code, end = run.outcome, run.stopped_at
        elif now >= ends:
            code, end = run.outcome, ends
        else:
            code, end = 5, None
        total = 1000
        rejected = run.rejected if code in (1, 2) else 0
        return {
            "executionId": run.execution_id,
            "status": code,
            "startTime": iso(started),
            "endTime": iso(end + self.config.clock_offset_seconds) if end is not None else None,
            "wranglingAndUpdateResult": {
                "data": {
                    "allCount": total,
                    "rejectedCount": rejected,
                    "insertedCount": total - rejected if code in (1, 2) else 0,
                }
            },
        }

    def _running(self, run: RefreshRun) -> bool:
        if run.stopped_at is not None:
            return False
        return self.now() < run.requested + self.scaled(self.config.log_delay_seconds + self.config.run_seconds)

    def schedule_logs(self, model_name: str) -> list[dict[str, Any]]:
        with self._lock:
            entries = []
            for schedule in self.schedules.values():
                if schedule.model_name != model_name:
                    continue
                logs = [view for view in map(self._run_view, schedule.runs) if view is not None]
                entries.append(
                    {
                        "scheduleId": schedule.schedule_id,
                        "mappingId": schedule.mapping_id,
                        "status": "STOPPED",  # the recurrence status, not a live run flag
                        "refreshLogs": list(reversed(logs)),
                    }
                )
            return entries

    def run_schedule(self, tenant: str | None, body: Any) -> dict[str, Any]:
        with self._lock:
            schedule_id = str((body or {}).get("scheduleId") or "") if isinstance(body, dict) else ""
            if tenant != TENANT:
                self.noop_runs += 1  # SAC answers 200 and does nothing without the right tenant
                return {"scheduleId": schedule_id}
            schedule = self.schedules.get(schedule_id)
            if schedule is None or (body.get("mappingId") not in (None, schedule.mapping_id)):
                raise SacError(400, f"Error Code: 3000, Error Message: schedule {schedule_id} or its mapping not found")
            now = self.now()
            running = [run for run in schedule.runs if self._running(run)]
            rejected = self.config.rejected_rows
            outcome = self.config.run_outcome or (2 if rejected else 1)
            run = RefreshRun(uuid.uuid4().hex.upper(), now, outcome, rejected)
            if running:  # two runs at once: both end stopped
                for other in [*running, run]:
                    other.outcome = 4
                    other.stopped_at = max(now, other.requested + self.scaled(self.config.log_delay_seconds))
            schedule.runs.append(run)
            self.context.stats.record_task_started(f"sac:schedule:{schedule_id}")
            return {"scheduleId": schedule_id}

    def rejections(self, execution_id: str) -> str:
        with self._lock:
            for schedule in self.schedules.values():
                for run in schedule.runs:
                    if run.execution_id == execution_id:
                        lines = ["Source,Target,Issue,Value,Records"]
                        lines += [
                            f"Product,Product,Member does not exist,P{900 + i:03d},1" for i in range(run.rejected)
                        ]
                        return "\n".join(lines) + "\n"
            raise SacError(404, f"Execution {execution_id} not found")
