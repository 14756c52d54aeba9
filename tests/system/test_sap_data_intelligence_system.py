"""The DI example DAG under a real scheduler and triggerer (processes from test_real_airflow)."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.system.test_real_airflow import DEADLINE_SECONDS, Processes, airflow_stack, query

pytestmark = pytest.mark.system

__all__ = ["airflow_stack"]  # the fixture, imported for pytest

DAG_ID = "sap_data_intelligence_replication"
DEFERRED = ("resume_flow", "suspend_flow", "run_check_pipeline")


def test_replication_window_runs_under_scheduler_and_triggerer(airflow_stack: tuple[Processes, Path, str]) -> None:
    procs, db, url = airflow_stack
    deadline = time.time() + DEADLINE_SECONDS
    while not query(db, "select dag_id from dag where dag_id = ?", DAG_ID):
        procs.check_alive()
        assert time.time() < deadline, f"{DAG_ID} was never parsed"
        time.sleep(2)
    subprocess.run(["airflow", "dags", "unpause", DAG_ID], env=procs.env, check=True, capture_output=True)
    subprocess.run(["airflow", "dags", "trigger", DAG_ID], env=procs.env, check=True, capture_output=True)

    # Unpausing may also start the latest scheduled run: max_active_runs=1 runs them one after the other.
    states: list[str] = []
    while time.time() < deadline:
        states = [row[0] for row in query(db, "select state from dag_run where dag_id = ?", DAG_ID)]
        if states and all(state in ("success", "failed") for state in states):
            break
        procs.check_alive()
        time.sleep(3)
    runs = len(states)
    tasks = query(db, "select task_id, state from task_instance where dag_id = ?", DAG_ID)
    assert states and set(states) == {"success"}, f"runs ended {states}: {tasks}\n{procs.log('scheduler')[-3000:]}"
    assert sorted(tasks) == sorted((task, "success") for task in DEFERRED for _ in range(runs))

    trigger_logs = procs.log("triggerer") + "".join(
        path.read_text(errors="replace") for path in (db.parent / "logs").rglob("*trigger*")
    )
    for task_id in DEFERRED:
        fired = [line for line in trigger_logs.splitlines() if task_id in line and "'status': 'success'" in line]
        assert fired, f"no trigger event for {task_id} in the triggerer's logs:\n{trigger_logs[-3000:]}"

    with urllib.request.urlopen(f"{url}/_sandbox/sap_data_intelligence/state", timeout=10) as response:
        sandbox_state = json.load(response)
    assert sandbox_state["change_requests"] == 2 * runs and sandbox_state["graph_starts"] == runs
    statuses = {t["name"]: t["status"] for t in sandbox_state["flows"]["RF_SALES"]}
    assert statuses == {"VBAK": "SUSPENDED", "VBAP": "SUSPENDED", "KNA1": "COMPLETED"}
