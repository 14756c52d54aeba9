"""SAP Cloud Integration hook, operators, sensor and triggers with mocked HTTP (requests-mock)."""

from __future__ import annotations

import asyncio
import base64
import json
import re
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import requests

from airflow_provider_sapplan._compat import TaskDeferred
from airflow_provider_sapplan.exceptions import (
    ConnectionConfigError,
    InvalidRequestError,
    NetworkError,
    PermissionDeniedError,
    ServiceUnavailableError,
)
from airflow_provider_sapplan.hooks.sap_cloud_integration import (
    SapCloudIntegrationHook,
    deploy_error_text,
    message_query,
    parse_task_id,
)
from airflow_provider_sapplan.jobs.sap_cloud_integration import (
    CloudIntegrationDeployError,
    CloudIntegrationMessageFailedError,
    correlation_id,
)
from airflow_provider_sapplan.operators.sap_cloud_integration import (
    SapCloudIntegrationDeployOperator,
    SapCloudIntegrationTriggerFlowOperator,
    SapCloudIntegrationUndeployOperator,
    SapCloudIntegrationUpdateConfigurationOperator,
    SapCloudIntegrationUploadArtifactOperator,
)
from airflow_provider_sapplan.sensors.sap_cloud_integration import SapCloudIntegrationMessageSensor
from airflow_provider_sapplan.triggers.sap_cloud_integration import (
    SapCloudIntegrationDeployTrigger,
    SapCloudIntegrationMessageTrigger,
)
from tests.conftest import set_connection

TENANT = "https://acme.it-cpi018.cfapps.eu10.hana.ondemand.com"
RUNTIME = "https://acme.it-cpi018-rt.cfapps.eu10.hana.ondemand.com"
API = f"{TENANT}/api/v1"
TOKEN_URL = "https://acme.authentication.eu10.hana.ondemand.com/oauth/token"
FLOW_TOKEN_URL = "https://acme.authentication.eu10.hana.ondemand.com/oauth/token?plan=flow"
API_KEY = {"oauth": {"clientid": "sb-api", "clientsecret": "api-secret", "url": TENANT, "tokenurl": TOKEN_URL}}
FLOW_KEY = {"oauth": {"clientid": "sb-flow", "clientsecret": "flow-secret", "url": RUNTIME, "tokenurl": FLOW_TOKEN_URL}}
RUNTIME_ART = f"{API}/IntegrationRuntimeArtifacts('Orders')"
BUILD = f"{API}/BuildAndDeployStatus(TaskId='task-1')"
MPL = f"{API}/MessageProcessingLogs"
GUID = "AFq478Bblxi4wCjBcDb_G0vAGGZG"


def message(status: str, guid: str = GUID, correlation: str = "cid", **extra: Any) -> dict[str, Any]:
    return {
        "MessageGuid": guid,
        "CorrelationId": correlation,
        "Status": status,
        "LogStart": "/Date(1522069440003)/",
        "LogEnd": "/Date(1522069440200)/",
        "IntegrationArtifact": {"Id": "Orders", "Type": "INTEGRATION_FLOW"},
        "AlternateWebLink": f"https://acme/itspaces/shell/monitoring/MessageDetails/{guid}",
        **extra,
    }


def runtime(status: str) -> dict[str, Any]:
    return {"d": {"Id": "Orders", "Version": "1.0.3", "Status": status, "DeployedBy": "sb-api",
                  "DeployedOn": "/Date(1521463557739)/", "Type": "INTEGRATION_FLOW"}}  # fmt: skip


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    recorded: list[float] = []
    monkeypatch.setattr("airflow_provider_sapplan.core.http.time.sleep", recorded.append)
    monkeypatch.setattr("airflow_provider_sapplan.core.operator.time.sleep", recorded.append)
    return recorded


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch, requests_mock: Any) -> Any:
    set_connection(
        monkeypatch,
        "sap_cloud_integration_default",
        conn_type="sap_cloud_integration",
        extra={"service_key": API_KEY, "runtime_service_key": FLOW_KEY},
    )
    requests_mock.post(TOKEN_URL, json={"access_token": "api-token", "expires_in": 4199})
    requests_mock.post(FLOW_TOKEN_URL, json={"access_token": "flow-token", "expires_in": 4199})
    requests_mock.get(f"{API}/", headers={"X-CSRF-Token": "csrf-1"}, cookies={"JSESSIONID": "s1"}, json={})
    return requests_mock


def ti_mock(try_number: int = 1) -> mock.MagicMock:
    ti = mock.MagicMock()
    ti.dag_id, ti.task_id, ti.run_id, ti.map_index, ti.try_number = "dag", "call", "run-1", -1, try_number
    ti.xcom_pull.return_value = None
    return ti


@pytest.fixture
def context() -> dict[str, Any]:
    return {"ti": ti_mock()}


def flow_calls(api: Any) -> list[Any]:
    return [r for r in api.request_history if r.url.startswith(RUNTIME)]


# -- connection, tokens, CSRF -----------------------------------------------------------------------


def test_two_plans_two_tokens_each_on_its_side(api: Any) -> None:
    api.get(f"{API}/IntegrationRuntimeArtifacts", json={"d": {"results": [{"Id": "Orders"}]}})
    api.post(f"{RUNTIME}/http/orders", text="ok", headers={"SAP_MessageProcessingLogID": GUID})
    hook = SapCloudIntegrationHook()
    assert hook.test_connection() == (
        True,
        "Connected to SAP Cloud Integration; 1 runtime artifact(s) on the first page.",
    )
    hook.call_flow("/http/orders", body=b"x").close()
    SapCloudIntegrationHook().check_connection()  # a second hook reuses the cached api token
    SapCloudIntegrationHook().call_flow("/http/orders", body=b"y").close()
    tokens = [r for r in api.request_history if "oauth/token" in r.url]
    assert [r.url for r in tokens] == [TOKEN_URL, FLOW_TOKEN_URL]
    assert tokens[0].headers["Authorization"] == "Basic " + base64.b64encode(b"sb-api:api-secret").decode()
    assert tokens[1].headers["Authorization"] == "Basic " + base64.b64encode(b"sb-flow:flow-secret").decode()
    assert {r.headers["Authorization"] for r in api.request_history if r.url.startswith(API)} == {"Bearer api-token"}
    assert {r.headers["Authorization"] for r in flow_calls(api)} == {"Bearer flow-token"}


def test_basic_auth_fallback_serves_api_and_derived_runtime_host(
    monkeypatch: pytest.MonkeyPatch, requests_mock: Any
) -> None:
    set_connection(monkeypatch, "cpi_basic", conn_type="sap_cloud_integration", host=TENANT, login="u", password="p")
    requests_mock.get(f"{API}/IntegrationRuntimeArtifacts", json={"d": {"results": []}})
    requests_mock.post(f"{RUNTIME}/http/orders", text="ok")
    hook = SapCloudIntegrationHook("cpi_basic")
    hook.check_connection()
    hook.call_flow("/http/orders").close()
    expected = "Basic " + base64.b64encode(b"u:p").decode()
    assert all(r.headers["Authorization"] == expected for r in requests_mock.request_history)
    assert not [r for r in requests_mock.request_history if "oauth" in r.url]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({}, "no service_key extra"),
        ({"service_key": {"url": TENANT}}, "no 'oauth' section"),
        ({"service_key": {"oauth": {"clientid": "a", "clientsecret": "b", "url": TENANT}}}, "oauth.tokenurl"),
        ({"service_key": "{not json"}, "not valid JSON"),
    ],
)
def test_connection_errors_name_the_fix(monkeypatch: pytest.MonkeyPatch, extra: dict[str, Any], message: str) -> None:
    set_connection(monkeypatch, "cpi_bad", conn_type="sap_cloud_integration", extra=extra)
    with pytest.raises(ConnectionConfigError, match=message):
        SapCloudIntegrationHook("cpi_bad").get_conn()


def test_api_key_without_runtime_key_cannot_call_flows(monkeypatch: pytest.MonkeyPatch) -> None:
    set_connection(monkeypatch, "cpi_api", conn_type="sap_cloud_integration", extra={"service_key": API_KEY})
    with pytest.raises(ConnectionConfigError, match="integration-flow"):
        SapCloudIntegrationHook("cpi_api").call_flow("/http/x")


def test_cache_keys_differ_per_plan_and_hold_no_secret(api: Any) -> None:
    hook = SapCloudIntegrationHook()
    api_key = hook.get_conn().config.auth.cache_key  # type: ignore[union-attr]
    flow_key = hook.runtime_client.config.auth.cache_key  # type: ignore[union-attr]
    assert api_key != flow_key and "api-secret" not in api_key and "flow-secret" not in flow_key
    assert "secret" not in repr(hook.get_conn().config)


def test_csrf_fetched_once_with_cookies_and_refetched_once_on_required(api: Any) -> None:
    path = f"{API}/IntegrationDesigntimeArtifacts(Id='Orders',Version='active')/Configurations('Host')"
    api.get(
        f"{API}/",
        [
            {"json": {}, "headers": {"X-CSRF-Token": "csrf-1"}, "cookies": {"JSESSIONID": "s1"}},
            {"json": {}, "headers": {"X-CSRF-Token": "csrf-2"}, "cookies": {"JSESSIONID": "s2"}},
        ],
    )
    api.put(
        path,
        [
            {"status_code": 202},
            {"status_code": 403, "headers": {"X-CSRF-Token": "Required"}, "text": "CSRF token validation failed"},
            {"status_code": 202},
        ],
    )
    hook = SapCloudIntegrationHook()
    hook.update_configuration("Orders", "Host", "a")
    hook.update_configuration("Orders", "Host", "b")
    fetches = [r for r in api.request_history if r.url == f"{API}/"]
    assert len(fetches) == 2 and fetches[0].headers["X-CSRF-Token"] == "Fetch"
    writes = [r for r in api.request_history if r.method == "PUT"]
    assert [w.headers["X-CSRF-Token"] for w in writes] == ["csrf-1", "csrf-1", "csrf-2"]
    # requests-mock does not fill the session's cookie jar: tests/sandbox checks the session cookie.
    assert writes[2].json() == {"ParameterValue": "b", "DataType": "xsd:string"}


def test_csrf_refetch_happens_once_then_the_403_surfaces(api: Any) -> None:
    api.delete(RUNTIME_ART, status_code=403, headers={"X-CSRF-Token": "Required"}, text="CSRF token validation failed")
    with pytest.raises(PermissionDeniedError, match="CSRF token validation failed"):
        SapCloudIntegrationHook().undeploy("Orders")
    assert len([r for r in api.request_history if r.url == f"{API}/"]) == 2
    assert len([r for r in api.request_history if r.method == "DELETE"]) == 2


def test_form_and_ui_behaviour() -> None:
    pytest.importorskip("flask_appbuilder")
    widgets = SapCloudIntegrationHook.get_connection_form_widgets()
    assert set(widgets) == {"service_key", "runtime_service_key", "runtime_url", "web_ui_url", "timeout"}
    behaviour = SapCloudIntegrationHook.get_ui_field_behaviour()
    assert set(behaviour) == {"hidden_fields", "relabeling", "placeholders"}


# -- small parsers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "task"),
    [("  3b1e4f\n", "3b1e4f"), ('"3b1e4f"', "3b1e4f"), ('{"d": {"TaskId": "3b1e4f"}}', "3b1e4f")],
)
def test_parse_task_id(body: str, task: str) -> None:
    assert parse_task_id(body) == task


def test_parse_task_id_rejects_an_html_page() -> None:
    with pytest.raises(InvalidRequestError, match="no task id"):
        parse_task_id("<html>login</html>")


def test_deploy_error_text_unpacks_parameter_json_strings() -> None:
    inner = {"message": "ERROR", "childMessageInstances": [{"subsystemName": "X", "messageText": "Receiver unknown"}]}
    head = {"subsytemPartName": "CONTENT_DEPLOY", "messageId": "InstanceError", "messageText": ""}
    raw = json.dumps({"message": head, "parameter": [json.dumps(inner)]})
    assert deploy_error_text(raw) == "InstanceError; Receiver unknown"
    assert deploy_error_text("plain\n text") == "plain text"


def test_message_query_uses_utc_literals_and_excludes_discarded() -> None:
    params = message_query(artifact_id="Orders", started_after="2026-01-31T09:00:00+01:00", top=1)
    assert params["$filter"] == (
        "IntegrationArtifact/Id eq 'Orders' and Status ne 'DISCARDED' and LogStart gt datetime'2026-01-31T08:00:00'"
    )
    assert params["$orderby"] == "LogStart desc" and params["$top"] == "1"


# -- upload and configuration ---------------------------------------------------------------------


def test_upload_creates_then_updates(api: Any, tmp_path: Path, context: dict[str, Any]) -> None:
    design = f"{API}/IntegrationDesigntimeArtifacts(Id='Orders',Version='active')"
    zip_path = tmp_path / "orders.zip"
    zip_path.write_bytes(b"PK\x03\x04rest-of-zip")
    api.get(design, [{"status_code": 404, "json": {}}, {"json": {"d": {"Id": "Orders", "Version": "1.0.0"}}}])
    api.post(f"{API}/IntegrationDesigntimeArtifacts", status_code=201, json={"d": {"Id": "Orders", "Version": "1.0.0"}})
    api.put(design, status_code=202)
    op = SapCloudIntegrationUploadArtifactOperator(
        task_id="up", artifact_id="Orders", package_id="Pkg", source=str(zip_path)
    )
    assert op.execute(context)["created"] is True
    assert op.execute(context)["created"] is False
    post = next(r for r in api.request_history if r.method == "POST" and "Designtime" in r.url).json()
    assert post == {"Name": "Orders", "Id": "Orders", "PackageId": "Pkg",
                    "ArtifactContent": base64.b64encode(b"PK\x03\x04rest-of-zip").decode()}  # fmt: skip
    assert [r.method for r in api.request_history if "Designtime" in r.url].count("PUT") == 1


def test_upload_rejects_a_non_zip(api: Any, tmp_path: Path, context: dict[str, Any]) -> None:
    (tmp_path / "x.zip").write_text("hello")
    op = SapCloudIntegrationUploadArtifactOperator(
        task_id="up", artifact_id="O", package_id="P", source=str(tmp_path / "x.zip")
    )
    with pytest.raises(InvalidRequestError, match="not a zip"):
        op.execute(context)
    assert not api.request_history


def test_unknown_parameter_fails_before_any_write(api: Any, context: dict[str, Any]) -> None:
    api.get(
        f"{API}/IntegrationDesigntimeArtifacts(Id='Orders',Version='active')/Configurations",
        json={"d": {"results": [{"ParameterKey": "Host", "ParameterValue": "a", "DataType": "xsd:string"},
                                {"ParameterKey": "Size", "ParameterValue": "1", "DataType": "xsd:integer"}]}},
    )  # fmt: skip
    op = SapCloudIntegrationUpdateConfigurationOperator(
        task_id="c", artifact_id="Orders", parameters={"Host": "b", "Hots": "c"}
    )
    with pytest.raises(InvalidRequestError, match="'Hots'; known: 'Host', 'Size'"):
        op.execute(context)
    assert not [r for r in api.request_history if r.method == "PUT"]


def test_configuration_keeps_the_parameter_data_type(api: Any, context: dict[str, Any]) -> None:
    base = f"{API}/IntegrationDesigntimeArtifacts(Id='Orders',Version='active')/Configurations"
    api.get(base, json={"d": {"results": [{"ParameterKey": "Size", "ParameterValue": "1", "DataType": "xsd:integer"}]}})
    api.put(f"{base}('Size')", status_code=202)
    assert SapCloudIntegrationUpdateConfigurationOperator(
        task_id="c", artifact_id="Orders", parameters={"Size": 250}
    ).execute(context) == {"Size": 250}
    put = next(r for r in api.request_history if r.method == "PUT")
    assert put.json() == {"ParameterValue": "250", "DataType": "xsd:integer"}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"artifact_id": ""}, "artifact_id must be a non-empty string"),
        ({"artifact_id": "A", "not_found_grace": -1}, "not_found_grace"),
    ],
)
def test_deploy_arguments_checked(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SapCloudIntegrationDeployOperator(task_id="d", **kwargs)


# -- deploy ------------------------------------------------------------------------------------------


def _deploy_endpoint(api: Any) -> None:
    api.post(
        f"{API}/DeployIntegrationDesigntimeArtifact",
        status_code=202,
        text="task-1",
        headers={"Content-Type": "text/plain"},
    )


def test_deploy_waits_build_then_404_then_starting_then_started(api: Any, context: dict[str, Any]) -> None:
    _deploy_endpoint(api)
    api.get(BUILD, [{"json": {"d": {"TaskId": "task-1", "Status": "Deploying"}}},
                    {"json": {"d": {"TaskId": "task-1", "Status": "Success"}}}])  # fmt: skip
    api.get(RUNTIME_ART, [{"status_code": 404, "json": {"error": {"message": {"value": "not deployed"}}}},
                          {"json": runtime("STARTING")}, {"json": runtime("STARTED")}])  # fmt: skip
    result = SapCloudIntegrationDeployOperator(task_id="d", artifact_id="Orders", deferrable=False).execute(context)
    assert result["Status"] == "STARTED" and result["Version"] == "1.0.3" and result["task_id"] == "task-1"
    assert result["DeployedOn"] == "2018-03-19T12:45:57.739000+00:00"
    deploy = next(r for r in api.request_history if "DeployIntegration" in r.url)
    assert deploy.qs == {"id": ["'orders'"], "version": ["'active'"]} and deploy.headers["X-CSRF-Token"] == "csrf-1"
    assert len([r for r in api.request_history if r.url == RUNTIME_ART]) >= 3
    context["ti"].xcom_push.assert_any_call(key="sap_cloud_integration_deploy", value=mock.ANY)


def test_deploy_error_waits_for_error_details_then_fails_with_them(api: Any, context: dict[str, Any]) -> None:
    _deploy_endpoint(api)
    api.get(BUILD, json={"d": {"Status": "SUCCESS"}})
    api.get(RUNTIME_ART, json=runtime("ERROR"))
    inner = json.dumps(
        {"message": "ERROR", "childMessageInstances": [{"messageText": "Unable to resolve erp.example.com"}]}
    )
    details = {"message": {"messageId": "InstanceError"}, "parameter": [inner]}
    api.get(f"{RUNTIME_ART}/ErrorInformation/$value", [{"status_code": 204}, {"json": details}])
    with pytest.raises(
        CloudIntegrationDeployError, match=r"runtime:ERROR: InstanceError; Unable to resolve erp\.example\.com"
    ):
        SapCloudIntegrationDeployOperator(task_id="d", artifact_id="Orders", deferrable=False).execute(context)
    assert len([r for r in api.request_history if "ErrorInformation" in r.url]) == 2


def test_deploy_build_fail_fails(api: Any, context: dict[str, Any]) -> None:
    _deploy_endpoint(api)
    api.get(BUILD, json={"d": {"Status": "FAIL"}})
    api.get(f"{RUNTIME_ART}/ErrorInformation/$value", status_code=404, json={})
    with pytest.raises(CloudIntegrationDeployError, match="build:FAIL"):
        SapCloudIntegrationDeployOperator(task_id="d", artifact_id="Orders", deferrable=False).execute(context)


def test_deploy_404_past_the_grace_window_fails(api: Any, context: dict[str, Any]) -> None:
    _deploy_endpoint(api)
    api.get(BUILD, json={"d": {"Status": "SUCCESS"}})
    api.get(RUNTIME_ART, status_code=404, json={})
    op = SapCloudIntegrationDeployOperator(task_id="d", artifact_id="Orders", deferrable=False, not_found_grace=0)
    with pytest.raises(CloudIntegrationDeployError, match="did not appear within 0s"):
        op.execute(context)


def test_deploy_defers_with_ids_only(api: Any, context: dict[str, Any]) -> None:
    _deploy_endpoint(api)
    api.get(BUILD, json={"d": {"Status": "DEPLOYING"}})
    with pytest.raises(TaskDeferred) as deferred:
        SapCloudIntegrationDeployOperator(task_id="d", artifact_id="Orders", deferrable=True).execute(context)
    trigger = deferred.value.trigger
    assert isinstance(trigger, SapCloudIntegrationDeployTrigger)
    kwargs = trigger.serialize()[1]
    assert kwargs["ref"]["task_id"] == "task-1" and kwargs["ref"]["grace_seconds"] == 300.0
    assert (
        kwargs["cancel_on_kill"] is False and "secret" not in json.dumps(kwargs) and "token" not in json.dumps(kwargs)
    )


def test_undeploy_not_deployed_is_fine(api: Any, context: dict[str, Any]) -> None:
    api.delete(RUNTIME_ART, status_code=404, json={})
    api.get(RUNTIME_ART, status_code=404, json={})
    assert (
        SapCloudIntegrationUndeployOperator(task_id="u", artifact_id="Orders", deferrable=False).execute(context)
        is False
    )


def test_undeploy_waits_until_gone(api: Any, context: dict[str, Any]) -> None:
    api.delete(RUNTIME_ART, status_code=202)
    api.get(RUNTIME_ART, [{"json": runtime("STOPPING")}, {"status_code": 404, "json": {}}])
    assert (
        SapCloudIntegrationUndeployOperator(task_id="u", artifact_id="Orders", deferrable=False).execute(context)
        is True
    )
    assert len([r for r in api.request_history if r.url == RUNTIME_ART and r.method == "GET"]) >= 2
    assert len([r for r in api.request_history if r.method == "DELETE"]) == 1


# -- calling a flow ----------------------------------------------------------------------------------


def _flow(api: Any, **kwargs: Any) -> None:
    kwargs.setdefault("headers", {"SAP_MessageProcessingLogID": GUID})
    if "content" not in kwargs:
        kwargs.setdefault("text", '{"ok": true}')
    api.post(f"{RUNTIME}/http/orders", **kwargs)


def test_flow_call_sends_correlation_id_and_returns_the_bounded_body(api: Any, context: dict[str, Any]) -> None:
    _flow(api, text="x" * 5000)
    api.get(f"{MPL}('{GUID}')", [{"json": {"d": message("PROCESSING")}}, {"json": {"d": message("COMPLETED")}}])
    op = SapCloudIntegrationTriggerFlowOperator(
        task_id="call", endpoint_path="/http/orders", data={"a": 1}, max_response_bytes=1000, deferrable=False
    )
    result = op.execute(context)
    call = flow_calls(api)[0]
    assert call.headers["SAP_MplCorrelationId"] == correlation_id(context["ti"], 1)
    assert call.headers["SAP_MplCorrelationId"].endswith("-try1") and len(call.headers["SAP_MplCorrelationId"]) <= 44
    assert call.json() == {"a": 1} and call.headers["Content-Type"] == "application/json"
    assert result["Status"] == "COMPLETED" and result["MessageGuid"] == GUID and result["reconnected"] is False
    assert result["response"]["size"] == 1000 and result["response"]["truncated"] is True
    context["ti"].xcom_push.assert_any_call(key="sap_cloud_integration_url", value=message("X")["AlternateWebLink"])


def test_response_destination_gets_the_whole_answer(api: Any, context: dict[str, Any], tmp_path: Path) -> None:
    _flow(api, content=b"y" * 3_000_000)
    api.get(f"{MPL}('{GUID}')", json={"d": message("COMPLETED")})
    out = tmp_path / "answer.bin"
    op = SapCloudIntegrationTriggerFlowOperator(
        task_id="call", endpoint_path="/http/orders", response_destination=str(out), deferrable=False
    )
    assert op.execute(context)["response"]["size"] == 3_000_000 and out.stat().st_size == 3_000_000


@pytest.mark.parametrize("status", ["FAILED", "ESCALATED", "CANCELLED"])
def test_failed_messages_raise_with_the_error_text(api: Any, context: dict[str, Any], status: str) -> None:
    _flow(api)
    api.get(f"{MPL}('{GUID}')", json={"d": message(status)})
    api.get(
        f"{MPL}('{GUID}')/ErrorInformation/$value",
        text="HTTP 502 from receiver erp",
        headers={"Content-Type": "text/plain"},
    )
    op = SapCloudIntegrationTriggerFlowOperator(task_id="call", endpoint_path="/http/orders", deferrable=False)
    with pytest.raises(CloudIntegrationMessageFailedError, match=f"ended {status}.*HTTP 502 from receiver erp"):
        op.execute(context)


def test_retry_waits_unless_fail_on_retry(api: Any, context: dict[str, Any]) -> None:
    _flow(api)
    api.get(f"{MPL}('{GUID}')", [{"json": {"d": message("RETRY")}}, {"json": {"d": message("COMPLETED")}}])
    op = SapCloudIntegrationTriggerFlowOperator(task_id="call", endpoint_path="/http/orders", deferrable=False)
    assert op.execute(context)["Status"] == "COMPLETED"
    api.get(f"{MPL}('{GUID}')", json={"d": message("RETRY")})
    api.get(f"{MPL}('{GUID}')/ErrorInformation/$value", status_code=204)
    strict = SapCloudIntegrationTriggerFlowOperator(
        task_id="call", endpoint_path="/http/orders", fail_on_retry=True, deferrable=False
    )
    with pytest.raises(CloudIntegrationMessageFailedError, match="ended RETRY \\(fail_on_retry=True\\)"):
        strict.execute({"ti": ti_mock()})


def test_missing_message_waits_within_grace_then_fails(api: Any, context: dict[str, Any]) -> None:
    _flow(api)
    api.get(f"{MPL}('{GUID}')", [{"status_code": 404, "text": "Message processing log not found"},
                                 {"json": {"d": message("COMPLETED")}}])  # fmt: skip
    assert (
        SapCloudIntegrationTriggerFlowOperator(task_id="call", endpoint_path="/http/orders", deferrable=False).execute(
            context
        )["Status"]
        == "COMPLETED"
    )
    api.get(f"{MPL}('{GUID}')", status_code=404, text="not found")
    op = SapCloudIntegrationTriggerFlowOperator(
        task_id="call", endpoint_path="/http/orders", deferrable=False, not_found_grace=0
    )
    with pytest.raises(CloudIntegrationMessageFailedError, match="did not appear within the grace window"):
        op.execute({"ti": ti_mock()})


def test_discarded_message_is_followed_to_its_restart(api: Any, context: dict[str, Any]) -> None:
    _flow(api)
    api.get(f"{MPL}('{GUID}')", json={"d": message("DISCARDED", correlation="c-7")})
    api.get(MPL, json={"d": {"results": [message("COMPLETED", guid="NEWER", correlation="c-7")]}})
    result = SapCloudIntegrationTriggerFlowOperator(
        task_id="call", endpoint_path="/http/orders", deferrable=False
    ).execute(context)
    assert result["MessageGuid"] == "NEWER" and result["FollowedFrom"] == GUID
    query = next(r for r in api.request_history if r.url.startswith(MPL + "?"))
    assert query.qs["$filter"] == ["correlationid eq 'c-7' and status ne 'discarded'"]


@pytest.mark.parametrize(
    "failure",
    [
        requests.exceptions.ReadTimeout("read timed out"),
        requests.exceptions.ConnectionError("connection reset by peer"),
    ],
)
def test_a_sent_call_is_never_repeated(api: Any, context: dict[str, Any], failure: Exception) -> None:
    api.post(f"{RUNTIME}/http/orders", exc=failure)
    op = SapCloudIntegrationTriggerFlowOperator(task_id="call", endpoint_path="/http/orders", deferrable=False)
    with pytest.raises(NetworkError):
        op.execute(context)
    assert len(flow_calls(api)) == 1


def test_refusals_before_processing_are_retried(api: Any, context: dict[str, Any]) -> None:
    api.post(f"{RUNTIME}/http/orders", [
        {"exc": requests.exceptions.ConnectionError("NewConnectionError: Connection refused")},
        {"status_code": 429, "text": "slow down", "headers": {"Retry-After": "1"}},
        {"status_code": 503, "text": "unavailable"},
        {"text": "ok", "headers": {"SAP_MessageProcessingLogID": GUID}},
    ])  # fmt: skip
    api.get(f"{MPL}('{GUID}')", json={"d": message("COMPLETED")})
    SapCloudIntegrationTriggerFlowOperator(task_id="call", endpoint_path="/http/orders", deferrable=False).execute(
        context
    )
    assert len(flow_calls(api)) == 4


def test_500_with_a_message_is_a_failed_message(api: Any, context: dict[str, Any]) -> None:
    _flow(api, status_code=500, text="Internal error in mapping")
    api.get(MPL, json={"d": {"results": [message("FAILED")]}})
    api.get(f"{MPL}('{GUID}')", json={"d": message("FAILED")})
    api.get(f"{MPL}('{GUID}')/ErrorInformation/$value", text="Mapping failed: field Qty missing")
    op = SapCloudIntegrationTriggerFlowOperator(task_id="call", endpoint_path="/http/orders", deferrable=False)
    with pytest.raises(CloudIntegrationMessageFailedError, match="Mapping failed: field Qty missing"):
        op.execute(context)
    assert len(flow_calls(api)) == 1


def test_500_without_a_message_is_a_transport_error(api: Any, context: dict[str, Any]) -> None:
    _flow(api, status_code=500, text="router down", headers={})
    api.get(MPL, json={"d": {"results": []}})
    with pytest.raises(ServiceUnavailableError, match="router down"):
        SapCloudIntegrationTriggerFlowOperator(task_id="call", endpoint_path="/http/orders", deferrable=False).execute(
            context
        )
    assert len(flow_calls(api)) == 1


def test_retry_reconnects_to_the_first_tries_message_exactly_one_call(api: Any) -> None:
    """Try 1's answer is lost after CPI processed the call; try 2 waits on that message instead."""
    api.post(f"{RUNTIME}/http/orders", exc=requests.exceptions.ReadTimeout("answer lost"))
    op = SapCloudIntegrationTriggerFlowOperator(task_id="call", endpoint_path="/http/orders", deferrable=False)
    with pytest.raises(NetworkError):
        op.execute({"ti": ti_mock(1)})
    first_cid = correlation_id(ti_mock(1), 1)
    api.get(MPL, json={"d": {"results": [message("PROCESSING", correlation=first_cid)]}})
    api.get(f"{MPL}('{GUID}')", json={"d": message("COMPLETED", correlation=first_cid)})
    retry = SapCloudIntegrationTriggerFlowOperator(task_id="call", endpoint_path="/http/orders", deferrable=False)
    result = retry.execute({"ti": ti_mock(2)})
    assert result["reconnected"] is True and result["Status"] == "COMPLETED" and result["response"] is None
    assert len(flow_calls(api)) == 1
    lookup = next(r for r in api.request_history if r.url.startswith(MPL + "?"))
    assert f"correlationid eq '{first_cid.lower()}'" in lookup.qs["$filter"][0]


def test_retry_calls_again_when_the_earlier_message_failed(api: Any) -> None:
    first_cid = correlation_id(ti_mock(1), 1)
    api.get(MPL, json={"d": {"results": [message("FAILED", guid="OLD", correlation=first_cid)]}})
    _flow(api)
    api.get(f"{MPL}('{GUID}')", json={"d": message("COMPLETED")})
    result = SapCloudIntegrationTriggerFlowOperator(
        task_id="call", endpoint_path="/http/orders", deferrable=False
    ).execute({"ti": ti_mock(2)})
    assert result["reconnected"] is False and len(flow_calls(api)) == 1
    assert flow_calls(api)[0].headers["SAP_MplCorrelationId"].endswith("-try2")


def test_endpoint_resolved_from_service_endpoints(api: Any, context: dict[str, Any]) -> None:
    api.get(f"{API}/ServiceEndpoints", json={"d": {"results": [{"Name": "Orders", "Id": "Orders$endpointAddress=orders",
            "EntryPoints": {"results": [{"Url": f"{RUNTIME}/http/orders", "Type": "PROD"}]}}]}})  # fmt: skip
    _flow(api)
    api.get(f"{MPL}('{GUID}')", json={"d": message("COMPLETED")})
    SapCloudIntegrationTriggerFlowOperator(task_id="call", artifact_id="Orders", deferrable=False).execute(context)
    assert flow_calls(api)[0].url == f"{RUNTIME}/http/orders"
    lookup = next(r for r in api.request_history if "ServiceEndpoints" in r.url)
    assert lookup.qs["$filter"] == ["name eq 'orders'"] and lookup.qs["$expand"] == ["entrypoints"]


def test_x509_key_uses_the_certificate_at_the_cert_url(monkeypatch: pytest.MonkeyPatch, requests_mock: Any) -> None:
    key = {"oauth": {"clientid": "sb-x509", "url": TENANT, "certurl": "https://acme.authentication.cert.test",
                     "certificate": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----",
                     "key": "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----"}}  # fmt: skip
    set_connection(monkeypatch, "cpi_x509", conn_type="sap_cloud_integration", extra={"service_key": key})
    requests_mock.post(
        "https://acme.authentication.cert.test/oauth/token", json={"access_token": "x", "expires_in": 60}
    )
    requests_mock.get(f"{API}/IntegrationRuntimeArtifacts", json={"d": {"results": []}})
    SapCloudIntegrationHook("cpi_x509").check_connection()
    token_call = requests_mock.request_history[0]
    assert (
        "Authorization" not in token_call.headers
        and token_call.text == "grant_type=client_credentials&client_id=sb-x509"
    )
    assert requests_mock.request_history[1].headers["Authorization"] == "Bearer x"


def test_flow_defers_pushes_response_and_finishes_from_the_event(api: Any, context: dict[str, Any]) -> None:
    _flow(api)
    api.get(f"{MPL}('{GUID}')", json={"d": message("PROCESSING")})
    op = SapCloudIntegrationTriggerFlowOperator(task_id="call", endpoint_path="/http/orders", deferrable=True)
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context)
    assert isinstance(deferred.value.trigger, SapCloudIntegrationMessageTrigger)
    pushed = {c.kwargs["key"]: c.kwargs["value"] for c in context["ti"].xcom_push.call_args_list}
    assert pushed["response"]["body"] == '{"ok": true}'
    assert pushed["sap_cloud_integration_url"].endswith(
        "MessageDetails/%7B%22messageGuid%22%3A%20%22" + GUID + "%22%7D"
    )
    context["ti"].xcom_pull.return_value = pushed["response"]
    fresh = SapCloudIntegrationTriggerFlowOperator(task_id="call", endpoint_path="/http/orders", deferrable=True)
    event = {
        "status": "success",
        "ref": deferred.value.trigger.ref,
        "result": {"Status": "COMPLETED", "MessageGuid": GUID},
    }
    assert fresh.execute_complete(context, event)["response"]["body"] == '{"ok": true}'


def test_on_kill_only_logs(api: Any, context: dict[str, Any]) -> None:
    op = SapCloudIntegrationTriggerFlowOperator(task_id="call", endpoint_path="/http/orders")
    op._ref = {"message_guid": GUID}
    op.on_kill()
    assert not api.request_history


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "exactly one of endpoint_path"),
        ({"endpoint_path": "/orders"}, "must be the flow's runtime path starting with '/http/'"),
        ({"endpoint_path": "/http/x", "method": "FETCH"}, "method must be one of"),
        ({"endpoint_path": "/http/x", "headers": {"a": 1}}, "headers must be a dict of strings"),
        ({"endpoint_path": "/http/x", "data": "/no/such/file", "data_is_path": True}, "does not exist"),
    ],
)
def test_flow_arguments_checked(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SapCloudIntegrationTriggerFlowOperator(task_id="call", **kwargs)


# -- sensor and triggers -------------------------------------------------------------------------------


def test_sensor_follows_the_newest_message_after_the_data_interval(api: Any) -> None:
    from datetime import datetime, timedelta, timezone

    api.get(MPL, [{"json": {"d": {"results": []}}}, {"json": {"d": {"results": [message("COMPLETED")]}}}])
    sensor = SapCloudIntegrationMessageSensor(task_id="s", artifact_id="Orders", poke_interval=5, deferrable=False)
    start = datetime(2026, 1, 31, 9, tzinfo=timezone(timedelta(hours=1)))
    assert sensor.execute({"ti": ti_mock(), "data_interval_start": start})["MessageGuid"] == GUID
    assert api.request_history[-1].qs["$filter"] == [
        "integrationartifact/id eq 'orders' and status ne 'discarded' and logstart gt datetime'2026-01-31t08:00:00'"
    ]


def test_sensor_arguments_checked() -> None:
    with pytest.raises(ValueError, match="Give message_guid"):
        SapCloudIntegrationMessageSensor(task_id="s")
    with pytest.raises(ValueError, match="ISO-8601"):
        SapCloudIntegrationMessageSensor(task_id="s", artifact_id="A", started_after="last tuesday")


def test_sensor_fails_on_failed_message(api: Any) -> None:
    api.get(f"{MPL}('{GUID}')", json={"d": message("ESCALATED")})
    api.get(f"{MPL}('{GUID}')/ErrorInformation/$value", text="No receiver")
    with pytest.raises(CloudIntegrationMessageFailedError, match=r"ESCALATED.*No receiver"):
        SapCloudIntegrationMessageSensor(task_id="s", message_guid=GUID, deferrable=False).execute({"ti": ti_mock()})


def _run(trigger: Any) -> list[Any]:
    async def collect() -> list[Any]:
        return [event async for event in trigger.run()]

    return asyncio.run(collect())


def test_message_trigger_follows_discarded_and_fires_once(monkeypatch: pytest.MonkeyPatch) -> None:
    hook = mock.MagicMock()
    hook.aget_message = mock.AsyncMock(return_value=message("DISCARDED", correlation="c"))
    hook.aquery_messages = mock.AsyncMock(
        side_effect=[[message("PROCESSING", guid="N")], [message("COMPLETED", guid="N")]]
    )
    hook.aclose = mock.AsyncMock()
    monkeypatch.setattr(SapCloudIntegrationMessageTrigger, "make_hook", lambda self: hook)
    monkeypatch.setattr("airflow_provider_sapplan.core.trigger.asyncio.sleep", mock.AsyncMock())
    events = _run(SapCloudIntegrationMessageTrigger(conn_id="c", ref={"message_guid": GUID}, poll_interval=5))
    assert len(events) == 1 and events[0].payload["status"] == "success"
    assert events[0].payload["result"]["MessageGuid"] == "N" and events[0].payload["result"]["FollowedFrom"] == GUID


def test_deploy_trigger_walks_build_then_runtime(monkeypatch: pytest.MonkeyPatch) -> None:
    hook = mock.MagicMock()
    hook.abuild_status = mock.AsyncMock(
        side_effect=[{"Status": "DEPLOYING"}, {"Status": "success"}, {"Status": "success"}]
    )
    hook.aruntime_artifact = mock.AsyncMock(side_effect=[None, runtime("STARTED")["d"]])
    hook.aruntime_error = mock.AsyncMock(return_value=None)
    hook.aclose = mock.AsyncMock()
    monkeypatch.setattr(SapCloudIntegrationDeployTrigger, "make_hook", lambda self: hook)
    monkeypatch.setattr("airflow_provider_sapplan.core.trigger.asyncio.sleep", mock.AsyncMock())
    ref = {"artifact_id": "Orders", "task_id": "task-1", "started_at": 9e12, "grace_seconds": 300}
    events = _run(SapCloudIntegrationDeployTrigger(conn_id="c", ref=ref))
    assert [e.payload["status"] for e in events] == ["success"] and events[0].payload["raw_state"] == "runtime:STARTED"
    assert hook.aruntime_error.await_count == 0


def test_trigger_on_kill_cancels_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    hook = mock.MagicMock()
    hook.aclose = mock.AsyncMock()
    monkeypatch.setattr(SapCloudIntegrationMessageTrigger, "make_hook", lambda self: hook)
    trigger = SapCloudIntegrationMessageTrigger(conn_id="c", ref={"message_guid": GUID}, cancel_on_kill=True)
    asyncio.run(trigger.on_kill())
    assert [c for c in hook.mock_calls if not str(c).startswith("call.aclose")] == []


def test_no_secret_in_hook_repr(api: Any) -> None:
    hook = SapCloudIntegrationHook()
    hook.get_conn()
    text = repr(hook._config) + repr(hook._runtime_config)
    assert not re.search("api-secret|flow-secret", text)
