"""The example DAGs under real Airflow processes: scheduler, DAG processor, triggerer (and API server on 3.x).

The process stack is tests/system/stack.py; the deferred waits are completed by the triggerer
process and the run is observed through the metadata database.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.system.stack import DEADLINE_SECONDS, AirflowStack, Processes, query, run_state

pytestmark = pytest.mark.system

__all__ = ["DEADLINE_SECONDS", "Processes", "airflow_stack", "query", "run_state"]


@pytest.fixture
def airflow_stack(tmp_path: Path) -> Iterator[tuple[Processes, Path, str]]:
    """The stack as (processes, metadata database, sandbox URL), stopped after the test."""
    with AirflowStack(tmp_path) as stack:
        yield stack.procs, stack.db, stack.url


# DAG id -> its deferrable tasks, whose waits the triggerer must complete.
DEFERRED_TASKS = {
    "anaplan_planning_cycle": ("import_actuals", "monthly_close", "export_forecast"),
    "sap_job_scheduling_run": ("run_job_now",),
}


def test_example_dags_run_under_scheduler_and_triggerer(airflow_stack: tuple[Processes, Path, str]) -> None:
    procs, db, url = airflow_stack
    deadline = time.time() + DEADLINE_SECONDS
    for dag_id in DEFERRED_TASKS:
        while not query(db, "select dag_id from dag where dag_id = ?", dag_id):
            procs.check_alive()
            assert time.time() < deadline, f"{dag_id} was never parsed"
            time.sleep(2)
        subprocess.run(["airflow", "dags", "unpause", dag_id], env=procs.env, check=True, capture_output=True)
        subprocess.run(["airflow", "dags", "trigger", dag_id], env=procs.env, check=True, capture_output=True)

    states: dict[str, str | None] = {}
    while time.time() < deadline:
        states = {dag_id: run_state(db, dag_id) for dag_id in DEFERRED_TASKS}
        if all(state in ("success", "failed") for state in states.values()):
            break
        procs.check_alive()
        time.sleep(3)
    tasks = query(db, "select dag_id, task_id, state, try_number from task_instance")
    assert all(state == "success" for state in states.values()), (
        f"runs ended {states}: {tasks}\n{procs.log('scheduler')[-3000:]}"
    )
    assert all(row[2] == "success" for row in tasks) and len(tasks) == 8

    # The deferred waits were completed by the triggerer process (its log lines land in the task logs
    # on Airflow 3, in the triggerer's own output on 2.11).
    trigger_logs = procs.log("triggerer") + "".join(
        path.read_text(errors="replace") for path in (db.parent / "logs").rglob("*trigger*")
    )
    for task_id in (task for group in DEFERRED_TASKS.values() for task in group):
        fired = [line for line in trigger_logs.splitlines() if task_id in line and "'status': 'success'" in line]
        assert fired, f"no trigger event for {task_id} in the triggerer's logs:\n{trigger_logs[-3000:]}"

    with urllib.request.urlopen(f"{url}/_sandbox/stats", timeout=10) as response:
        started = json.load(response)["tasks_started"]
    anaplan = {key: value for key, value in started.items() if not key.startswith("jss:")}
    assert anaplan == {"112000000001": 1, "118000000001": 1, "116000000001": 1}
    assert [value for key, value in started.items() if key.startswith("jss:")] == [1]  # exactly one job run
