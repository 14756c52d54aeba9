"""Planning close across Anaplan and SAP Analytics Cloud.

Steps: export the forecast from Anaplan and download it, import it into an SAC planning model through
the official Data Import API (columns checked against the model before any row is sent, rows pushed
in batches, the job deleted if anything fails), run the Multi Action that rolls the forecast forward,
then run the model's data-management schedule and wait for its run's log. Every wait is deferrable.

Point the ``anaplan_default`` and ``sap_analytics_cloud_default`` connections at your tenants (the SAC
one with a user-context refresh token: Multi Actions need it), or run ``make demo`` to try it
against the local sandbox.
"""

from __future__ import annotations

import os
import tempfile
from datetime import datetime, timedelta
from pathlib import Path

from airflow import DAG

from airflow_provider_sapplan.operators.anaplan import AnaplanRunExportOperator
from airflow_provider_sapplan.operators.sap_analytics_cloud import (
    SapAnalyticsCloudImportDataOperator,
    SapAnalyticsCloudRunMultiActionOperator,
    SapAnalyticsCloudRunScheduleOperator,
)

OUTPUT_DIR = os.environ.get("SAPPLAN_DEMO_OUTPUT", str(Path(tempfile.gettempdir()) / "sapplan-demo"))
SAC_MODEL_ID = "C9ZOF2L9O8JEEVDQ36A4J4Q0FG"
SAC_MODEL_NAME = "t.G:PLANNING_FORECAST"
SAC_SCHEDULE_ID = "F58CA15F78AA9039E200586F05E2BB93"
SAC_MAPPING_ID = "F48CA15F78AA9039E200586F05E2BB93"
SAC_MULTI_ACTION = "t.G:CEEF5D0F8B3C4A5D9E7F"

with DAG(
    dag_id="planning_close",
    description="Anaplan forecast -> SAC model (Data Import API) -> Multi Action -> data-management schedule.",
    start_date=datetime(2026, 1, 1),
    schedule=None,
    catchup=False,
    tags=["anaplan", "sap", "sac", "example"],
    default_args={
        "anaplan_conn_id": "anaplan_default",
        "sap_analytics_cloud_conn_id": "sap_analytics_cloud_default",
        "retries": 2,  # a start whose answer was lost is not resent by the HTTP layer: docs/RELIABILITY.md
        "retry_delay": timedelta(seconds=10),
    },
) as dag:
    export_forecast = AnaplanRunExportOperator(
        task_id="export_forecast",
        export_name="Export Forecast",
        destination=f"{OUTPUT_DIR}/forecast_for_sac.csv",
        deferrable=True,
        poll_interval=5,
        timeout=timedelta(hours=1),
    )

    import_forecast = SapAnalyticsCloudImportDataOperator(
        task_id="import_forecast_into_sac",
        model_id=SAC_MODEL_ID,
        import_type="factData",
        source=f"{OUTPUT_DIR}/forecast_for_sac.csv",
        mapping={"Date": "Month", "SignedData": "Forecast"},
        job_settings={"importMethod": "Update"},
        batch_size=500,
        invalid_rows_destination=f"{OUTPUT_DIR}/sac_invalid_rows.jsonl",
        deferrable=True,
        poll_interval=5,
        timeout=timedelta(hours=1),
    )

    roll_forward = SapAnalyticsCloudRunMultiActionOperator(
        task_id="roll_forecast_forward",
        multi_action_id=SAC_MULTI_ACTION,
        parameters={"Version": ["public.Forecast"], "Rate": 1.05},
        deferrable=True,
        poll_interval=5,
        timeout=timedelta(hours=1),
    )

    refresh_model = SapAnalyticsCloudRunScheduleOperator(
        task_id="run_data_management_schedule",
        schedule_id=SAC_SCHEDULE_ID,
        mapping_id=SAC_MAPPING_ID,
        model_name=SAC_MODEL_NAME,
        wait_for_running_run=True,
        rejections_destination=f"{OUTPUT_DIR}/sac_rejections.csv",
        deferrable=True,
        poll_interval=5,
        timeout=timedelta(hours=2),
    )

    export_forecast >> import_forecast >> roll_forward >> refresh_model
