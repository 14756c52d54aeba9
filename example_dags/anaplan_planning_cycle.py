"""Monthly planning cycle in Anaplan: load actuals, run the close process, export the forecast.

Steps: write a CSV of actuals (stand-in for an extract from your warehouse), upload it to the model
file the import reads, run the import with a mapping parameter, run the month-end process, then run
the forecast export and download its file. Every wait is deferrable: no worker slot is held while
Anaplan works.

Point the ``anaplan_default`` connection at your tenant, or run ``make demo`` to try it against the
local sandbox.
"""

from __future__ import annotations

import csv
import os
import tempfile
from datetime import datetime, timedelta
from pathlib import Path

from airflow import DAG

try:  # Airflow 3
    from airflow.sdk import task
except ImportError:  # Airflow 2.11
    from airflow.decorators import task

from airflow_provider_sapplan.operators.anaplan import (
    AnaplanRunExportOperator,
    AnaplanRunImportOperator,
    AnaplanRunProcessOperator,
    AnaplanUploadFileOperator,
)

OUTPUT_DIR = os.environ.get("SAPPLAN_DEMO_OUTPUT", str(Path(tempfile.gettempdir()) / "sapplan-demo"))

with DAG(
    dag_id="anaplan_planning_cycle",
    description="Upload actuals, import, close the month, export and download the forecast.",
    start_date=datetime(2026, 1, 1),
    schedule=None,
    catchup=False,
    tags=["anaplan", "example"],
    default_args={
        "anaplan_conn_id": "anaplan_default",
        "retries": 2,  # a start whose answer was lost is not resent by the HTTP layer: docs/RELIABILITY.md
        "retry_delay": timedelta(seconds=10),
    },
) as dag:

    @task
    def extract_actuals(rows: int = 240) -> str:
        """Write this month's actuals as CSV (replace with an extract from your warehouse)."""
        target = Path(OUTPUT_DIR) / "actuals.csv"
        target.parent.mkdir(parents=True, exist_ok=True)
        regions = ["EMEA", "AMER", "APJ"]
        with target.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["Region", "Product", "Month", "Amount"])
            for i in range(rows):
                writer.writerow([regions[i % 3], f"P{i % 40:03d}", "Jan 26", f"{1000 + i * 7.5:.2f}"])
        return str(target)

    upload_actuals = AnaplanUploadFileOperator(
        task_id="upload_actuals",
        file_name="Actuals.csv",
        source=extract_actuals(),
    )

    import_actuals = AnaplanRunImportOperator(
        task_id="import_actuals",
        import_name="Load Actuals",
        mapping_parameters={"Version": "Actual"},
        deferrable=True,
        poll_interval=5,
        timeout=timedelta(hours=1),
        dump_destination=f"{OUTPUT_DIR}/dumps",
    )

    monthly_close = AnaplanRunProcessOperator(
        task_id="monthly_close",
        process_name="Monthly Close",
        deferrable=True,
        poll_interval=5,
        timeout=timedelta(hours=2),
    )

    export_forecast = AnaplanRunExportOperator(
        task_id="export_forecast",
        export_name="Export Forecast",
        destination=f"{OUTPUT_DIR}/forecast.csv",
        deferrable=True,
        poll_interval=5,
        timeout=timedelta(hours=1),
    )

    upload_actuals >> import_actuals >> monthly_close >> export_forecast
