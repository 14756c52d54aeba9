"""A scheduled replication window on SAP Data Intelligence, plus a pipeline run.

The DI scheduler cannot schedule replication flows or a scheduled delta (Ian Henry's blog, 2022):
this DAG does. Each run resumes the flow's inactive tasks, waits until every task has finished its
initial load (or is replicating deltas with the initial load done), suspends the flow again and
waits until its tasks are suspended; then it runs a pipeline (e.g. a post-load check) and waits.

Point the ``sap_data_intelligence_default`` connection at your tenant (Host = tenant URL, Login =
``tenant\\user``), or run ``make demo`` to try it against the local sandbox.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow import DAG

from airflow_provider_sapplan.operators.sap_data_intelligence import (
    SapDataIntelligenceRunGraphOperator,
    SapDataIntelligenceStartFlowOperator,
    SapDataIntelligenceStopFlowOperator,
)

FLOW = "RF_SALES"
# The run's start day: manual runs on Airflow 3 have no logical date (so no ``ds``).
LOAD_DATE = "{{ (dag_run.start_date or macros.datetime.utcnow()).strftime('%Y-%m-%d') }}"

with DAG(
    dag_id="sap_data_intelligence_replication",
    description="Replication window: resume an RMS flow, wait until its tasks replicate, suspend it; run a pipeline.",
    start_date=datetime(2026, 1, 1),
    schedule="0 2 * * *",
    catchup=False,
    max_active_runs=1,  # two windows at once would send competing change requests to one flow
    tags=["sap", "data-intelligence", "example"],
    default_args={
        "sap_data_intelligence_conn_id": "sap_data_intelligence_default",
        "retries": 2,  # a start whose answer was lost is not resent by the HTTP layer: docs/RELIABILITY.md
        "retry_delay": timedelta(seconds=10),
    },
) as dag:
    resume_flow = SapDataIntelligenceStartFlowOperator(
        task_id="resume_flow",
        flow_name=FLOW,
        target_state="initial_load_complete",
        max_retrying=timedelta(minutes=30),
        deferrable=True,
        poll_interval=5,
        max_poll_interval=15,
        timeout=timedelta(hours=2),
    )

    suspend_flow = SapDataIntelligenceStopFlowOperator(
        task_id="suspend_flow",
        flow_name=FLOW,
        deferrable=True,
        poll_interval=5,
        max_poll_interval=15,
        timeout=timedelta(minutes=30),
    )

    run_pipeline = SapDataIntelligenceRunGraphOperator(
        task_id="run_check_pipeline",
        graph="com.example.sales.check_replication",
        name="airflow-{{ ti.dag_id }}-{{ ti.try_number }}",
        configuration_substitutions={"LOAD_DATE": LOAD_DATE, "FLOW": FLOW},
        deferrable=True,
        poll_interval=5,
        timeout=timedelta(minutes=30),
    )

    resume_flow >> suspend_flow >> run_pipeline
