"""Ship an SAP Cloud Integration iFlow and run it: package, upload, configure, deploy, call, undeploy.

Steps: zip the iFlow sources kept next to this DAG (what a CI checkout would hold), create or update
the design-time artifact from the zip (rerunning never creates a duplicate), set its externalized
parameters (an unknown name fails before any write), deploy it and wait until the runtime artifact is
STARTED, call its HTTP endpoint once with a payload and wait on the message it created (a retried
task reconnects to its earlier call's message instead of calling twice), then undeploy it.

Point the ``sap_cloud_integration_default`` connection at your tenant (paste the ``api`` plan key as
``service_key`` and the ``integration-flow`` plan key as ``runtime_service_key``), or run
``make demo`` to try it against the local sandbox.
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from datetime import datetime, timedelta
from pathlib import Path

from airflow import DAG

try:
    from airflow.sdk import task
except ImportError:  # Airflow 2.11
    from airflow.decorators import task

from airflow_provider_sapplan.operators.sap_cloud_integration import (
    SapCloudIntegrationDeployOperator,
    SapCloudIntegrationTriggerFlowOperator,
    SapCloudIntegrationUndeployOperator,
    SapCloudIntegrationUpdateConfigurationOperator,
    SapCloudIntegrationUploadArtifactOperator,
)

ARTIFACT_ID = "Orders_Release"
PACKAGE_ID = "SandboxPackage"
SOURCES = Path(__file__).parent / "resources" / "orders_release"

with DAG(
    dag_id="sap_cloud_integration_release",
    description="Upload, configure and deploy an iFlow, call it and wait on its message, then undeploy it.",
    start_date=datetime(2026, 1, 1),
    schedule=None,
    catchup=False,
    tags=["sap", "cloud-integration", "example"],
    default_args={
        "sap_cloud_integration_conn_id": "sap_cloud_integration_default",
        "retries": 2,  # a start whose answer was lost is not resent by the HTTP layer: docs/RELIABILITY.md
        "retry_delay": timedelta(seconds=10),
    },
) as dag:

    @task
    def package_iflow() -> str:
        """Zip the iFlow sources (as a CI job would) and return the zip's path."""
        output = Path(os.environ.get("SAPPLAN_DEMO_OUTPUT") or tempfile.gettempdir())
        output.mkdir(parents=True, exist_ok=True)
        target = output / f"{ARTIFACT_ID}.zip"
        with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(SOURCES.rglob("*")):
                if path.is_file():
                    archive.write(path, path.relative_to(SOURCES).as_posix())
        return str(target)

    upload = SapCloudIntegrationUploadArtifactOperator(
        task_id="upload_iflow", artifact_id=ARTIFACT_ID, package_id=PACKAGE_ID, source=package_iflow()
    )

    configure = SapCloudIntegrationUpdateConfigurationOperator(
        task_id="set_parameters",
        artifact_id=ARTIFACT_ID,
        parameters={"ReceiverHost": "erp.example.com", "BatchSize": "250"},
    )

    deploy = SapCloudIntegrationDeployOperator(
        task_id="deploy_iflow",
        artifact_id=ARTIFACT_ID,
        deferrable=True,
        poll_interval=5,
        timeout=timedelta(minutes=15),
        not_found_grace=timedelta(minutes=5),
    )

    call_flow = SapCloudIntegrationTriggerFlowOperator(
        task_id="release_orders",
        artifact_id=ARTIFACT_ID,
        data={"airflow_run_id": "{{ run_id }}", "orders": [{"id": "4711", "quantity": 3}]},
        headers={"X-Source": "airflow"},
        deferrable=True,
        poll_interval=5,
        timeout=timedelta(minutes=30),
    )

    undeploy = SapCloudIntegrationUndeployOperator(
        task_id="undeploy_iflow", artifact_id=ARTIFACT_ID, poll_interval=5, timeout=timedelta(minutes=10)
    )

    upload >> configure >> deploy >> call_flow >> undeploy
