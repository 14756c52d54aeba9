"""Run an SAP BTP Job Scheduling job now and wait for its run, then pause the job's schedules.

Steps: make sure the job exists with the right definition (create or update by name: rerunning the
DAG never creates a duplicate), run it once right away with a payload (a one-time ``time: "now"``
schedule) and wait for the run's outcome in the triggerer, then deactivate the job's schedules.

Point the ``sap_job_scheduling_default`` connection at your instance (paste its service key), or run
``make demo`` to try it against the local sandbox.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow import DAG

from airflow_provider_sapplan.operators.sap_job_scheduling import (
    SapJobSchedulingCreateJobOperator,
    SapJobSchedulingRunJobOperator,
    SapJobSchedulingSetActiveOperator,
)

JOB = {
    "name": "planning_actuals_refresh",
    "description": "Refreshes planning actuals in the planning application (managed by Airflow)",
    "action": "https://planning-app.example.com/api/refresh-actuals",
    "httpMethod": "POST",
    "active": True,
}

with DAG(
    dag_id="sap_job_scheduling_run",
    description="Ensure a Job Scheduling job, run it now with a payload and wait, then pause its schedules.",
    start_date=datetime(2026, 1, 1),
    schedule=None,
    catchup=False,
    tags=["sap", "job-scheduling", "example"],
    default_args={
        "sap_job_scheduling_conn_id": "sap_job_scheduling_default",
        "retries": 2,  # a start whose answer was lost is not resent by the HTTP layer: docs/RELIABILITY.md
        "retry_delay": timedelta(seconds=10),
    },
) as dag:
    ensure_job = SapJobSchedulingCreateJobOperator(task_id="ensure_job", job=JOB)

    run_job = SapJobSchedulingRunJobOperator(
        task_id="run_job_now",
        job_id=ensure_job.output,
        data={"airflow_run_id": "{{ run_id }}", "source": "airflow"},
        deferrable=True,
        poll_interval=5,
        timeout=timedelta(minutes=30),
    )

    pause_schedules = SapJobSchedulingSetActiveOperator(
        task_id="deactivate_schedules", job_id=ensure_job.output, active=False
    )

    ensure_job >> run_job >> pause_schedules
