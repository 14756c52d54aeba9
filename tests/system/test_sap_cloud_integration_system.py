"""The SAP Cloud Integration example DAG under a real scheduler, triggerer (and API server on 3.x).

Reuses the process stack of test_real_airflow.py: a sandbox process, SQLite, the real executors.
The deploy and the message wait are deferred and completed by the triggerer process.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.system import test_real_airflow as real

pytestmark = pytest.mark.system

airflow_stack = real.airflow_stack  # the shared fixture: sandbox + scheduler + triggerer (+ api-server)

DAG_ID = "sap_cloud_integration_release"
DEFERRED = ("deploy_iflow", "release_orders")
TASKS = {"package_iflow", "upload_iflow", "set_parameters", "deploy_iflow", "release_orders", "undeploy_iflow"}


def test_release_dag_under_scheduler_and_triggerer(airflow_stack: tuple[real.Processes, Path, str]) -> None:
    procs, db, url = airflow_stack
    deadline = time.time() + real.DEADLINE_SECONDS
    while not real.query(db, "select dag_id from dag where dag_id = ?", DAG_ID):
        procs.check_alive()
        assert time.time() < deadline, f"{DAG_ID} was never parsed"
        time.sleep(2)
    subprocess.run(["airflow", "dags", "unpause", DAG_ID], env=procs.env, check=True, capture_output=True)
    subprocess.run(["airflow", "dags", "trigger", DAG_ID], env=procs.env, check=True, capture_output=True)

    state = None
    while time.time() < deadline:
        state = real.run_state(db, DAG_ID)
        if state in ("success", "failed"):
            break
        procs.check_alive()
        time.sleep(3)
    tasks = real.query(db, "select task_id, state, try_number from task_instance where dag_id = ?", DAG_ID)
    assert state == "success", f"run ended {state}: {tasks}\n{procs.log('scheduler')[-3000:]}"
    assert {row[0] for row in tasks} == TASKS and all(row[1] == "success" for row in tasks)

    trigger_logs = procs.log("triggerer") + "".join(
        path.read_text(errors="replace") for path in (db.parent / "logs").rglob("*trigger*")
    )
    for task_id in DEFERRED:
        fired = [line for line in trigger_logs.splitlines() if task_id in line and "'status': 'success'" in line]
        assert fired, f"no trigger event for {task_id} in the triggerer's logs:\n{trigger_logs[-3000:]}"

    with urllib.request.urlopen(f"{url}/_sandbox/sap_cloud_integration/state", timeout=10) as response:
        counters = json.load(response)["counters"]
    assert counters["deploys:Orders_Release"] == 1
    assert counters["flow_calls"] == 1  # exactly one call of the flow
    assert counters["undeploys"] == 1
