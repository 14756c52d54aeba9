"""SAP Cloud Integration example DAG and operators through dag.test() against the real sandbox."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_sapplan.sandbox import SandboxServer
from example_dags.run_demo import load_dag

pytestmark = pytest.mark.integration


def test_release_dag_ships_and_runs_the_flow_once(live: SandboxServer, airflow_db: Path) -> None:
    dag_run = load_dag("sap_cloud_integration_release").test()
    assert str(dag_run.state).endswith("success")
    state = live.sap_cloud_integration.inspect()
    counters = state["counters"]
    assert counters["deploys:Orders_Release"] == 1
    assert counters["flow_calls:/orders/release"] == 1
    assert counters["undeploys"] == 1
    assert counters["configuration_updates"] == 2
    messages = [m for m in state["messages"] if m["artifact_id"] == "Orders_Release"]
    assert [m["Status"] for m in messages] == ["COMPLETED"]
    assert messages[0]["CorrelationId"].startswith("airflow-") and messages[0]["CorrelationId"].endswith("-try1")
    assert (airflow_db / "Orders_Release.zip").stat().st_size > 0
    assert live.stats.auth_requests["sap_cloud_integration"] == 2  # one token per plan, cached
    # The flow's answer travels from before the deferral to the task's return value.
    result = _return_value(dag_run, "release_orders")
    assert result["Status"] == "COMPLETED" and result["reconnected"] is False
    assert json.loads(result["response"]["body"])["status"] == "accepted"
    assert _return_value(dag_run, "deploy_iflow")["Status"] == "STARTED"


def _return_value(dag_run: Any, task_id: str) -> Any:
    from airflow_provider_sapplan._compat import AIRFLOW_V_3_0_PLUS

    if AIRFLOW_V_3_0_PLUS:
        from airflow.models.xcom import XComModel
        from airflow.utils.session import create_session

        with create_session() as session:
            query = XComModel.get_many(
                run_id=dag_run.run_id, key="return_value", task_ids=task_id, dag_ids=dag_run.dag_id
            )
            row = session.execute(query).scalars().first()
            return XComModel.deserialize_value(row)
    from airflow.models.xcom import XCom

    return XCom.get_one(run_id=dag_run.run_id, key="return_value", task_id=task_id, dag_id=dag_run.dag_id)
