"""Provider metadata read by Airflow's providers manager (entry point ``apache_airflow_provider``).

The ``connection-types`` (with the ``conn-fields`` and ``ui-field-behaviour`` that Airflow 3.2+ reads
without importing the hooks) are rendered from the forms declared in :mod:`airflow_provider_sapplan.connections`;
the hooks' ``get_connection_form_widgets`` render the same declarations for Airflow 2.x.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_sapplan import __version__
from airflow_provider_sapplan.connections import CONNECTION_FORMS

PLATFORMS: tuple[tuple[str, str, str], ...] = (
    ("Anaplan", "anaplan", "https://help.anaplan.com/"),
    ("SAP BTP Job Scheduling", "sap_job_scheduling", "https://help.sap.com/docs/job-scheduling"),
    ("SAP Cloud Integration", "sap_cloud_integration", "https://help.sap.com/docs/cloud-integration"),
    ("SAP Data Intelligence", "sap_data_intelligence", "https://help.sap.com/docs/SAP_DATA_INTELLIGENCE"),
    ("SAP Analytics Cloud", "sap_analytics_cloud", "https://help.sap.com/docs/SAP_ANALYTICS_CLOUD"),
)


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": "airflow-provider-sapplan",
        "name": "SAP planning and integration (Anaplan, SAP BTP, SAC, DI, CPI)",
        "description": "Hooks, operators, sensors and triggers for Anaplan and SAP planning and integration platforms.",
        "versions": [__version__],
        "integrations": [
            {"integration-name": name, "external-doc-url": url, "tags": ["service"]} for name, _, url in PLATFORMS
        ],
        **{
            role: [
                {"integration-name": name, "python-modules": [f"airflow_provider_sapplan.{role}.{module}"]}
                for name, module, _ in PLATFORMS
            ]
            for role in ("hooks", "operators", "sensors", "triggers")
        },
        "connection-types": [form.provider_info_entry() for form in CONNECTION_FORMS],
        "extra-links": [
            "airflow_provider_sapplan.operators.anaplan.AnaplanModelLink",
            "airflow_provider_sapplan.operators.sap_job_scheduling.SapJobSchedulingJobLink",
            "airflow_provider_sapplan.operators.sap_cloud_integration.SapCloudIntegrationLink",
            "airflow_provider_sapplan.operators.sap_data_intelligence.SapDataIntelligenceFlowLink",
            "airflow_provider_sapplan.operators.sap_data_intelligence.SapDataIntelligenceGraphLink",
            "airflow_provider_sapplan.operators.sap_analytics_cloud.SapAnalyticsCloudTenantLink",
        ],
    }
