"""Every example DAG passes dag.test() against the sandbox (real Airflow, no mocks)."""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_provider_sapplan.sandbox import SandboxServer
from example_dags.run_demo import DAGS, load_dag

pytestmark = pytest.mark.integration

EXAMPLE_DAGS = sorted(p.stem for p in DAGS.glob("*.py") if p.stem not in ("__init__", "run_demo"))


def test_there_are_example_dags() -> None:
    assert "anaplan_planning_cycle" in EXAMPLE_DAGS


@pytest.mark.parametrize("dag_id", EXAMPLE_DAGS)
def test_example_dag_succeeds(dag_id: str, live: SandboxServer, airflow_db: Path) -> None:
    dag_run = load_dag(dag_id).test()
    assert str(dag_run.state).endswith("success")
    if dag_id == "anaplan_planning_cycle":
        assert dict(live.stats.tasks_started) == {"112000000001": 1, "118000000001": 1, "116000000001": 1}
        assert (airflow_db / "forecast.csv").stat().st_size > 0
        assert live.stats.auth_requests["anaplan"] == 1
    if dag_id == "sap_data_intelligence_replication":
        backend = live.sap_data_intelligence
        assert backend.change_requests == 2 and backend.graph_starts == 1  # resume + suspend; one pipeline run
        statuses = {t["name"]: t["status"] for t in backend.task_monitors("RF_SALES")}
        assert statuses == {"VBAK": "SUSPENDED", "VBAP": "SUSPENDED", "KNA1": "COMPLETED"}
