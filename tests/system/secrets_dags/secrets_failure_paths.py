"""Failure-path DAGs of the secrets test (tests/system/test_secrets.py), all five platforms, no retries.

``secrets_paths`` (run alongside the example DAGs): per platform, a task whose connection carries a
wrong secret (401 / login page / undecryptable key), a remote job that fails (configured in the
sandbox), and tasks that succeed with the other kinds of credential (Anaplan certificate with an
encrypted key, Job Scheduling x509 and lite plan, Cloud Integration basic auth).

``secrets_http_500``, ``secrets_http_401``, ``secrets_login_page``: one task per platform with good
credentials, run while the sandbox answers every API call (not logins) with a 500, a 401 or an HTML
login page. The connections come from environment variables the test sets; no secret is in this file.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow import DAG

from airflow_provider_sapplan.operators.anaplan import (
    AnaplanRunActionOperator,
    AnaplanRunImportOperator,
    AnaplanRunProcessOperator,
)
from airflow_provider_sapplan.operators.sap_analytics_cloud import SapAnalyticsCloudRunMultiActionOperator
from airflow_provider_sapplan.operators.sap_cloud_integration import (
    SapCloudIntegrationDeployOperator,
    SapCloudIntegrationUpdateConfigurationOperator,
)
from airflow_provider_sapplan.operators.sap_data_intelligence import SapDataIntelligenceRunGraphOperator
from airflow_provider_sapplan.operators.sap_job_scheduling import (
    SapJobSchedulingCreateJobOperator,
    SapJobSchedulingRunJobOperator,
)

DEFAULTS = {"retries": 0}
WAIT = {"deferrable": True, "poll_interval": 2, "timeout": timedelta(minutes=5)}
MULTI_ACTION = "t.G:CEEF5D0F8B3C4A5D9E7F"
FAILING_MULTI_ACTION = "t.G:CEEF5D0F8B3C4A5DFAIL"
FAILING_GRAPH = "com.example.secrets.failing"


def _job(name: str) -> dict[str, object]:
    return {"name": name, "action": "https://planning-app.example.com/api/noop", "httpMethod": "POST", "active": True}


# task_id -> the state the secrets test expects
EXPECTED = {
    "anaplan_wrong_password": "failed",
    "anaplan_wrong_key_password": "failed",
    "anaplan_certificate_login": "success",
    "anaplan_failing_import": "failed",
    "jss_wrong_secret": "failed",
    "jss_failing_run": "failed",
    "jss_lite_plan": "success",
    "jss_x509": "success",
    "cpi_wrong_secret": "failed",
    "cpi_failing_deploy": "failed",
    "cpi_basic_auth": "success",
    "di_wrong_password": "failed",
    "di_failing_graph": "failed",
    "sac_wrong_secret": "failed",
    "sac_failing_multi_action": "failed",
}

with DAG(
    dag_id="secrets_paths",
    start_date=datetime(2026, 1, 1),
    schedule=None,
    catchup=False,
    default_args=DEFAULTS,
) as paths:
    AnaplanRunProcessOperator(
        task_id="anaplan_wrong_password", anaplan_conn_id="anaplan_wrong", process_id="118000000002"
    )
    AnaplanRunProcessOperator(
        task_id="anaplan_wrong_key_password", anaplan_conn_id="anaplan_cert_wrong", process_id="118000000002"
    )
    AnaplanRunActionOperator(
        task_id="anaplan_certificate_login", anaplan_conn_id="anaplan_cert", action_id="117000000001", **WAIT
    )
    AnaplanRunImportOperator(task_id="anaplan_failing_import", import_id="112000000002", **WAIT)
    SapJobSchedulingRunJobOperator(
        task_id="jss_wrong_secret", sap_job_scheduling_conn_id="sap_job_scheduling_wrong", job_id=1
    )
    SapJobSchedulingRunJobOperator(task_id="jss_failing_run", job_id=1, **WAIT)
    SapJobSchedulingCreateJobOperator(
        task_id="jss_lite_plan", sap_job_scheduling_conn_id="sap_job_scheduling_lite", job=_job("secrets_lite")
    )
    SapJobSchedulingCreateJobOperator(
        task_id="jss_x509", sap_job_scheduling_conn_id="sap_job_scheduling_x509", job=_job("secrets_x509")
    )
    SapCloudIntegrationDeployOperator(
        task_id="cpi_wrong_secret",
        sap_cloud_integration_conn_id="sap_cloud_integration_wrong",
        artifact_id="Orders_Import",
    )
    SapCloudIntegrationDeployOperator(task_id="cpi_failing_deploy", artifact_id="Orders_Import", **WAIT)
    SapCloudIntegrationUpdateConfigurationOperator(
        task_id="cpi_basic_auth",
        sap_cloud_integration_conn_id="sap_cloud_integration_basic",
        artifact_id="Orders_Import",
        parameters={"ReceiverHost": "erp2.example.com"},
    )
    SapDataIntelligenceRunGraphOperator(
        task_id="di_wrong_password", sap_data_intelligence_conn_id="sap_data_intelligence_wrong", graph=FAILING_GRAPH
    )
    SapDataIntelligenceRunGraphOperator(task_id="di_failing_graph", graph=FAILING_GRAPH, **WAIT)
    SapAnalyticsCloudRunMultiActionOperator(
        task_id="sac_wrong_secret",
        sap_analytics_cloud_conn_id="sap_analytics_cloud_wrong",
        multi_action_id=MULTI_ACTION,
    )
    SapAnalyticsCloudRunMultiActionOperator(
        task_id="sac_failing_multi_action", multi_action_id=FAILING_MULTI_ACTION, **WAIT
    )


def _fault_dag(dag_id: str) -> DAG:
    """One task per platform, good credentials, while the sandbox answers every API call with a fault."""
    with DAG(
        dag_id=dag_id, start_date=datetime(2026, 1, 1), schedule=None, catchup=False, default_args=DEFAULTS
    ) as dag:
        AnaplanRunProcessOperator(task_id="anaplan", process_id="118000000002")
        SapJobSchedulingRunJobOperator(task_id="jss", job_id=1)
        SapCloudIntegrationDeployOperator(task_id="cpi", artifact_id="Orders_Import")
        SapDataIntelligenceRunGraphOperator(task_id="di", graph=FAILING_GRAPH)
        SapAnalyticsCloudRunMultiActionOperator(task_id="sac", multi_action_id=MULTI_ACTION)
    return dag


http_500 = _fault_dag("secrets_http_500")
http_401 = _fault_dag("secrets_http_401")
login_page = _fault_dag("secrets_login_page")
