"""One finish per task try: the non-deferrable path downloads an export's file once, on every Airflow line.

Airflow 3.3's durable-execution mixin calls ``poll_until_complete`` and then ``get_job_result``; the
operator must not fetch the status again, download again or log success twice.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from airflow_provider_sapplan.operators.anaplan import AnaplanRunExportOperator
from airflow_provider_sapplan.sandbox import SandboxServer
from airflow_provider_sapplan.sandbox.anaplan.models import EXPORT_FORECAST_ID

pytestmark = pytest.mark.integration


def _count(live: SandboxServer, method: str, fragment: str) -> int:
    return sum(n for route, n in live.stats.requests.items() if route.startswith(method) and route.endswith(fragment))


@pytest.mark.parametrize("durable_store", [True, False], ids=["task_state_store", "no_store"])
def test_non_deferrable_export_downloads_once(
    live: SandboxServer, tmp_path: Path, monkeypatch: Any, durable_store: bool
) -> None:
    real_sleep = time.sleep
    monkeypatch.setattr("airflow_provider_sapplan.core.operator.time.sleep", lambda s: real_sleep(0.05))
    context: dict[str, Any] = {"ti": mock.MagicMock(stats_tags={})}
    if durable_store:
        store: dict[str, Any] = {}
        task_store = mock.MagicMock(spec_set=["get", "set"])
        task_store.get.side_effect = store.get
        task_store.set.side_effect = store.__setitem__
        context["task_state_store"] = task_store
    target = tmp_path / "forecast.csv"
    op = AnaplanRunExportOperator(
        task_id="export", export_id=EXPORT_FORECAST_ID, destination=str(target), deferrable=False
    )
    succeeded = mock.Mock(wraps=op.succeeded)
    monkeypatch.setattr(op, "succeeded", succeeded)
    result = op.execute(context)
    assert result["download"]["bytes"] == target.stat().st_size > 0
    assert succeeded.call_count == 1
    assert _count(live, "GET", "/files/{file}/chunks") == 1
    assert live.stats.tasks_started[EXPORT_FORECAST_ID] == 1
