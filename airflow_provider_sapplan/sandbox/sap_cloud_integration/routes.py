"""HTTP face of the emulated Cloud Integration tenant: OAuth, OData ``/api/v1``, ``/http/...``, control.

Strict like the documents: JSON only with ``Accept: application/json`` or ``$format=json`` (Atom
XML otherwise), ``{"d": ...}`` envelopes, ``/Date(ms)/``, ``odata.error`` bodies (plain text for
MPL 404s and the router's 401), CSRF on writes (always for basic auth, for bearer tokens unless
relaxed), api-plan and integration-flow-plan tokens valid only on their own side, 202 plain-text
deploy task ids, 204 before error details, 1000-entry MPL pages with ``__next``, 429 on demand.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import re
from dataclasses import asdict
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qs, quote, urlencode

from ..platform import Platform
from ..routing import HttpError, Mount, Request, Response, Route
from .models import (
    API_CLIENT_ID,
    API_CLIENT_SECRET,
    BASIC_PASSWORD,
    BASIC_USER,
    FLOW_CLIENT_ID,
    FLOW_CLIENT_SECRET,
    ID_FIELDS,
    PAGE_SIZE,
    CloudIntegrationBackend,
    CpiError,
    Message,
)

PREFIX = "/sap-cloud-integration"
API_PREFIX = f"{PREFIX}/api/v1"
HTTP_PREFIX = f"{PREFIX}/http"
OAUTH_PREFIX = f"{PREFIX}/oauth"
CONTROL_PREFIX = "/_sandbox/sap_cloud_integration"
ORDERBY = {"LogEnd", "LogEnd desc", "LogStart", "LogStart desc", "Status,LogEnd desc", "ApplicationMessageId"}
_LINK_SAFE = "$/'(),"
ATOM_FEED = b'<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom"/>'
DESIGN = "/IntegrationDesigntimeArtifacts(Id='{id}',Version='{version}')"


def odata_error(status: int, message: str, code: str | None = None) -> Response:
    body = {"error": {"code": code or _CODES.get(status, "Error"), "message": {"lang": "en", "value": message}}}
    return Response.json(body, status=status)


_CODES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    429: "Too Many Requests",
    500: "Internal Server Error",
}


def _render(exc: CpiError) -> Response:
    if exc.plain:
        response = Response(status=exc.status, body=exc.message.encode(), content_type="text/plain;charset=utf-8")
    else:
        response = odata_error(exc.status, exc.message)
    response.headers.update(exc.headers)
    return response


def _key(value: str) -> str:
    return value.replace("''", "'")


# -- $filter grammar: eq ne gt lt ge le, and/or, parentheses, 'text', datetime'...', numbers --------

_TOKEN = re.compile(r"\s*(?:(\()|(\))|datetime'([^']*)'|'((?:[^']|'')*)'|(-?\d+(?:\.\d+)?)|([A-Za-z_][A-Za-z0-9_/]*))")


def parse_filter(text: str) -> Any:
    """A nested ``("and"|"or", left, right)`` / ``(field, op, value)`` tree; raises CpiError(400)."""
    tokens: list[tuple[str, Any]] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            if text[pos:].strip() == "":
                break
            raise CpiError(400, f"Invalid filter expression near {text[pos : pos + 20]!r}.")
        pos = match.end()
        lpar, rpar, dt, string, number, word = match.groups()
        if lpar:
            tokens.append(("(", None))
        elif rpar:
            tokens.append((")", None))
        elif dt is not None:
            tokens.append(("value", _datetime(dt)))
        elif string is not None:
            tokens.append(("value", string.replace("''", "'")))
        elif number is not None:
            tokens.append(("value", float(number)))
        else:
            tokens.append(("word", word))
    index = 0

    def peek() -> tuple[str, Any] | None:
        return tokens[index] if index < len(tokens) else None

    def take() -> tuple[str, Any]:
        nonlocal index
        if index >= len(tokens):
            raise CpiError(400, "Invalid filter expression: unexpected end.")
        index += 1
        return tokens[index - 1]

    def expression(level: str = "or") -> Any:
        left = expression("and") if level == "or" else factor()
        while (tok := peek()) is not None and tok == ("word", level):
            take()
            right = expression("and") if level == "or" else factor()
            left = (level, left, right)
        return left

    def factor() -> Any:
        kind, value = take()
        if kind == "(":
            inner = expression()
            if take()[0] != ")":
                raise CpiError(400, "Invalid filter expression: missing ')'.")
            return inner
        if kind != "word":
            raise CpiError(400, "Invalid filter expression: a property name was expected.")
        op_kind, op = take()
        if op_kind != "word" or op not in ("eq", "ne", "gt", "lt", "ge", "le"):
            raise CpiError(400, f"Invalid filter expression: unsupported operator {op!r} after {value}.")
        if value in ID_FIELDS and op != "eq":
            raise CpiError(400, f"Only the eq operator is allowed for {value}.")
        val_kind, literal = take()
        if val_kind != "value":
            raise CpiError(400, f"Invalid filter expression: a literal was expected after {value} {op}.")
        return (value, op, literal)

    tree = expression()
    if index != len(tokens):
        raise CpiError(400, "Invalid filter expression: unexpected trailing tokens.")
    return tree


def _datetime(text: str) -> datetime:
    if re.search(r"(Z|[+-]\d{2}:?\d{2})$", text):
        raise CpiError(400, f"Invalid datetime literal '{text}': time zone offsets are not allowed; use UTC.")
    try:
        return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)
    except ValueError:
        raise CpiError(400, f"Invalid datetime literal '{text}'; expected YYYY-MM-DDTHH:MM:SS.") from None


_FIELDS = {
    "Status",
    "CorrelationId",
    "MessageGuid",
    "ApplicationMessageId",
    "IntegrationArtifact/Id",
    "IntegrationFlowName",
    "LogStart",
    "LogEnd",
    "CustomStatus",
    "LogLevel",
    "Sender",
    "Receiver",
}


def matches(tree: Any, record: dict[str, Any]) -> bool:
    if tree[0] in ("and", "or"):
        left, right = matches(tree[1], record), matches(tree[2], record)
        return (left and right) if tree[0] == "and" else (left or right)
    name, op, literal = tree
    if name not in _FIELDS:
        raise CpiError(400, f"Property {name} is not filterable.")
    value: Any = record.get(name)
    if isinstance(literal, datetime):
        if value is None:
            return False
        value = datetime.fromtimestamp(value, timezone.utc)
    elif value is None:
        return op == "ne"
    compare = {"eq": value == literal, "ne": value != literal}
    if op in compare:
        return compare[op]
    try:
        return {"gt": value > literal, "lt": value < literal, "ge": value >= literal, "le": value <= literal}[op]
    except TypeError:
        raise CpiError(400, f"Operator {op} does not apply to {name}.") from None


def _record(message: Message, json_doc: dict[str, Any], backend: CloudIntegrationBackend, now: float) -> dict[str, Any]:
    ended = message.started + message.processing if json_doc["LogEnd"] else None
    return {
        "Status": json_doc["Status"],
        "CorrelationId": message.correlation_id,
        "MessageGuid": message.guid,
        "ApplicationMessageId": None,
        "IntegrationArtifact/Id": message.artifact_id,
        "IntegrationFlowName": message.artifact_id,
        "LogStart": message.started,
        "LogEnd": ended,
        "CustomStatus": json_doc["CustomStatus"],
        "LogLevel": "INFO",
        "Sender": None,
        "Receiver": None,
    }


class SapCloudIntegrationPlatform(Platform):
    """HTTP face of :class:`CloudIntegrationBackend`."""

    name = "sap_cloud_integration"
    title = "SAP Cloud Integration (OData API /api/v1 and /http flow endpoints)"
    backend_class = CloudIntegrationBackend

    @property
    def backend(self) -> CloudIntegrationBackend:
        return self._backend

    def connection_hints(self, base_url: str) -> list[str]:
        conn = {"conn_type": "sap_cloud_integration", "extra": sandbox_extra(base_url)}
        return [
            f"# {self.title}: api client {API_CLIENT_ID} / {API_CLIENT_SECRET}, integration-flow client "
            f"{FLOW_CLIENT_ID} / {FLOW_CLIENT_SECRET}, basic auth {BASIC_USER} / {BASIC_PASSWORD}",
            f"export AIRFLOW_CONN_SAP_CLOUD_INTEGRATION_DEFAULT='{json.dumps(conn)}'",
        ]

    def mounts(self) -> list[Mount]:
        design = DESIGN
        api_routes = [
            Route("GET", "/", self._service_root),
            Route("POST", "/IntegrationDesigntimeArtifacts", self._create_design),
            Route("GET", design, self._get_design),
            Route("PUT", design, self._put_design),
            Route("DELETE", design, self._delete_design),
            Route("GET", design + "/$value", self._download),
            Route("GET", design + "/Configurations", self._configurations),
            Route("PUT", design + "/Configurations('{key}')", self._set_configuration),
            Route("POST", "/DeployIntegrationDesigntimeArtifact", self._deploy),
            Route("GET", "/BuildAndDeployStatus(TaskId='{task}')", self._build_status),
            Route("GET", "/IntegrationRuntimeArtifacts", self._runtime_list),
            Route("GET", "/IntegrationRuntimeArtifacts('{id}')", self._runtime),
            Route("DELETE", "/IntegrationRuntimeArtifacts('{id}')", self._undeploy),
            Route("GET", "/IntegrationRuntimeArtifacts('{id}')/ErrorInformation/$value", self._runtime_error),
            Route("GET", "/ServiceEndpoints", self._endpoints),
            Route("GET", "/MessageProcessingLogs", self._messages),
            Route("GET", "/MessageProcessingLogs('{guid}')", self._message),
            Route("GET", "/MessageProcessingLogs('{guid}')/ErrorInformation/$value", self._message_error),
        ]
        flow_routes = [
            Route(method, template, self._call_flow)
            for template in ("/{a}", "/{a}/{b}", "/{a}/{b}/{c}")
            for method in ("GET", "POST", "PUT", "PATCH", "DELETE")
        ]
        control = [
            Route("POST", "/deploy_config", self._control_deploy),
            Route("POST", "/flow_config", self._control_flow),
            Route("POST", "/csrf", self._control_csrf),
            Route("POST", "/rate_limit", self._control_rate_limit),
            Route("POST", "/expire_tokens", self._control_expire),
            Route("POST", "/messages", self._control_messages),
            Route("GET", "/state", self._control_state),
        ]
        return [
            Mount(OAUTH_PREFIX, self.name, [Route("POST", "/token", self._token)], auth_endpoint=True),
            Mount(
                API_PREFIX,
                self.name,
                [self._wrap(r) for r in api_routes],
                guard=self._api_guard,
                errors=lambda req, status, msg: odata_error(status, msg),
            ),
            Mount(
                HTTP_PREFIX,
                self.name,
                [self._wrap(r) for r in flow_routes],
                guard=self._flow_guard,
                errors=lambda req, status, msg: Response(status=status, body=msg.encode(), content_type="text/plain"),
            ),
            Mount(CONTROL_PREFIX, self.name, control, control=True),
        ]

    def _wrap(self, route: Route) -> Route:
        handler = route.handler

        def run(request: Request) -> Response:
            try:
                return handler(request)
            except CpiError as exc:
                return _render(exc)

        return Route(route.method, route.template, run)

    # -- auth ---------------------------------------------------------------------------------------

    def _token(self, request: Request) -> Response:
        scheme, _, value = request.header("Authorization").partition(" ")
        client_id = secret = None
        if scheme.lower() == "basic":
            with contextlib.suppress(ValueError, binascii.Error):
                client_id, _, secret = base64.b64decode(value.strip()).decode().partition(":")
        raw = request.body.read_all(limit=65536).decode("utf-8", "replace")
        form = {k: v[-1] for k, v in parse_qs(raw).items()}
        grant = form.get("grant_type") or request.arg("grant_type")
        client_id = client_id or form.get("client_id")
        secret = secret or form.get("client_secret")
        if grant != "client_credentials":
            return Response.json({"error": "unsupported_grant_type"}, status=400)
        plan = self._backend.client_plan(client_id, secret)
        if plan is None:
            return Response.json({"error": "unauthorized", "error_description": "Bad credentials"}, status=401)
        token, ttl = self._backend.issue_token(plan)
        return Response.json(
            {"access_token": token, "token_type": "bearer", "expires_in": int(ttl), "scope": f"it.{plan}"}
        )

    def _identity(self, request: Request) -> str | None:
        """``"api"``/``"flow"`` for a bearer token, ``"basic"`` for the basic user, None otherwise."""
        scheme, _, value = request.header("Authorization").strip().partition(" ")
        if scheme.lower() == "bearer" and value:
            return self._backend.token_plan(value.strip())
        if scheme.lower() == "basic":
            try:
                user, _, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
            except (ValueError, binascii.Error):
                return None
            accepted = self._backend.context.credentials
            expected = (
                accepted.get("sap_cloud_integration", "basic_user", BASIC_USER),
                accepted.get("sap_cloud_integration", "basic_password", BASIC_PASSWORD),
            )
            return "basic" if (user, password) == expected else None
        return None

    def _unauthorized(self) -> Response:
        return Response(
            status=401,
            body=b"Unauthorized",
            content_type="text/plain",
            headers={"WWW-Authenticate": 'Bearer realm="it"'},
        )

    def _api_guard(self, request: Request) -> Response | None:
        identity = self._identity(request)
        if identity is None:
            return self._unauthorized()
        if identity == "flow":
            return odata_error(
                403, "Forbidden: an integration-flow plan token cannot call the OData API; use the api plan key."
            )
        if self._backend.take_rate_limit():
            response = odata_error(429, "Rate limit exceeded; retry later.")
            response.headers["Retry-After"] = str(self._backend.rate_limit_retry_after)
            return response
        session = _cookie(request, "JSESSIONID")
        if request.method == "GET" and request.header("X-CSRF-Token").lower() == "fetch":
            request.params["_csrf_session"] = session or ""
            return None
        enforce = identity == "basic" or self._backend.csrf_for_bearer
        writing = request.method in ("POST", "PUT", "PATCH", "DELETE")
        if enforce and writing and not self._backend.csrf_valid(session, request.header("X-CSRF-Token")):
            return Response(
                status=403,
                body=b"CSRF token validation failed",
                content_type="text/plain",
                headers={"X-CSRF-Token": "Required"},
            )
        if not _wants_json(request):
            return Response(status=200, body=ATOM_FEED, content_type="application/atom+xml;type=feed")
        return None

    def _flow_guard(self, request: Request) -> Response | None:
        identity = self._identity(request)
        if identity is None:
            return self._unauthorized()
        if identity == "api":
            return Response(
                status=403, body=b"Forbidden: the token lacks the role ESBMessaging.send", content_type="text/plain"
            )
        return None

    # -- API routes -------------------------------------------------------------------------------

    def _base(self, request: Request) -> str:
        return f"{request.base_url}{API_PREFIX}"

    def _service_root(self, request: Request) -> Response:
        headers: dict[str, str] = {}
        if request.header("X-CSRF-Token").lower() == "fetch":
            session, token = self._backend.csrf_fetch(request.params.get("_csrf_session") or None)
            headers["X-CSRF-Token"] = token
            headers["Set-Cookie"] = f"JSESSIONID={session}; Path={PREFIX}; HttpOnly"
        sets = [
            "IntegrationDesigntimeArtifacts",
            "IntegrationRuntimeArtifacts",
            "MessageProcessingLogs",
            "ServiceEndpoints",
        ]
        return Response.json({"d": {"EntitySets": sets}}, headers=headers)

    def _create_design(self, request: Request) -> Response:
        artifact_id = self._backend.create_design(_json_body(request))
        doc = self._backend.design_json(artifact_id, "active", self._base(request))
        return Response.json({"d": doc}, status=201)

    def _get_design(self, request: Request) -> Response:
        p = request.params
        return Response.json({"d": self._backend.design_json(_key(p["id"]), _key(p["version"]), self._base(request))})

    def _put_design(self, request: Request) -> Response:
        p = request.params
        self._backend.update_design(_key(p["id"]), _key(p["version"]), _json_body(request))
        return Response.empty(202)

    def _delete_design(self, request: Request) -> Response:
        self._backend.delete_design(_key(request.params["id"]), _key(request.params["version"]))
        return Response.empty(200)

    def _download(self, request: Request) -> Response:
        content = self._backend.design_content(_key(request.params["id"]), _key(request.params["version"]))
        return Response(status=200, body=content, content_type="application/zip")

    def _configurations(self, request: Request) -> Response:
        p = request.params
        return Response.json({"d": {"results": self._backend.configurations(_key(p["id"]), _key(p["version"]))}})

    def _set_configuration(self, request: Request) -> Response:
        p = request.params
        self._backend.set_configuration(_key(p["id"]), _key(p["version"]), _key(p["key"]), _json_body(request))
        return Response.empty(202)

    def _deploy(self, request: Request) -> Response:
        artifact_id = _quoted_arg(request, "Id")
        version = _quoted_arg(request, "Version", "active")
        task_id = self._backend.deploy(artifact_id, version)
        return Response(status=202, body=task_id.encode(), content_type="text/plain;charset=utf-8")

    def _build_status(self, request: Request) -> Response:
        task_id = _key(request.params["task"])
        uri = f"{self._base(request)}/BuildAndDeployStatus(TaskId='{task_id}')"
        meta = {"id": uri, "uri": uri, "type": "com.sap.hci.api.BuildAndDeployStatus"}
        return Response.json(
            {"d": {"__metadata": meta, "TaskId": task_id, "Status": self._backend.build_status(task_id)}}
        )

    def _runtime_list(self, request: Request) -> Response:
        return Response.json({"d": {"results": self._backend.runtime_list(self._base(request))}})

    def _runtime(self, request: Request) -> Response:
        return Response.json({"d": self._backend.runtime_json(_key(request.params["id"]), self._base(request))})

    def _undeploy(self, request: Request) -> Response:
        self._backend.undeploy(_key(request.params["id"]))
        return Response.empty(202)

    def _runtime_error(self, request: Request) -> Response:
        error = self._backend.runtime_error(_key(request.params["id"]))
        if error is None:
            return Response.empty(204)
        return Response(status=200, body=json.dumps(error).encode(), content_type="application/json")

    def _endpoints(self, request: Request) -> Response:
        items = self._backend.endpoints(f"{request.base_url}{PREFIX}")
        if "EntryPoints" not in (request.arg("$expand") or ""):
            for item in items:
                item["EntryPoints"] = {
                    "__deferred": {"uri": f"{self._base(request)}/ServiceEndpoints('{item['Id']}')/EntryPoints"}
                }
        text = request.arg("$filter")
        if text:
            tree = parse_filter(text)
            if tree[0] in ("and", "or") or tree[0] != "Name" or tree[1] != "eq":
                raise CpiError(400, "ServiceEndpoints supports only $filter=Name eq '...'.")
            items = [item for item in items if item["Name"] == tree[2]]
        return Response.json({"d": {"results": items}})

    def _messages(self, request: Request) -> Response:
        base = self._base(request)
        records = []
        for message, now in self._backend.visible_messages():
            doc = self._backend.message_json(message, base, now)
            records.append((doc, _record(message, doc, self._backend, now)))
        text = request.arg("$filter")
        if text:
            tree = parse_filter(text)
            records = [pair for pair in records if matches(tree, pair[1])]
        orderby = request.arg("$orderby")
        if orderby is not None:
            if orderby not in ORDERBY:
                raise CpiError(400, f"$orderby {orderby!r} is not supported; use one of {', '.join(sorted(ORDERBY))}.")
            for part in reversed(orderby.split(",")):
                name, _, direction = part.partition(" ")
                records.sort(
                    key=lambda pair, n=name: (pair[1].get(n) is None, pair[1].get(n) or 0), reverse=direction == "desc"
                )
        skip = _int(request, "$skip", 0) + _int(request, "$skiptoken", 0)
        top = _int(request, "$top", None)
        selected = records[skip:]
        if top is not None:
            selected = selected[: max(top - _int(request, "$skiptoken", 0), 0)]
        page = selected[:PAGE_SIZE]
        body: dict[str, Any] = {"results": [doc for doc, _ in page]}
        if request.arg("$inlinecount") == "allpages":
            body["__count"] = str(len(records))
        if len(selected) > PAGE_SIZE:
            query = {k: v[-1] for k, v in request.query.items() if k not in ("$skiptoken",)}
            query["$skiptoken"] = str(_int(request, "$skiptoken", 0) + PAGE_SIZE)
            body["__next"] = f"{base}/MessageProcessingLogs?{urlencode(query, quote_via=quote, safe=_LINK_SAFE)}"
        return Response.json({"d": body})

    def _message(self, request: Request) -> Response:
        message, now = self._backend.get_message(_key(request.params["guid"]))
        return Response.json({"d": self._backend.message_json(message, self._base(request), now)})

    def _message_error(self, request: Request) -> Response:
        text = self._backend.message_error(_key(request.params["guid"]))
        if not text:
            return Response.empty(204)
        return Response(status=200, body=text.encode(), content_type="text/plain;charset=utf-8")

    # -- flow endpoints ---------------------------------------------------------------------------

    def _call_flow(self, request: Request) -> Response:
        path = request.path[len(HTTP_PREFIX) :]
        received = request.body.read_all(limit=64 * 1024 * 1024)
        message, config = self._backend.call_flow(path, request.header("SAP_MplCorrelationId") or None)
        headers = {"SAP_MessageProcessingLogID": message.guid, "SAP_MplCorrelationId": message.correlation_id}
        if config.drop_answers:
            return Response(status=0, drop=True)
        if message.outcome == "SYNC_500":
            return Response(
                status=500,
                body=(message.error or "Internal Server Error").encode(),
                content_type="text/plain;charset=utf-8",
                headers=headers,
            )
        body = (
            config.response_body
            if config.response_body is not None
            else json.dumps({"received_bytes": len(received), "message": message.guid, "status": "accepted"})
        )
        return Response(status=200, body=body.encode(), content_type="application/json", headers=headers)

    # -- control API ------------------------------------------------------------------------------

    def _control_deploy(self, request: Request) -> Response:
        body = dict(request.json())
        artifact_id = str(body.pop("artifact_id", ""))
        try:
            config = self._backend.configure_deploy(artifact_id, **body)
        except (TypeError, ValueError) as exc:
            return Response.json({"error": str(exc)}, status=400)
        return Response.json({"artifact_id": artifact_id, "config": asdict(config)})

    def _control_flow(self, request: Request) -> Response:
        body = dict(request.json())
        artifact_id = str(body.pop("artifact_id", ""))
        try:
            config = self._backend.configure_flow(artifact_id, **body)
        except (TypeError, ValueError) as exc:
            return Response.json({"error": str(exc)}, status=400)
        return Response.json({"artifact_id": artifact_id, "config": asdict(config)})

    def _control_csrf(self, request: Request) -> Response:
        body = request.json(required=False) or {}
        if "enforce_for_bearer" in body:
            self._backend.csrf_for_bearer = bool(body["enforce_for_bearer"])
        invalidated = self._backend.invalidate_csrf() if body.get("invalidate") else 0
        return Response.json({"enforce_for_bearer": self._backend.csrf_for_bearer, "invalidated": invalidated})

    def _control_rate_limit(self, request: Request) -> Response:
        body = request.json()
        self._backend.rate_limit_left = int(body.get("count", 1))
        self._backend.rate_limit_retry_after = int(body.get("retry_after", 1))
        return Response.json({"count": self._backend.rate_limit_left})

    def _control_expire(self, request: Request) -> Response:
        return Response.json({"expired": self._backend.expire_tokens()})

    def _control_messages(self, request: Request) -> Response:
        body = request.json()
        guids = self._backend.add_messages(
            str(body["artifact_id"]),
            int(body.get("count", 1)),
            str(body.get("status", "COMPLETED")),
            body.get("correlation_id"),
        )
        return Response.json({"created": len(guids), "first": guids[0] if guids else None})

    def _control_state(self, request: Request) -> Response:
        return Response.json(self._backend.inspect())


def sandbox_extra(base_url: str) -> dict[str, Any]:
    """The connection extra (both plans' keys) that points a hook at a sandbox at ``base_url``."""
    url = f"{base_url}{PREFIX}"
    token_url = f"{base_url}{OAUTH_PREFIX}/token"
    return {
        "service_key": {
            "oauth": {"clientid": API_CLIENT_ID, "clientsecret": API_CLIENT_SECRET, "url": url, "tokenurl": token_url}
        },
        "runtime_service_key": {
            "oauth": {"clientid": FLOW_CLIENT_ID, "clientsecret": FLOW_CLIENT_SECRET, "url": url, "tokenurl": token_url}
        },
    }


def _wants_json(request: Request) -> bool:
    """OData answers Atom XML unless JSON is asked for (writes and ``$value`` media are exempt)."""
    if request.method != "GET" or request.path.endswith("/$value"):
        return True
    return (request.arg("$format") or "").lower() == "json" or "json" in request.header("Accept").lower()


def _cookie(request: Request, name: str) -> str | None:
    for part in request.header("Cookie").split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None


def _json_body(request: Request) -> Any:
    try:
        return request.json()
    except HttpError as exc:
        raise CpiError(400, "The request body must be JSON.") from exc


def _quoted_arg(request: Request, name: str, default: str | None = None) -> str:
    raw = request.arg(name, default)
    if raw is None:
        raise CpiError(400, f"Parameter {name} is required.")
    if raw != default and not (len(raw) >= 2 and raw[0] == raw[-1] == "'"):
        raise CpiError(400, f"Parameter {name} must be a quoted string literal, e.g. {name}='value'.")
    return _key(raw.strip("'")) if raw != default else raw


def _int(request: Request, name: str, default: int | None) -> Any:
    raw = request.arg(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise CpiError(400, f"{name} must be a non-negative integer.") from None
    if value < 0:
        raise CpiError(400, f"{name} must be a non-negative integer.")
    return value


__all__ = [
    "API_PREFIX",
    "CONTROL_PREFIX",
    "HTTP_PREFIX",
    "OAUTH_PREFIX",
    "PREFIX",
    "SapCloudIntegrationPlatform",
    "sandbox_extra",
]
