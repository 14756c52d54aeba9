"""SAP Cloud Integration fake: plans, CSRF, OData shapes, deploy and message state machines, MPL queries;
and the hook, operators and triggers against it (real HTTP, sync and async)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any
from unittest import mock

import pytest
import requests

from airflow_provider_sapplan.exceptions import NetworkError
from airflow_provider_sapplan.hooks.sap_cloud_integration import SapCloudIntegrationHook
from airflow_provider_sapplan.jobs.sap_cloud_integration import CloudIntegrationMessageFailedError, fetch_message
from airflow_provider_sapplan.operators.sap_cloud_integration import (
    SapCloudIntegrationDeployOperator,
    SapCloudIntegrationTriggerFlowOperator,
)
from airflow_provider_sapplan.sandbox import SandboxServer
from airflow_provider_sapplan.sandbox.sap_cloud_integration import (
    API_CLIENT_ID,
    API_CLIENT_SECRET,
    BASIC_PASSWORD,
    BASIC_USER,
    FLOW_CLIENT_ID,
    FLOW_CLIENT_SECRET,
    sandbox_extra,
)
from airflow_provider_sapplan.triggers.sap_cloud_integration import (
    SapCloudIntegrationDeployTrigger,
    SapCloudIntegrationMessageTrigger,
)
from tests.conftest import set_connection


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(sandbox: SandboxServer) -> Iterator[Clock]:
    fake = Clock()
    original = sandbox.context.clock
    sandbox.context.clock = fake
    yield fake
    sandbox.context.clock = original


def token(sandbox: SandboxServer, client: str, secret: str) -> str:
    response = requests.post(
        f"{sandbox.url}/sap-cloud-integration/oauth/token",
        auth=(client, secret),
        data={"grant_type": "client_credentials"},
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def api(sandbox: SandboxServer) -> str:
    return f"{sandbox.url}/sap-cloud-integration/api/v1"


JSON = {"Accept": "application/json"}


@pytest.fixture
def conn(sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch) -> str:
    set_connection(
        monkeypatch,
        "sap_cloud_integration_default",
        conn_type="sap_cloud_integration",
        extra=sandbox_extra(sandbox.url),
    )
    return "sap_cloud_integration_default"


def deploy_seed(sandbox: SandboxServer, clock: Clock | None = None) -> None:
    sandbox.sap_cloud_integration.configure_deploy(
        "Orders_Import", build_seconds=0, not_found_seconds=0, starting_seconds=0
    )
    sandbox.sap_cloud_integration.deploy("Orders_Import", "active")
    if clock is not None:
        clock.now += 1


# -- auth, plans, CSRF, formats ---------------------------------------------------------------------


def test_each_plan_token_works_only_on_its_side(sandbox: SandboxServer) -> None:
    deploy_seed(sandbox)
    api_token = token(sandbox, API_CLIENT_ID, API_CLIENT_SECRET)
    flow_token = token(sandbox, FLOW_CLIENT_ID, FLOW_CLIENT_SECRET)
    flow_url = f"{sandbox.url}/sap-cloud-integration/http/orders_import"
    artifacts = f"{api(sandbox)}/IntegrationRuntimeArtifacts"
    assert requests.get(artifacts, headers={**JSON, "Authorization": f"Bearer {api_token}"}).status_code == 200
    refused = requests.get(artifacts, headers={**JSON, "Authorization": f"Bearer {flow_token}"})
    assert refused.status_code == 403 and "api plan" in refused.json()["error"]["message"]["value"]
    assert requests.post(flow_url, headers={"Authorization": f"Bearer {api_token}"}).status_code == 403
    assert requests.post(flow_url, headers={"Authorization": f"Bearer {flow_token}"}).status_code == 200
    anonymous = requests.get(artifacts, headers=JSON)
    assert anonymous.status_code == 401 and anonymous.text == "Unauthorized"
    bad = requests.post(
        f"{sandbox.url}/sap-cloud-integration/oauth/token",
        auth=(API_CLIENT_ID, "wrong"),
        data={"grant_type": "client_credentials"},
    )
    assert bad.status_code == 401


def test_csrf_is_bound_to_the_session_cookie(sandbox: SandboxServer) -> None:
    design = "IntegrationDesigntimeArtifacts(Id='Orders_Import',Version='active')"
    url = f"{api(sandbox)}/{design}/Configurations('BatchSize')"
    body = {"ParameterValue": "5", "DataType": "xsd:integer"}
    session = requests.Session()
    session.auth = (BASIC_USER, BASIC_PASSWORD)
    missing = session.put(url, json=body, headers=JSON)
    assert missing.status_code == 403 and missing.headers["X-CSRF-Token"] == "Required"
    fetched = session.get(f"{api(sandbox)}/", headers={**JSON, "X-CSRF-Token": "Fetch"})
    csrf = fetched.headers["X-CSRF-Token"]
    assert "JSESSIONID" in session.cookies
    assert session.put(url, json=body, headers={**JSON, "X-CSRF-Token": csrf}).status_code == 202
    cookieless = requests.put(url, json=body, headers={**JSON, "X-CSRF-Token": csrf}, auth=(BASIC_USER, BASIC_PASSWORD))
    assert cookieless.status_code == 403
    sandbox.sap_cloud_integration.invalidate_csrf()
    assert session.put(url, json=body, headers={**JSON, "X-CSRF-Token": csrf}).status_code == 403


def test_bearer_csrf_can_be_relaxed(sandbox: SandboxServer) -> None:
    bearer = {**JSON, "Authorization": f"Bearer {token(sandbox, API_CLIENT_ID, API_CLIENT_SECRET)}"}
    url = f"{api(sandbox)}/DeployIntegrationDesigntimeArtifact?Id='Orders_Import'&Version='active'"
    assert requests.post(url, headers=bearer).status_code == 403
    requests.post(f"{sandbox.url}/_sandbox/sap_cloud_integration/csrf", json={"enforce_for_bearer": False})
    answer = requests.post(url, headers=bearer)
    assert (
        answer.status_code == 202 and answer.headers["Content-Type"].startswith("text/plain") and len(answer.text) == 32
    )


def test_atom_unless_json_is_asked_for(sandbox: SandboxServer) -> None:
    url = f"{api(sandbox)}/IntegrationRuntimeArtifacts"
    atom = requests.get(url, auth=(BASIC_USER, BASIC_PASSWORD))
    assert atom.headers["Content-Type"].startswith("application/atom+xml")
    assert "d" in requests.get(url + "?$format=json", auth=(BASIC_USER, BASIC_PASSWORD)).json()


def test_rate_limit_on_demand(sandbox: SandboxServer, conn: str) -> None:
    requests.post(f"{sandbox.url}/_sandbox/sap_cloud_integration/rate_limit", json={"count": 2, "retry_after": 0})
    with mock.patch("airflow_provider_sapplan.core.http.time.sleep"):
        assert SapCloudIntegrationHook().get_message("nope") is None
    assert sandbox.stats.statuses[429] == 2


def test_design_time_round_trip_download_and_parameters(sandbox: SandboxServer, conn: str, tmp_path: Any) -> None:
    from airflow_provider_sapplan.sandbox.sap_cloud_integration import seed_zip

    hook = SapCloudIntegrationHook()
    _, created = hook.upload_artifact("Flow_A", "SandboxPackage", seed_zip({"EndpointAddress": "a/b", "Host": "x"}))
    assert created is True
    assert {c["ParameterKey"] for c in hook.get_configurations("Flow_A")} == {"EndpointAddress", "Host"}
    hook.update_configuration("Flow_A", "Host", "y")
    _, created = hook.upload_artifact("Flow_A", "SandboxPackage", seed_zip({"EndpointAddress": "a/b", "Host": "x"}))
    assert created is False
    assert {c["ParameterKey"]: c["ParameterValue"] for c in hook.get_configurations("Flow_A")}["Host"] == "y"
    size = hook.download_artifact("Flow_A", tmp_path / "a.zip")
    assert size == (tmp_path / "a.zip").stat().st_size and (tmp_path / "a.zip").read_bytes()[:2] == b"PK"


# -- deploy state machine -------------------------------------------------------------------------


def test_deploy_build_404_starting_error_with_delayed_details(sandbox: SandboxServer, clock: Clock, conn: str) -> None:
    cpi = sandbox.sap_cloud_integration
    cpi.configure_deploy("Orders_Import", runtime="ERROR", build_seconds=10, not_found_seconds=10, starting_seconds=10,
                         error_info_delay=10)  # fmt: skip
    hook = SapCloudIntegrationHook()
    task_id = hook.deploy("Orders_Import")
    seen = []
    for _ in range(5):
        build = hook.build_status(task_id)
        art = hook.runtime_artifact("Orders_Import")
        seen.append(
            (build["Status"] if build else None, art["Status"] if art else None, hook.runtime_error("Orders_Import"))
        )
        clock.now += 10 * sandbox.context.time_scale
    assert [s[:2] for s in seen] == [("Deploying", None), ("Success", None), ("Success", "STARTING"),
                                     ("Success", "ERROR"), ("Success", "ERROR")]  # fmt: skip
    assert seen[3][2] is None  # 204 while the details are not written
    assert seen[4][2] and "Unable to resolve the receiver address 'erp.example.com'" in seen[4][2]
    assert cpi.counters["deploys:Orders_Import"] == 1


def test_deploy_operator_against_the_sandbox(sandbox: SandboxServer, conn: str) -> None:
    sandbox.sap_cloud_integration.configure_deploy(
        "Orders_Import", build_seconds=0.1, not_found_seconds=0.1, starting_seconds=0.1
    )
    with mock.patch("airflow_provider_sapplan.core.operator.time.sleep"):
        result = SapCloudIntegrationDeployOperator(
            task_id="d", artifact_id="Orders_Import", deferrable=False, poll_interval=5
        ).execute({"ti": mock.MagicMock()})
    assert result["Status"] == "STARTED" and result["Version"] == "1.0.0"


def test_deploy_trigger_async_against_the_sandbox(sandbox: SandboxServer, conn: str) -> None:
    sandbox.sap_cloud_integration.configure_deploy(
        "Orders_Import", build_seconds=0, not_found_seconds=0, starting_seconds=0
    )
    task_id = SapCloudIntegrationHook().deploy("Orders_Import")
    ref = {"artifact_id": "Orders_Import", "task_id": task_id, "started_at": 9e12, "grace_seconds": 300}

    async def run() -> list[Any]:
        return [e async for e in SapCloudIntegrationDeployTrigger(conn_id=conn, ref=ref, poll_interval=5).run()]

    events = asyncio.run(run())
    assert events[0].payload["status"] == "success" and events[0].payload["result"]["Status"] == "STARTED"


# -- messages and queries -------------------------------------------------------------------------


def test_mpl_filter_grammar_paging_and_errors(sandbox: SandboxServer, conn: str) -> None:
    cpi = sandbox.sap_cloud_integration
    cpi.add_messages("Orders_Import", 2500, "COMPLETED")
    cpi.add_messages("Orders_Import", 3, "FAILED", correlation_id="corr-1")
    cpi.add_messages("Other", 2, "COMPLETED")
    auth = (BASIC_USER, BASIC_PASSWORD)
    url = f"{api(sandbox)}/MessageProcessingLogs"
    page = requests.get(url, params={"$filter": "IntegrationArtifact/Id eq 'Orders_Import'", "$inlinecount": "allpages",
                                     "$orderby": "LogStart desc"}, headers=JSON, auth=auth).json()["d"]  # fmt: skip
    assert len(page["results"]) == 1000 and page["__count"] == "2503" and "$skiptoken=1000" in page["__next"]
    assert page["results"][0]["LogStart"].startswith("/Date(")
    hook = SapCloudIntegrationHook()
    assert len(hook.query_messages(artifact_id="Orders_Import")) == 2503  # follows __next twice
    both = "(Status eq 'FAILED' or IntegrationArtifact/Id eq 'Other') and LogStart gt datetime'2020-01-01T00:00:00'"
    got = requests.get(url, params={"$filter": both}, headers=JSON, auth=auth).json()["d"]["results"]
    assert len(got) == 5
    for bad, text in [
        ("LogStart gt datetime'2020-01-01T00:00:00Z'", "offsets are not allowed"),
        ("CorrelationId ne 'x'", "Only the eq operator"),
        ("Status eq", "unexpected end"),
    ]:
        answer = requests.get(url, params={"$filter": bad}, headers=JSON, auth=auth)
        assert answer.status_code == 400 and text in answer.json()["error"]["message"]["value"]
    assert requests.get(url, params={"$orderby": "Status"}, headers=JSON, auth=auth).status_code == 400
    assert (
        len(requests.get(url, params={"$top": "7", "$skip": "3"}, headers=JSON, auth=auth).json()["d"]["results"]) == 7
    )


def test_flow_outcomes_and_headers(sandbox: SandboxServer, clock: Clock, conn: str) -> None:
    cpi = sandbox.sap_cloud_integration
    deploy_seed(sandbox, clock)
    hook = SapCloudIntegrationHook()
    for outcome, expected in [("COMPLETED", ["PROCESSING", "COMPLETED", "COMPLETED"]),
                              ("RETRY_THEN_COMPLETED", ["PROCESSING", "RETRY", "COMPLETED"]),
                              ("ESCALATED", ["PROCESSING", "ESCALATED", "ESCALATED"])]:  # fmt: skip
        cpi.configure_flow("Orders_Import", outcome=outcome, processing_seconds=100)
        response = hook.call_flow("/http/orders_import", body=b"{}", correlation_id=f"c-{outcome}")
        assert response.headers["SAP_MplCorrelationId"] == f"c-{outcome}"
        guid = response.headers["SAP_MessageProcessingLogID"]
        response.close()
        states = []
        for _ in range(3):
            states.append(hook.get_message(guid)["Status"])  # type: ignore[index]
            clock.now += 100 * sandbox.context.time_scale + 0.01
        assert states == expected
    assert hook.message_error(guid) and "HTTP 502" in hook.message_error(guid)  # type: ignore[operator]


def test_discarded_message_gets_a_restart_with_the_same_correlation(
    sandbox: SandboxServer, clock: Clock, conn: str
) -> None:
    deploy_seed(sandbox, clock)
    sandbox.sap_cloud_integration.configure_flow("Orders_Import", outcome="DISCARDED", processing_seconds=100)
    hook = SapCloudIntegrationHook()
    response = hook.call_flow("/http/orders_import", correlation_id="c-d")
    guid = response.headers["SAP_MessageProcessingLogID"]
    response.close()
    clock.now += 200 * sandbox.context.time_scale
    status = fetch_message(hook, {"message_guid": guid})
    assert status["FollowedFrom"] == guid and status["MessageGuid"] != guid and status["CorrelationId"] == "c-d"
    assert status["Status"] == "COMPLETED"


def test_mpl_written_late_is_404_plain_text_first(sandbox: SandboxServer, clock: Clock, conn: str) -> None:
    deploy_seed(sandbox, clock)
    sandbox.sap_cloud_integration.configure_flow("Orders_Import", mpl_delay_seconds=100)
    hook = SapCloudIntegrationHook()
    response = hook.call_flow("/http/orders_import")
    guid = response.headers["SAP_MessageProcessingLogID"]
    raw = requests.get(
        f"{api(sandbox)}/MessageProcessingLogs('{guid}')", headers=JSON, auth=(BASIC_USER, BASIC_PASSWORD)
    )
    assert raw.status_code == 404 and raw.headers["Content-Type"].startswith("text/plain")
    assert (
        fetch_message(hook, {"message_guid": guid, "called_at": clock.now, "grace_seconds": 60})["Status"]
        == "NOT_FOUND_YET"
    )


# -- the operator's one-call guarantee against the real server ---------------------------------------


def _ti(try_number: int) -> Any:
    ti = mock.MagicMock()
    ti.dag_id, ti.task_id, ti.run_id, ti.map_index, ti.try_number = "dag", "call", "run-1", -1, try_number
    ti.xcom_pull.return_value = None
    return ti


def test_lost_answer_then_retry_calls_the_flow_exactly_once(sandbox: SandboxServer, conn: str) -> None:
    deploy_seed(sandbox)
    cpi = sandbox.sap_cloud_integration
    cpi.configure_flow("Orders_Import", drop_answers=1, processing_seconds=0.1)
    make = lambda: SapCloudIntegrationTriggerFlowOperator(  # noqa: E731
        task_id="call", endpoint_path="/http/orders_import", data="<order/>", deferrable=False, poll_interval=5
    )
    with mock.patch("airflow_provider_sapplan.core.operator.time.sleep"):
        with pytest.raises(NetworkError):
            make().execute({"ti": _ti(1)})
        result = make().execute({"ti": _ti(2)})
    assert result["reconnected"] is True and result["Status"] == "COMPLETED"
    assert cpi.counters["flow_calls"] == 1


def test_failed_first_message_means_a_second_call(sandbox: SandboxServer, conn: str) -> None:
    deploy_seed(sandbox)
    cpi = sandbox.sap_cloud_integration
    cpi.configure_flow("Orders_Import", outcome="SYNC_500")
    op = SapCloudIntegrationTriggerFlowOperator(task_id="call", endpoint_path="/http/orders_import", deferrable=False)
    with pytest.raises(CloudIntegrationMessageFailedError, match="HTTP 502 from receiver"):
        op.execute({"ti": _ti(1)})
    cpi.configure_flow("Orders_Import", outcome="COMPLETED", processing_seconds=0.1)
    with mock.patch("airflow_provider_sapplan.core.operator.time.sleep"):
        result = SapCloudIntegrationTriggerFlowOperator(
            task_id="call", endpoint_path="/http/orders_import", deferrable=False
        ).execute({"ti": _ti(2)})
    assert result["reconnected"] is False and cpi.counters["flow_calls"] == 2


def test_message_trigger_async_against_the_sandbox(sandbox: SandboxServer, conn: str) -> None:
    deploy_seed(sandbox)
    sandbox.sap_cloud_integration.configure_flow("Orders_Import", processing_seconds=0)
    response = SapCloudIntegrationHook().call_flow("/http/orders_import", body=json.dumps({"a": 1}))
    guid = response.headers["SAP_MessageProcessingLogID"]

    async def run() -> list[Any]:
        return [e async for e in SapCloudIntegrationMessageTrigger(conn_id=conn, ref={"message_guid": guid}).run()]

    events = asyncio.run(run())
    assert events[0].payload["status"] == "success" and events[0].payload["result"]["MessageGuid"] == guid


def test_async_csrf_write_keeps_the_session_cookie_on_an_ip_host(sandbox: SandboxServer, conn: str) -> None:
    async def write() -> int:
        hook = SapCloudIntegrationHook()
        client = await hook.aget_client()
        try:
            design = "IntegrationDesigntimeArtifacts(Id='Orders_Import',Version='active')"
            body = {"ParameterValue": "7", "DataType": "xsd:integer"}
            return (await client.request("PUT", f"{design}/Configurations('BatchSize')", json=body)).status
        finally:
            await hook.aclose()

    assert asyncio.run(write()) == 202
