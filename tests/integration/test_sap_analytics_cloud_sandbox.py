"""SAP Analytics Cloud hook, operators and triggers against the real sandbox server: no mocks."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from airflow_provider_sapplan.core.async_http import close_shared_session
from airflow_provider_sapplan.core.auth import TOKEN_CACHE
from airflow_provider_sapplan.core.oauth_grants import ROTATED_REFRESH_TOKENS
from airflow_provider_sapplan.exceptions import (
    AuthenticationError,
    ConnectionConfigError,
    PermissionDeniedError,
    RemoteJobFailedError,
    ResourceBusyError,
)
from airflow_provider_sapplan.hooks.sap_analytics_cloud import SapAnalyticsCloudHook
from airflow_provider_sapplan.operators.sap_analytics_cloud import (
    SapAnalyticsCloudImportDataOperator,
    SapAnalyticsCloudRunMultiActionOperator,
    SapAnalyticsCloudRunScheduleOperator,
)
from airflow_provider_sapplan.sandbox import SandboxServer
from airflow_provider_sapplan.sandbox.sap_analytics_cloud import (
    MAPPING_ID,
    MODEL_ID,
    MODEL_NAME,
    MULTI_ACTION_ID,
    SCHEDULE_ID,
    sandbox_connection,
)
from airflow_provider_sapplan.triggers.sap_analytics_cloud import (
    SapAnalyticsCloudImportJobTrigger,
    SapAnalyticsCloudScheduleTrigger,
)

pytestmark = pytest.mark.integration

ROW = {"Version": "public.Forecast", "Date": "202601", "Region": "EMEA", "Product": "P1", "SignedData": "1.5"}


@pytest.fixture
def sac(live: SandboxServer) -> Iterator[Any]:
    backend = live.platforms["sap_analytics_cloud"].backend
    backend.configure(job_seconds=0, multi_action_seconds=0, log_delay_seconds=0, run_seconds=0)
    yield backend
    ROTATED_REFRESH_TOKENS.clear()  # a sandbox reset forgets rotated tokens; so must this process


@pytest.fixture
def technical(live: SandboxServer, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("AIRFLOW_CONN_SAC_TECHNICAL", json.dumps(sandbox_connection(live.url, user=False)))
    return "sac_technical"


def events(trigger: Any) -> list[Any]:
    async def run() -> list[Any]:
        found = [event async for event in trigger.run()]
        await close_shared_session()
        return found

    return asyncio.run(run())


def test_schedule_trigger_posts_with_csrf_and_cookies_from_the_event_loop(live: SandboxServer, sac: Any) -> None:
    hook = SapAnalyticsCloudHook()
    started = time.time()
    hook.run_schedule({"scheduleId": SCHEDULE_ID, "mappingId": MAPPING_ID})
    ref = {"schedule_id": SCHEDULE_ID, "model_name": MODEL_NAME, "started_after": started, "skew": 5}
    (event,) = events(SapAnalyticsCloudScheduleTrigger(conn_id="sap_analytics_cloud_default", ref=ref, poll_interval=5))
    assert event.payload["status"] == "success" and event.payload["raw_state"] == "1"
    assert live.stats.count("GET", "/sap-analytics-cloud/tenant/api/v1/csrf") == 2  # one per client (sync, async)


def test_import_operator_end_to_end_through_the_trigger(live: SandboxServer, sac: Any, tmp_path: Path) -> None:
    source = tmp_path / "rows.csv"
    source.write_text("Version,Date,Region,Product,Amount\n" + "public.Forecast,202601,EMEA,P1,2.5\n" * 30)
    op = SapAnalyticsCloudImportDataOperator(
        task_id="imp", model_id=MODEL_ID, source=str(source), mapping={"SignedData": "Amount"}, batch_size=7
    )
    ref = op.submit({})
    (event,) = events(SapAnalyticsCloudImportJobTrigger(conn_id="sap_analytics_cloud_default", ref=ref))
    assert event.payload["status"] == "success"
    result = op.execute_complete({}, event.payload)
    assert result["totalNumberRowsInJob"] == 30 and result["failedNumberRows"] == 0
    assert live.stats.count("POST", "/sap-analytics-cloud/tenant/api/v1/dataimport/jobs/{job}") == 5
    assert live.stats.auth_requests["sap_analytics_cloud"] == 1


def test_invalid_rows_fail_and_the_job_is_deleted(live: SandboxServer, sac: Any, tmp_path: Path) -> None:
    keep = tmp_path / "invalid.jsonl"
    op = SapAnalyticsCloudImportDataOperator(
        task_id="imp", model_id=MODEL_ID, rows=[ROW, {**ROW, "SignedData": "abc"}], invalid_rows_destination=str(keep)
    )
    with pytest.raises(RemoteJobFailedError, match="1 invalid row"):
        op.execute({})
    assert len(sac.deleted_jobs) == 1 and not sac.jobs
    assert "not a number" in keep.read_text()


def test_busy_model_fails_at_the_timeout(live: SandboxServer, sac: Any) -> None:
    sac.configure(max_active_jobs_per_model=1)
    SapAnalyticsCloudHook().create_import_job(MODEL_ID, "factData", {})
    op = SapAnalyticsCloudImportDataOperator(task_id="imp", model_id=MODEL_ID, rows=[ROW], timeout=1, deferrable=False)
    with pytest.raises(ResourceBusyError, match="1007"):
        op.execute({})
    assert len(sac.jobs) == 1


def test_multi_action_runs_with_the_user_token(live: SandboxServer, sac: Any) -> None:
    op = SapAnalyticsCloudRunMultiActionOperator(
        task_id="ma", multi_action_id=MULTI_ACTION_ID, parameters={"Version": ["public.Forecast"]}, deferrable=False
    )
    with mock.patch("airflow_provider_sapplan.core.operator.time.sleep"):
        assert op.execute({})["status"] == "successful"


def test_multi_action_with_a_technical_connection_is_refused_before_calling(
    live: SandboxServer, sac: Any, technical: str
) -> None:
    op = SapAnalyticsCloudRunMultiActionOperator(
        task_id="ma", multi_action_id=MULTI_ACTION_ID, sap_analytics_cloud_conn_id=technical
    )
    with pytest.raises(ConnectionConfigError, match="refresh_token"):
        op.execute({})
    assert live.stats.count("POST", "/sap-analytics-cloud/tenant/api/v1/multiActions/{action}/executions") == 0


def test_login_page_for_technical_tokens_names_the_fix(live: SandboxServer, sac: Any, technical: str) -> None:
    sac.configure(technical_token_on_dataintegration="html")
    op = SapAnalyticsCloudRunScheduleOperator(
        task_id="dm",
        schedule_id=SCHEDULE_ID,
        mapping_id=MAPPING_ID,
        model_name=MODEL_NAME,
        sap_analytics_cloud_conn_id=technical,
    )
    with pytest.raises(AuthenticationError, match="Interactive Usage"):
        op.execute({})


def test_schedule_refuses_a_second_run_in_flight(live: SandboxServer, sac: Any) -> None:
    sac.configure(log_delay_seconds=0, run_seconds=600)
    SapAnalyticsCloudHook().run_schedule({"scheduleId": SCHEDULE_ID, "mappingId": MAPPING_ID})
    op = SapAnalyticsCloudRunScheduleOperator(
        task_id="dm", schedule_id=SCHEDULE_ID, mapping_id=MAPPING_ID, model_name=MODEL_NAME
    )
    with pytest.raises(ResourceBusyError, match="in flight"):
        op.execute({})
    assert live.stats.tasks_started[f"sac:schedule:{SCHEDULE_ID}"] == 1


def test_schedule_with_rejected_rows_fails_with_counts(live: SandboxServer, sac: Any, tmp_path: Path) -> None:
    sac.configure(rejected_rows=3)
    op = SapAnalyticsCloudRunScheduleOperator(
        task_id="dm",
        schedule_id=SCHEDULE_ID,
        mapping_id=MAPPING_ID,
        model_name=MODEL_NAME,
        rejections_destination=str(tmp_path / "rejections.csv"),
        deferrable=False,
        poll_interval=5,
    )
    with (
        mock.patch("airflow_provider_sapplan.core.operator.time.sleep"),
        pytest.raises(RemoteJobFailedError, match="997 inserted, 3 rejected of 1000"),
    ):
        op.execute({})
    assert len((tmp_path / "rejections.csv").read_text().splitlines()) == 4


def test_rotated_refresh_token_is_used_by_later_hooks(live: SandboxServer, sac: Any) -> None:
    sac.configure(rotate_refresh_tokens=True)
    SapAnalyticsCloudHook().check_connection()
    TOKEN_CACHE.clear()
    assert "refresh token" in SapAnalyticsCloudHook().check_connection()  # the original one is void now
    assert live.stats.auth_requests["sap_analytics_cloud"] == 2


def test_429_on_job_creation_is_retried_without_a_second_job(live: SandboxServer, sac: Any) -> None:
    live.faults.add(
        method="POST",
        path_regex=r"/dataimport/models/[^/]+/factData$",
        status=429,
        headers={"Retry-After": "0"},
        times=2,
    )
    with mock.patch("airflow_provider_sapplan.core.http.time.sleep"):
        job_id = SapAnalyticsCloudHook().create_import_job(MODEL_ID, "factData", {})
    assert list(sac.jobs) == [job_id]
    assert live.stats.count("POST", "/sap-analytics-cloud/tenant/api/v1/dataimport/models/{model}/{import_type}") == 3


def test_oauth_client_not_allowed_on_dataintegration_names_the_fix(
    live: SandboxServer, sac: Any, technical: str
) -> None:
    sac.configure(technical_token_on_dataintegration="400")
    with pytest.raises(PermissionDeniedError, match="Interactive Usage") as err:
        SapAnalyticsCloudHook(technical).schedule_logs(MODEL_NAME)
    assert err.value.details["sac_error"] == 3401


def test_expired_csrf_session_is_refetched_once_sync_and_async(live: SandboxServer, sac: Any) -> None:
    hook = SapAnalyticsCloudHook()
    hook.run_schedule({"scheduleId": SCHEDULE_ID, "mappingId": MAPPING_ID})
    sac.drop_sessions()  # the FPA session timed out: the next write answers 403 x-csrf-token: Required
    assert hook.schedule_logs(MODEL_NAME)[0]["scheduleId"] == SCHEDULE_ID
    assert live.stats.count("GET", "/sap-analytics-cloud/tenant/api/v1/csrf") == 2

    async def twice() -> None:
        async_hook = SapAnalyticsCloudHook()
        await async_hook.aschedule_logs(MODEL_NAME)
        sac.drop_sessions()
        await async_hook.aschedule_logs(MODEL_NAME)
        await async_hook.aclose()

    asyncio.run(twice())
    assert live.stats.count("GET", "/sap-analytics-cloud/tenant/api/v1/csrf") == 4
    assert live.stats.statuses[403] == 2
