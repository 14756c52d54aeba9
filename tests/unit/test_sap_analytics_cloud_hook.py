"""SAP Analytics Cloud hook with mocked HTTP: grants, CSRF, headers, SAC's errors, endpoints."""

from __future__ import annotations

import base64
import logging
from typing import Any
from urllib.parse import parse_qs

import pytest

from airflow_provider_sapplan.core.oauth_grants import ROTATED_REFRESH_TOKENS, ClientCredentialsGrant, RefreshTokenGrant
from airflow_provider_sapplan.exceptions import (
    AuthenticationError,
    ConnectionConfigError,
    InvalidRequestError,
    PermissionDeniedError,
    ResourceBusyError,
)
from airflow_provider_sapplan.hooks.sap_analytics_cloud import (
    SapAnalyticsCloudHook,
    error_number,
    region_of_host,
    region_of_token_url,
)
from tests.conftest import set_connection

HOST = "https://acme.eu10.hcs.cloud.sap"
TOKEN_URL = "https://acme.authentication.eu10.hana.ondemand.com/oauth/token"
DI = f"{HOST}/sap/fpa/services/rest/fpa/dataintegration"
CSRF = f"{HOST}/api/v1/csrf"
HTML = "<!DOCTYPE html><html><body><!-- we should only load this content when not authenticated--></body></html>"


def connect(monkeypatch: pytest.MonkeyPatch, **extra: Any) -> None:
    fields = {"token_url": TOKEN_URL, "tenant": "G", **extra}
    set_connection(
        monkeypatch,
        "sap_analytics_cloud_default",
        conn_type="sap_analytics_cloud",
        host=HOST,
        login="client-id",
        password="client-secret",
        extra={k: v for k, v in fields.items() if v is not None},
    )


@pytest.fixture(autouse=True)
def _no_rotations() -> Any:
    ROTATED_REFRESH_TOKENS.clear()
    yield
    ROTATED_REFRESH_TOKENS.clear()


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch, requests_mock: Any) -> Any:
    monkeypatch.setattr("airflow_provider_sapplan.core.http.time.sleep", lambda s: None)
    connect(monkeypatch)
    requests_mock.post(TOKEN_URL, json={"access_token": "tok-1", "token_type": "bearer", "expires_in": 3600})
    requests_mock.get(CSRF, headers={"x-csrf-token": "csrf-1"}, cookies={"JSESSIONID": "sess-1"}, json={})
    return requests_mock


def token_calls(api: Any) -> list[Any]:
    return [r for r in api.request_history if r.url.startswith(TOKEN_URL)]


# -- connection and auth ------------------------------------------------------------------------------


def test_client_credentials_grant_with_basic_auth(api: Any) -> None:
    api.get(f"{HOST}/api/v1/dataimport/models", json={"models": [{"modelID": "M1"}]})
    message = SapAnalyticsCloudHook().check_connection()
    assert "client credentials" in message and "1 model" in message
    (call,) = token_calls(api)
    assert parse_qs(call.text) == {"grant_type": ["client_credentials"]}
    assert call.headers["Authorization"] == "Basic " + base64.b64encode(b"client-id:client-secret").decode()


def test_refresh_token_grant_and_rotation_kept_in_process(
    api: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    connect(monkeypatch, refresh_token="rt-original")
    api.post(
        TOKEN_URL,
        [
            {"json": {"access_token": "u-1", "expires_in": 3600, "refresh_token": "rt-rotated"}},
            {"json": {"access_token": "u-2", "expires_in": 3600}},
        ],
    )
    api.get(f"{HOST}/api/v1/dataimport/models", json={"models": []})
    with caplog.at_level(logging.WARNING):
        assert "refresh token" in SapAnalyticsCloudHook().check_connection()
    assert parse_qs(token_calls(api)[0].text) == {"grant_type": ["refresh_token"], "refresh_token": ["rt-original"]}
    assert "rotated the refresh token" in caplog.text and "rt-rotated" not in caplog.text
    from airflow_provider_sapplan.core.auth import TOKEN_CACHE

    TOKEN_CACHE.clear()  # the next token request uses the rotated refresh token
    SapAnalyticsCloudHook().check_connection()
    assert parse_qs(token_calls(api)[1].text)["refresh_token"] == ["rt-rotated"]


def test_cache_key_covers_every_part_of_the_identity() -> None:
    base = {"platform": "p", "token_url": TOKEN_URL, "client_id": "c", "client_secret": "s"}
    keys = {
        ClientCredentialsGrant(**base).cache_key,
        ClientCredentialsGrant(**{**base, "client_secret": "other"}).cache_key,
        ClientCredentialsGrant(**{**base, "token_url": TOKEN_URL + "x"}).cache_key,
        RefreshTokenGrant(refresh_token="r1", **base).cache_key,
        RefreshTokenGrant(refresh_token="r2", **base).cache_key,
    }
    assert len(keys) == 5
    assert all(k != "s" and "r1" not in k for k in keys)
    assert "secret" not in repr(RefreshTokenGrant(refresh_token="r1", **{**base, "client_secret": "secret"}))


def test_every_request_carries_the_custom_auth_header_and_bearer(api: Any) -> None:
    api.post(f"{HOST}/api/v1/dataimport/models/M1/factData", json={"jobID": "J1"})
    assert SapAnalyticsCloudHook().create_import_job("M1", "factData", {}) == "J1"
    calls = [r for r in api.request_history if r.url.startswith(HOST)]
    assert [r.method for r in calls] == ["GET", "POST"]
    assert all(r.headers["x-sap-sac-custom-auth"] == "true" for r in calls)
    assert all(r.headers["Authorization"] == "Bearer tok-1" for r in calls)


def test_csrf_fetched_and_refetched_once_on_403(api: Any) -> None:
    api.get(
        CSRF,
        [
            {"headers": {"x-csrf-token": "csrf-1", "Set-Cookie": "JSESSIONID=sess-1; Path=/"}, "json": {}},
            {"headers": {"x-csrf-token": "csrf-2", "Set-Cookie": "JSESSIONID=sess-2; Path=/"}, "json": {}},
        ],
    )
    api.post(
        f"{HOST}/api/v1/dataimport/jobs/J1/validate",
        [
            {"status_code": 403, "headers": {"x-csrf-token": "Required"}, "json": {"message": "CSRF"}},
            {"status_code": 201, "json": {"jobStatus": "READY_FOR_WRITE"}},
        ],
    )
    assert SapAnalyticsCloudHook().validate_import_job("J1")["jobStatus"] == "READY_FOR_WRITE"
    fetch1, post1, _fetch2, post2 = [r for r in api.request_history if r.url.startswith(HOST)]
    assert fetch1.headers["X-CSRF-Token"].lower() == "fetch"
    assert post1.headers["X-CSRF-Token"] == "csrf-1" and post2.headers["X-CSRF-Token"] == "csrf-2"
    # requests-mock does not fill the session's cookie jar: cookies are asserted against the real
    # sandbox in tests/sandbox/test_sap_analytics_cloud.py (sync and async clients).


def test_second_403_is_not_refetched_forever(api: Any) -> None:
    api.post(
        f"{HOST}/api/v1/dataimport/jobs/J1/validate",
        status_code=403,
        headers={"x-csrf-token": "required"},
        json={"message": "CSRF token validation failed"},
    )
    with pytest.raises(PermissionDeniedError):
        SapAnalyticsCloudHook().validate_import_job("J1")
    assert len([r for r in api.request_history if r.url == CSRF]) == 2


def test_html_login_page_on_200_names_the_fixes(api: Any) -> None:
    api.post(DI, text=HTML, headers={"Content-Type": "text/html"})
    with pytest.raises(AuthenticationError) as err:
        SapAnalyticsCloudHook().schedule_logs("t.G:M")
    assert "HTML login page" in err.value.message
    for fix in ("purpose", "refresh_token", "SAML", "x-sap-sac-custom-auth"):
        assert fix in err.value.message


def test_3401_names_the_oauth_client_fix(api: Any) -> None:
    api.get(
        f"{HOST}/api/v1/dataimport/models",
        status_code=400,
        json={"status": 400, "message": "[3401] OAuth Client is not allowed to interact with API"},
    )
    ok, message = SapAnalyticsCloudHook().test_connection()
    assert not ok and "App Integration" in message and "[3401]" in message


@pytest.mark.parametrize("code", [1002, 1007])
def test_active_job_limits_are_transient(api: Any, code: int) -> None:
    api.post(f"{HOST}/api/v1/dataimport/models/M1/factData", status_code=400, json={"message": f"[{code}] max jobs"})
    with pytest.raises(ResourceBusyError) as err:
        SapAnalyticsCloudHook().create_import_job("M1", "factData", {})
    assert err.value.details["sac_error"] == code
    assert len([r for r in api.request_history if r.method == "POST" and "models" in r.url]) == 1  # never replayed


def test_1010_keeps_its_number_and_hint(api: Any) -> None:
    api.post(f"{HOST}/api/v1/dataimport/jobs/J1/run", status_code=400, json={"error": {"message": "[1010] busy"}})
    with pytest.raises(InvalidRequestError) as err:
        SapAnalyticsCloudHook().run_import_job("J1")
    assert err.value.details["sac_error"] == 1010 and "already in progress" in err.value.message


def test_error_number_parsing() -> None:
    assert error_number("[3707] entity set missing") == 3707
    assert error_number("Error [1007]: model limit") == 1007
    assert error_number("no number") is None


def test_region_mismatch_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    assert region_of_host(HOST) == "eu10" and region_of_token_url(TOKEN_URL) == "eu10"
    connect(monkeypatch, token_url="https://acme.authentication.eu10-2.hana.ondemand.com/oauth/token")
    with pytest.raises(ConnectionConfigError, match="region eu10-2 but the tenant is in eu10"):
        SapAnalyticsCloudHook().get_conn()


@pytest.mark.parametrize(
    ("extra", "match"),
    [({"token_url": None}, "token_url"), ({}, None)],
)
def test_token_url_required(monkeypatch: pytest.MonkeyPatch, extra: dict[str, Any], match: str | None) -> None:
    connect(monkeypatch, **extra)
    if match is None:
        assert SapAnalyticsCloudHook().get_conn().config.csrf_fetch_path == "api/v1/csrf"
    else:
        with pytest.raises(ConnectionConfigError, match=match):
            SapAnalyticsCloudHook().get_conn()


def test_tenant_missing_fails_before_any_call(monkeypatch: pytest.MonkeyPatch, requests_mock: Any) -> None:
    connect(monkeypatch, tenant=None)
    with pytest.raises(ConnectionConfigError, match="tenant"):
        SapAnalyticsCloudHook().run_schedule({"scheduleId": "S"})
    assert requests_mock.request_history == []


def test_multi_action_needs_a_user_token_before_any_call(api: Any) -> None:
    with pytest.raises(ConnectionConfigError, match="Interactive Usage"):
        SapAnalyticsCloudHook().start_multi_action("t.G:MA", [])
    assert api.request_history == []


def test_multi_action_id_colon_is_literal_and_403_explained(api: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    connect(monkeypatch, refresh_token="rt")
    url = f"{HOST}/api/v1/multiActions/t.G:MA1/executions"
    api.post(
        url, [{"status_code": 202, "json": {"executionId": "E1"}}, {"status_code": 403, "json": {"message": "no"}}]
    )
    hook = SapAnalyticsCloudHook()
    assert hook.start_multi_action("t.G:MA1", [{"parameterId": "Rate", "value": 1}]) == "E1"
    assert api.request_history[-1].json() == {"parameterValues": [{"parameterId": "Rate", "value": 1}]}
    with pytest.raises(PermissionDeniedError, match="user-context token"):
        hook.start_multi_action("t.G:MA1", [])


def test_dataintegration_status_inside_body_is_checked(api: Any) -> None:
    api.post(DI, json={"status": 500, "message": "Error Code: 3000, user not configured"})
    with pytest.raises(InvalidRequestError, match="user not configured"):
        SapAnalyticsCloudHook().schedule_logs("t.G:M")
    call = api.request_history[-1]
    assert call.qs == {"action": ["getschedulelogsbymodel"], "tenant": ["g"]}
    assert call.json() == {"jobType": "bpcDataImport", "modelName": "t.G:M", "mappingId": []}


def test_invalid_rows_and_delete(api: Any) -> None:
    api.get(f"{HOST}/api/v1/dataimport/jobs/J1/invalidRows", json={"failedRows": [{"row": {}, "reason": "x"}]})
    api.delete(f"{HOST}/api/v1/dataimport/jobs/J1", [{"status_code": 204}, {"status_code": 404, "json": {}}])
    hook = SapAnalyticsCloudHook()
    assert hook.invalid_rows("J1") == [{"row": {}, "reason": "x"}]
    assert hook.delete_import_job("J1") is True
    assert hook.delete_import_job("J1") is False


# -- provider registration, secrets, core helpers ---------------------------------------------------


def test_connection_form_matches_the_provider_info() -> None:
    pytest.importorskip("flask_appbuilder", reason="the legacy form needs the FAB UI (Airflow < 3.2)")
    from airflow_provider_sapplan.get_provider_info import get_provider_info

    conn = {c["connection-type"]: c for c in get_provider_info()["connection-types"]}["sap_analytics_cloud"]
    assert set(SapAnalyticsCloudHook.get_connection_form_widgets()) == set(conn["conn-fields"])
    behaviour = SapAnalyticsCloudHook.get_ui_field_behaviour()
    assert behaviour["hidden_fields"] == conn["ui-field-behaviour"]["hidden-fields"]
    assert set(behaviour) == {"hidden_fields", "relabeling", "placeholders"}


def test_provider_info_lists_every_sac_module() -> None:
    import importlib

    from airflow_provider_sapplan.get_provider_info import get_provider_info

    info = get_provider_info()
    for role in ("hooks", "operators", "sensors", "triggers"):
        modules = [m for entry in info[role] for m in entry["python-modules"] if m.endswith("sap_analytics_cloud")]
        assert modules and importlib.import_module(modules[0])
    assert any(link.endswith("SapAnalyticsCloudTenantLink") for link in info["extra-links"])


def test_no_secret_reaches_xcom_or_trigger_kwargs(api: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import json
    from unittest import mock

    from airflow_provider_sapplan._compat import TaskDeferred
    from airflow_provider_sapplan.operators.sap_analytics_cloud import SapAnalyticsCloudRunMultiActionOperator

    connect(monkeypatch, refresh_token="REFRESH-SECRET")
    api.post(TOKEN_URL, json={"access_token": "ACCESS-SECRET", "expires_in": 3600})
    api.post(f"{HOST}/api/v1/multiActions/t.G:MA/executions", json={"executionId": "E1"})
    api.get(f"{HOST}/api/v1/multiActions/t.G:MA/executions/E1", json={"status": "running"})
    ti = mock.MagicMock()
    op = SapAnalyticsCloudRunMultiActionOperator(task_id="t", multi_action_id="t.G:MA", deferrable=True)
    with pytest.raises(TaskDeferred) as deferred:
        op.execute({"ti": ti})
    pushed = json.dumps([c.kwargs for c in ti.xcom_push.call_args_list])
    kwargs = json.dumps(deferred.value.trigger.serialize()[1])
    assert "https://acme.eu10.hcs.cloud.sap/sap/fpa/ui/app.html" in pushed
    for secret in ("REFRESH-SECRET", "ACCESS-SECRET", "client-secret", "csrf-1"):
        assert secret not in pushed and secret not in kwargs and secret not in repr(op)


def test_token_answer_without_access_token_names_the_token_url() -> None:
    grant = ClientCredentialsGrant(platform="SAC", token_url=TOKEN_URL, client_id="c", client_secret="s")
    with pytest.raises(AuthenticationError, match="/oauth/token"):
        grant.parse_token({"error": "nope"})
    assert grant.parse_token({"access_token": "a", "expires_in": "bad"}).lifetime == pytest.approx(3600, abs=1)


def test_wait_until_raises_at_the_deadline() -> None:
    import time

    from airflow_provider_sapplan.core.patience import wait_until
    from airflow_provider_sapplan.exceptions import RemoteJobTimeoutError

    slept: list[float] = []
    with pytest.raises(RemoteJobTimeoutError, match="still busy"):
        wait_until(lambda: (False, "busy"), deadline=time.time() + 0.05, what="x", sleep=slept.append)
    assert slept and all(s <= 0.05 for s in slept)


@pytest.mark.parametrize(
    ("status_after", "runs"),
    [("PROCESSING", 1), ("READY_FOR_WRITE", 2)],
    ids=["run-accepted-answer-lost", "run-never-reached-the-job"],
)
def test_lost_run_answer_asks_the_job_before_running_it_again(api: Any, status_after: str, runs: int) -> None:
    run = f"{HOST}/api/v1/dataimport/jobs/J1/run"
    api.post(run, [{"status_code": 502, "text": "Bad Gateway"}, {"json": {"jobStatus": "PROCESSING"}}])
    api.get(f"{HOST}/api/v1/dataimport/jobs/J1/status", json={"jobStatus": status_after})
    assert SapAnalyticsCloudHook().run_import_job("J1")["jobStatus"] == "PROCESSING"
    assert len([r for r in api.request_history if r.url.endswith("/run")]) == runs  # never a second run


def test_validation_is_resent_after_a_passing_500(api: Any) -> None:
    validate = f"{HOST}/api/v1/dataimport/jobs/J1/validate"
    api.post(validate, [{"status_code": 500, "text": "oops"}, {"json": {"failedNumberRows": 0}}])
    assert SapAnalyticsCloudHook().validate_import_job("J1") == {"failedNumberRows": 0}
