"""State and state machines of the emulated SAP Cloud Integration tenant (plain Python, no HTTP).

Durations are emulated seconds (multiplied by the server's ``time_scale``). Every public method of
:class:`CloudIntegrationBackend` is thread-safe; API methods raise :class:`CpiError` for requests
the tenant refuses, which :mod:`.routes` renders as ``odata.error`` envelopes (or plain text where
CPI answers plain text).
"""

from __future__ import annotations

import base64
import io
import re
import secrets
import threading
import uuid
import zipfile
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

from ..platform import SandboxContext

API_CLIENT_ID = "sb-cpi-api!b1|it!b1"
API_CLIENT_SECRET = "cpi-api-secret"
FLOW_CLIENT_ID = "sb-cpi-flow!b1|it-rt!b1"
FLOW_CLIENT_SECRET = "cpi-flow-secret"
BASIC_USER = "cpi-user"
BASIC_PASSWORD = "cpi-password"
SEED_PACKAGE = "SandboxPackage"
SEED_ARTIFACT = "Orders_Import"
PAGE_SIZE = 1000
WEB_UI = "https://sandbox.example.com"
TOKEN_TTL_SECONDS = 4199.0
ID_FIELDS = frozenset(
    {"MessageGuid", "CorrelationId", "ApplicationMessageId", "IntegrationArtifact/Id", "IntegrationFlowName"}
)
OUTCOMES = frozenset(
    {"COMPLETED", "FAILED", "ESCALATED", "RETRY_THEN_COMPLETED", "PROCESSING", "SYNC_500", "DISCARDED"}
)


class CpiError(Exception):
    """A refusal: HTTP status, message, and whether CPI answers it as plain text."""

    def __init__(self, status: int, message: str, *, plain: bool = False, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.plain = plain
        self.headers = headers or {}


@dataclass
class DeployConfig:
    """How deploys of one artifact behave (emulated seconds)."""

    build: str = "SUCCESS"  # or FAIL
    runtime: str = "STARTED"  # or ERROR
    build_seconds: float = 2.0
    not_found_seconds: float = 2.0
    starting_seconds: float = 2.0
    error_info_delay: float = 2.0
    undeploy_seconds: float = 1.0
    mixed_case: bool = True  # "Deploying"/"Success" as the help page's example shows


@dataclass
class FlowConfig:
    """How calls of one deployed flow behave."""

    path: str | None = None  # runtime path under /http, default "/<artifact id lower case>"
    outcome: str = "COMPLETED"
    processing_seconds: float = 2.0
    mpl_delay_seconds: float = 0.0  # the log is not visible until then (404 right after the call)
    response_body: str | None = None
    drop_answers: int = 0  # process the call, then drop the connection (the answer is lost)


@dataclass
class Designtime:
    id: str
    name: str
    package_id: str
    version: str
    content: bytes
    configurations: dict[str, dict[str, str]]
    modified: float


@dataclass
class DeployTask:
    task_id: str
    artifact_id: str
    version: str
    started: float
    config: DeployConfig


@dataclass
class Runtime:
    """The runtime artifact of one id: its newest deploy task, the one before, and undeploy time."""

    task: DeployTask
    previous: DeployTask | None = None
    undeployed_at: float | None = None


@dataclass
class Message:
    guid: str
    correlation_id: str
    artifact_id: str
    name: str
    started: float
    outcome: str
    processing: float
    visible_at: float
    error: str | None = None
    successor: str | None = None
    discard_at: float | None = None
    custom_headers: dict[str, str] = field(default_factory=dict)


def ms_date(epoch: float) -> str:
    return f"/Date({round(epoch * 1000)})/"


def _guid() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(21)).decode()[:28]


def parse_parameters(content: bytes) -> dict[str, dict[str, str]]:
    """Externalized parameters of an iFlow zip (``src/main/resources/parameters.prop``)."""
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            names = [n for n in archive.namelist() if n.endswith("parameters.prop")]
            text = archive.read(names[0]).decode("utf-8", "replace") if names else ""
    except zipfile.BadZipFile as exc:
        raise CpiError(400, f"ArtifactContent is not a valid zip archive: {exc}") from None
    found: dict[str, dict[str, str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        found[key.strip()] = {"value": value.strip(), "type": "xsd:string"}
    return found


def seed_zip(parameters: dict[str, str]) -> bytes:
    """A minimal iFlow zip with the given externalized parameters."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\nBundle-SymbolicName: sandbox\n")
        archive.writestr("src/main/resources/parameters.prop", "".join(f"{k}={v}\n" for k, v in parameters.items()))
        archive.writestr("src/main/resources/scenarioflows/integrationflow/flow.iflw", "<bpmn2:definitions/>")
    return buffer.getvalue()


class CloudIntegrationBackend:
    """The tenant: tokens, CSRF sessions, design-time and runtime artifacts, messages, counters."""

    def __init__(self, context: SandboxContext) -> None:
        self.context = context
        self._lock = threading.RLock()
        self.tokens: dict[str, tuple[str, float]] = {}
        self._seed()

    # -- seed / reset ---------------------------------------------------------------------------

    def _seed(self) -> None:
        now = self._now()
        params = {"ReceiverHost": "erp.example.com", "BatchSize": "100"}
        self.designtime: dict[str, Designtime] = {
            SEED_ARTIFACT: Designtime(
                SEED_ARTIFACT,
                "Orders Import",
                SEED_PACKAGE,
                "1.0.0",
                seed_zip(params),
                parse_parameters(seed_zip(params)),
                now,
            )
        }
        self.designtime[SEED_ARTIFACT].configurations["BatchSize"]["type"] = "xsd:integer"
        self.tasks: dict[str, DeployTask] = {}
        self.runtime: dict[str, Runtime] = {}
        self.messages: dict[str, Message] = {}
        self.deploy_configs: dict[str, DeployConfig] = {}
        self.flow_configs: dict[str, FlowConfig] = {}
        self.csrf_sessions: dict[str, str] = {}
        self.csrf_for_bearer = True
        self.rate_limit_left = 0
        self.rate_limit_retry_after = 1
        self.counters: Counter[str] = Counter()

    def reset(self) -> None:
        """Back to the seed tenant (issued tokens stay valid)."""
        with self._lock:
            self._seed()

    def _now(self) -> float:
        return self.context.clock()

    def _scaled(self, seconds: float) -> float:
        return self.context.scaled(seconds)

    # -- tokens and CSRF ------------------------------------------------------------------------

    def client_plan(self, client_id: str | None, secret: str | None) -> str | None:
        """``"api"`` or ``"flow"`` for a known client id and secret."""
        accepted = self.context.credentials
        for plan, (cid, csecret) in {
            "api": (
                accepted.get("sap_cloud_integration", "api_client_id", API_CLIENT_ID),
                accepted.get("sap_cloud_integration", "api_client_secret", API_CLIENT_SECRET),
            ),
            "flow": (
                accepted.get("sap_cloud_integration", "flow_client_id", FLOW_CLIENT_ID),
                accepted.get("sap_cloud_integration", "flow_client_secret", FLOW_CLIENT_SECRET),
            ),
        }.items():
            if client_id == cid and secret is not None and secrets.compare_digest(secret.encode(), csecret.encode()):
                return plan
        return None

    def issue_token(self, plan: str) -> tuple[str, float]:
        ttl = TOKEN_TTL_SECONDS if self.context.token_ttl >= 3600 else float(self.context.token_ttl)
        value = f"cpi-{plan}-{secrets.token_urlsafe(24)}"
        with self._lock:
            self.tokens[value] = (plan, self._now() + ttl)
        return value, ttl

    def token_plan(self, value: str) -> str | None:
        with self._lock:
            found = self.tokens.get(value)
        if found is None or found[1] <= self._now():
            return None
        return found[0]

    def expire_tokens(self) -> int:
        with self._lock:
            now = self._now()
            live = [k for k, (_, exp) in self.tokens.items() if exp > now]
            for key in live:
                self.tokens[key] = (self.tokens[key][0], now - 1)
            return len(live)

    def csrf_fetch(self, session: str | None) -> tuple[str, str]:
        """(session id, token): a new session when the request carried none."""
        with self._lock:
            session = session if session in self.csrf_sessions else secrets.token_hex(16)
            token = secrets.token_urlsafe(18)
            self.csrf_sessions[session] = token
            self.counters["csrf_fetches"] += 1
            return session, token

    def csrf_valid(self, session: str | None, token: str) -> bool:
        with self._lock:
            expected = self.csrf_sessions.get(session or "")
        return expected is not None and bool(token) and secrets.compare_digest(expected, token)

    def invalidate_csrf(self) -> int:
        with self._lock:
            count = len(self.csrf_sessions)
            self.csrf_sessions.clear()
            return count

    def take_rate_limit(self) -> bool:
        """True when this request must be answered 429 (``rate_limit`` budget)."""
        with self._lock:
            if self.rate_limit_left > 0:
                self.rate_limit_left -= 1
                return True
            return False

    # -- control ----------------------------------------------------------------------------------

    def configure_deploy(self, artifact_id: str, **settings: Any) -> DeployConfig:
        with self._lock:
            config = DeployConfig(**{**asdict(self.deploy_configs.get(artifact_id, DeployConfig())), **settings})
            if config.build.upper() not in ("SUCCESS", "FAIL") or config.runtime.upper() not in ("STARTED", "ERROR"):
                raise ValueError("build must be SUCCESS or FAIL; runtime STARTED or ERROR")
            self.deploy_configs[artifact_id] = config
            return config

    def configure_flow(self, artifact_id: str, **settings: Any) -> FlowConfig:
        with self._lock:
            config = FlowConfig(**{**asdict(self.flow_configs.get(artifact_id, FlowConfig())), **settings})
            config.outcome = config.outcome.upper()
            if config.outcome not in OUTCOMES:
                raise ValueError(f"outcome must be one of {', '.join(sorted(OUTCOMES))}")
            self.flow_configs[artifact_id] = config
            return config

    def flow_path(self, artifact_id: str) -> str:
        config = self.flow_configs.get(artifact_id)
        if config and config.path:
            return "/" + config.path.strip("/")
        design = self.designtime.get(artifact_id)
        address = design.configurations.get("EndpointAddress") if design else None
        if address and address.get("value"):
            return "/" + address["value"].strip("/")
        return "/" + artifact_id.lower()

    def add_messages(
        self, artifact_id: str, count: int, status: str = "COMPLETED", correlation_id: str | None = None
    ) -> list[str]:
        """Create ``count`` finished messages (paging tests): one millisecond apart, oldest first."""
        with self._lock:
            now = self._now() - count / 1000.0 - 1
            guids = []
            for index in range(count):
                message = Message(
                    _guid(),
                    correlation_id or _guid(),
                    artifact_id,
                    artifact_id,
                    now + index / 1000.0,
                    status.upper(),
                    0.0,
                    0.0,
                )
                self.messages[message.guid] = message
                guids.append(message.guid)
            return guids

    # -- design time ------------------------------------------------------------------------------

    def _design(self, artifact_id: str, version: str) -> Designtime:
        design = self.designtime.get(artifact_id)
        if design is None or version not in ("active", design.version):
            raise CpiError(404, f"Integration design time artifact {artifact_id!r} (version {version}) does not exist.")
        return design

    def design_json(self, artifact_id: str, version: str, base: str) -> dict[str, Any]:
        design = self._design(artifact_id, version)
        uri = f"{base}/IntegrationDesigntimeArtifacts(Id='{design.id}',Version='{design.version}')"
        return {
            "__metadata": {
                "id": uri,
                "uri": uri,
                "type": "com.sap.hci.api.IntegrationDesigntimeArtifact",
                "content_type": "application/octet-stream",
                "media_src": f"{uri}/$value",
            },
            "Id": design.id,
            "Version": design.version,
            "PackageId": design.package_id,
            "Name": design.name,
            "Description": "",
            "ArtifactContent": None,
            "Configurations": {"__deferred": {"uri": f"{uri}/Configurations"}},
        }

    def design_content(self, artifact_id: str, version: str) -> bytes:
        return self._design(artifact_id, version).content

    def _content(self, body: dict[str, Any]) -> bytes:
        raw = body.get("ArtifactContent")
        if not isinstance(raw, str) or not raw:
            raise CpiError(400, "ArtifactContent (the base64 encoded iFlow zip) is required.")
        try:
            content = base64.b64decode(raw, validate=True)
        except ValueError:
            raise CpiError(400, "ArtifactContent is not valid base64.") from None
        if not content.startswith(b"PK"):
            raise CpiError(400, "ArtifactContent is not a zip archive.")
        return content

    def create_design(self, body: Any) -> str:
        if not isinstance(body, dict):
            raise CpiError(400, "The request body must be a JSON object.")
        missing = [k for k in ("Id", "Name", "PackageId") if not body.get(k)]
        if missing:
            raise CpiError(400, f"Missing property: {', '.join(missing)}.")
        content = self._content(body)
        artifact_id = str(body["Id"])
        with self._lock:
            if artifact_id in self.designtime:
                raise CpiError(409, f"Integration artifact {artifact_id!r} already exists; use PUT to update it.")
            self.designtime[artifact_id] = Designtime(
                artifact_id,
                str(body["Name"]),
                str(body["PackageId"]),
                "1.0.0",
                content,
                parse_parameters(content),
                self._now(),
            )
            self.counters["uploads"] += 1
        return artifact_id

    def update_design(self, artifact_id: str, version: str, body: Any) -> None:
        if not isinstance(body, dict):
            raise CpiError(400, "The request body must be a JSON object.")
        content = self._content(body)
        with self._lock:
            design = self._design(artifact_id, version)
            design.content = content
            design.name = str(body.get("Name") or design.name)
            parsed = parse_parameters(content)
            for key, value in design.configurations.items():  # keep values already set in the tenant
                if key in parsed:
                    parsed[key] = value
            design.configurations = parsed
            design.modified = self._now()
            self.counters["uploads"] += 1

    def delete_design(self, artifact_id: str, version: str) -> None:
        with self._lock:
            self._design(artifact_id, version)
            del self.designtime[artifact_id]

    def configurations(self, artifact_id: str, version: str) -> list[dict[str, Any]]:
        design = self._design(artifact_id, version)
        return [
            {"ParameterKey": k, "ParameterValue": v["value"], "DataType": v["type"]}
            for k, v in design.configurations.items()
        ]

    def set_configuration(self, artifact_id: str, version: str, key: str, body: Any) -> None:
        if not isinstance(body, dict) or "ParameterValue" not in body:
            raise CpiError(400, "The body must hold ParameterValue (and DataType).")
        with self._lock:
            design = self._design(artifact_id, version)
            if key not in design.configurations:
                raise CpiError(404, f"Configuration parameter {key!r} does not exist in {artifact_id!r}.")
            current = design.configurations[key]
            data_type = str(body.get("DataType") or current["type"])
            value = str(body["ParameterValue"])
            if data_type == "xsd:integer" and not re.fullmatch(r"-?\d+", value):
                raise CpiError(400, f"Value {value!r} of {key!r} is not an xsd:integer.")
            design.configurations[key] = {"value": value, "type": data_type}
            self.counters["configuration_updates"] += 1

    # -- deploy and runtime -----------------------------------------------------------------------

    def deploy(self, artifact_id: str, version: str) -> str:
        with self._lock:
            design = self._design(artifact_id, version)
            config = self.deploy_configs.get(artifact_id, DeployConfig())
            task = DeployTask(uuid.uuid4().hex, artifact_id, design.version, self._now(), config)
            self.tasks[task.task_id] = task
            current = self.runtime.get(artifact_id)
            previous = None
            if current is not None and current.undeployed_at is None and self._runtime_state(current)[0] == "STARTED":
                previous = current.task
            self.runtime[artifact_id] = Runtime(task=task, previous=previous)
            self.counters[f"deploys:{artifact_id}"] += 1
            self.counters["deploys"] += 1
            self.context.stats.tasks_started[f"cpi:deploy:{artifact_id}"] += 1
            return task.task_id

    def _phase_times(self, task: DeployTask) -> tuple[float, float, float]:
        c = task.config
        built = task.started + self._scaled(c.build_seconds)
        visible = built + self._scaled(c.not_found_seconds)
        started = visible + self._scaled(c.starting_seconds)
        return built, visible, started

    def build_status(self, task_id: str) -> str:
        task = self.tasks.get(task_id)
        if task is None:
            raise CpiError(404, f"Task {task_id!r} does not exist.")
        built, _, _ = self._phase_times(task)
        status = "DEPLOYING" if self._now() < built else task.config.build.upper()
        return status.capitalize() if task.config.mixed_case else status

    def _runtime_state(self, runtime: Runtime) -> tuple[str | None, DeployTask | None]:
        """(status or None for 404, the task it shows)."""
        now = self._now()
        if runtime.undeployed_at is not None:
            gone = runtime.undeployed_at + self._scaled(runtime.task.config.undeploy_seconds)
            return (None, None) if now >= gone else ("STOPPING", runtime.task)
        task = runtime.task
        built, visible, started = self._phase_times(task)
        if now < built:
            return ("STARTED", runtime.previous) if runtime.previous else (None, None)
        if task.config.build.upper() == "FAIL" or now < visible:
            return None, None
        if now < started:
            return "STARTING", task
        return task.config.runtime.upper(), task

    def runtime_json(self, artifact_id: str, base: str) -> dict[str, Any]:
        runtime = self.runtime.get(artifact_id)
        status, task = self._runtime_state(runtime) if runtime else (None, None)
        if status is None or task is None:
            raise CpiError(404, f"Integration runtime artifact {artifact_id!r} does not exist.")
        design = self.designtime.get(artifact_id)
        uri = f"{base}/IntegrationRuntimeArtifacts('{artifact_id}')"
        return {
            "__metadata": {"id": uri, "uri": uri, "type": "com.sap.hci.api.IntegrationRuntimeArtifact"},
            "Id": artifact_id,
            "Version": task.version,
            "Name": design.name if design else artifact_id,
            "Type": "INTEGRATION_FLOW",
            "DeployedBy": API_CLIENT_ID,
            "DeployedOn": ms_date(task.started),
            "Status": status,
            "ErrorInformation": {"__deferred": {"uri": f"{uri}/ErrorInformation"}},
        }

    def runtime_list(self, base: str) -> list[dict[str, Any]]:
        found = []
        for artifact_id in sorted(self.runtime):
            try:
                found.append(self.runtime_json(artifact_id, base))
            except CpiError:
                continue
        return found

    def runtime_error(self, artifact_id: str) -> dict[str, Any] | None:
        """The deploy error JSON, None while it is not ready (204); 404 when not deployed."""
        runtime = self.runtime.get(artifact_id)
        status, task = self._runtime_state(runtime) if runtime else (None, None)
        if status is None or task is None:
            raise CpiError(404, f"Integration runtime artifact {artifact_id!r} does not exist.")
        if status != "ERROR":
            return None
        _, _, started = self._phase_times(task)
        if self._now() < started + self._scaled(task.config.error_info_delay):
            return None
        child = {
            "subsystemName": "CONTENT",
            "subsytemPartName": "CONTENT_DEPLOY",
            "messageId": "ContentDeployError",
            "messageText": f"Error while starting {artifact_id}: Unable to resolve the receiver address "
            f"'{self._param(artifact_id, 'ReceiverHost')}' of adapter HTTP_Receiver.",
        }
        inner = {"message": "ERROR", "childMessageInstances": [child]}
        return {
            "message": {
                "subsystemName": "CONTENT",
                "subsytemPartName": "CONTENT_DEPLOY",
                "messageId": "InstanceError",
                "messageText": "",
            },
            "parameter": [__import__("json").dumps(inner)],
        }

    def _param(self, artifact_id: str, key: str) -> str:
        design = self.designtime.get(artifact_id)
        return (design.configurations.get(key) or {}).get("value", "") if design else ""

    def undeploy(self, artifact_id: str) -> None:
        with self._lock:
            runtime = self.runtime.get(artifact_id)
            status = self._runtime_state(runtime)[0] if runtime else None
            if runtime is None or status is None:
                raise CpiError(404, f"Integration runtime artifact {artifact_id!r} does not exist.")
            if runtime.undeployed_at is None:
                runtime.undeployed_at = self._now()
            self.counters["undeploys"] += 1

    def endpoints(self, base_url: str) -> list[dict[str, Any]]:
        found = []
        for artifact_id, runtime in sorted(self.runtime.items()):
            status, task = self._runtime_state(runtime)
            if status != "STARTED" or task is None:
                continue
            path = self.flow_path(artifact_id)
            found.append(
                {
                    "Name": artifact_id,
                    "Id": f"{artifact_id}$endpointAddress={path.strip('/')}",
                    "Title": artifact_id,
                    "Version": task.version,
                    "Summary": "",
                    "Description": "",
                    "LastUpdated": ms_date(task.started),
                    "Protocol": "REST",
                    "EntryPoints": {
                        "results": [
                            {
                                "Name": artifact_id,
                                "Url": f"{base_url}/http{path}",
                                "Type": "PROD",
                                "AdditionalInformation": "",
                            }
                        ]
                    },
                }
            )
        return found

    # -- flow calls and messages ---------------------------------------------------------------------

    def call_flow(self, path: str, correlation_id: str | None) -> tuple[Message, FlowConfig]:
        """Process one call of a flow endpoint; raises 404 (plain text) when no started flow serves it."""
        path = "/" + path.strip("/")
        with self._lock:
            match = None
            for artifact_id, runtime in self.runtime.items():
                if self.flow_path(artifact_id) == path and self._runtime_state(runtime)[0] == "STARTED":
                    match = artifact_id
            self.counters[f"flow_calls:{path}"] += 1
            self.counters["flow_calls"] += 1
            if match is None:
                raise CpiError(404, f"No matching service endpoint found for /http{path}.", plain=True)
            config = self.flow_configs.get(match, FlowConfig())
            now = self._now()
            processing = self._scaled(config.processing_seconds)
            design = self.designtime.get(match)
            message = Message(
                _guid(),
                correlation_id or _guid(),
                match,
                design.name if design else match,
                now,
                config.outcome,
                processing,
                now + self._scaled(config.mpl_delay_seconds),
            )
            if config.outcome in ("FAILED", "ESCALATED", "SYNC_500"):
                message.error = (
                    "com.sap.it.rt.adapter.http.api.exception.HttpResponseException: An internal server error "
                    f"occured: HTTP 502 from receiver {self._param(match, 'ReceiverHost') or 'erp.example.com'}. "
                    "The error details are available in Monitor Message Processing."
                )
            if config.outcome == "DISCARDED":
                restart = Message(
                    _guid(),
                    message.correlation_id,
                    match,
                    message.name,
                    now + processing / 2,
                    "COMPLETED",
                    processing,
                    now + processing / 2,
                )
                message.successor, message.discard_at = restart.guid, now + processing / 2
                self.messages[restart.guid] = restart
            self.messages[message.guid] = message
            self.context.stats.tasks_started[f"cpi:flow:{path}"] += 1
            drop = config.drop_answers > 0
            if drop:
                config.drop_answers -= 1
            return message, FlowConfig(**{**asdict(config), "drop_answers": int(drop)})

    def message_status(self, message: Message, now: float) -> str:
        if message.outcome == "SYNC_500":
            return "FAILED"
        if message.discard_at is not None:
            return "PROCESSING" if now < message.discard_at else "DISCARDED"
        done = message.started + message.processing
        if message.outcome == "PROCESSING" or now < done:
            return "PROCESSING"
        if message.outcome == "RETRY_THEN_COMPLETED":
            return "RETRY" if now < done + message.processing else "COMPLETED"
        return message.outcome

    def message_json(self, message: Message, base: str, now: float) -> dict[str, Any]:
        status = self.message_status(message, now)
        ended = None if status in ("PROCESSING", "RETRY") else message.started + message.processing
        uri = f"{base}/MessageProcessingLogs('{message.guid}')"
        deferred = {
            k: {"__deferred": {"uri": f"{uri}/{k}"}}
            for k in (
                "CustomHeaderProperties",
                "MessageStoreEntries",
                "ErrorInformation",
                "AdapterAttributes",
                "Attachments",
                "Runs",
            )
        }
        link = (
            "https://sandbox.example.com/itspaces/shell/monitoring/MessageDetails/%7B%22messageGuid%22%3A%22"
            + message.guid
            + "%22%7D"
        )
        return {
            "__metadata": {"id": uri, "uri": uri, "type": "com.sap.hci.api.MessageProcessingLog"},
            "MessageGuid": message.guid,
            "CorrelationId": message.correlation_id,
            "ApplicationMessageId": None,
            "ApplicationMessageType": None,
            "LogStart": ms_date(message.started),
            "LogEnd": ms_date(ended) if ended is not None else None,
            "Sender": None,
            "Receiver": None,
            "IntegrationFlowName": message.artifact_id,
            "Status": status,
            "AlternateWebLink": link,
            "IntegrationArtifact": {
                "Id": message.artifact_id,
                "Name": message.name,
                "Type": "INTEGRATION_FLOW",
                "PackageId": SEED_PACKAGE,
                "PackageName": SEED_PACKAGE,
            },
            "LogLevel": "INFO",
            "CustomStatus": status,
            "TransactionId": uuid.uuid4().hex,
            **deferred,
        }

    def visible_messages(self) -> list[tuple[Message, float]]:
        now = self._now()
        with self._lock:
            return [(m, now) for m in self.messages.values() if m.visible_at <= now]

    def get_message(self, guid: str) -> tuple[Message, float]:
        now = self._now()
        message = self.messages.get(guid)
        if message is None or message.visible_at > now:
            raise CpiError(404, f"Message processing log with id {guid} not found", plain=True)
        return message, now

    def message_error(self, guid: str) -> str | None:
        message, now = self.get_message(guid)
        if self.message_status(message, now) not in ("FAILED", "ESCALATED"):
            return None
        return message.error

    def inspect(self) -> dict[str, Any]:
        """Counters and messages for the control API and tests."""
        now = self._now()
        with self._lock:
            return {
                "counters": dict(self.counters),
                "messages": [
                    {
                        "MessageGuid": m.guid,
                        "CorrelationId": m.correlation_id,
                        "artifact_id": m.artifact_id,
                        "Status": self.message_status(m, now),
                        "LogStart": datetime.fromtimestamp(m.started, timezone.utc).isoformat(),
                    }
                    for m in sorted(self.messages.values(), key=lambda m: m.started)
                ],
            }
