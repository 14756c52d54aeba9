"""Provider metadata read by Airflow's providers manager (entry point ``apache_airflow_provider``).

Connection forms are declared here (``conn-fields`` and ``ui-field-behaviour``), which Airflow 3.2+
reads without importing the hooks; the hooks' ``get_connection_form_widgets`` serve older versions.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_sapplan import __version__

_STRING = {"type": ["string", "null"]}
_SECRET = {"type": ["string", "null"], "format": "password"}

ANAPLAN_UI_FIELD_BEHAVIOUR: dict[str, Any] = {
    "hidden-fields": ["host", "schema", "port"],
    "relabeling": {"login": "Anaplan user (email)", "password": "Password (basic auth)"},
    "placeholders": {
        "login": "integration.user@example.com",
        "auth_type": "basic",
        "auth_url": "https://auth.anaplan.com",
        "api_url": "https://api.anaplan.com/2/0",
        "encoded_data_format": "v2",
        "workspace_id": "8a868cd97d1e2f3b017d2f4a5b6c0001",
        "model_id": "75A40874E6B64FA3AE0743278996850F",
    },
}

ANAPLAN_CONN_FIELDS: dict[str, Any] = {
    "auth_type": {
        "label": "Authentication",
        "description": "'basic' (login + password) or 'certificate' (CA certificate + private key).",
        "schema": {"type": ["string", "null"], "enum": ["basic", "certificate", None], "default": "basic"},
    },
    "certificate": {
        "label": "Certificate (PEM)",
        "description": "The CA-issued client certificate, PEM text. Certificate auth only.",
        "schema": {"type": ["string", "null"], "format": "multiline"},
    },
    "private_key": {
        "label": "Private key (PEM)",
        "description": "The certificate's RSA private key, PEM text. Certificate auth only.",
        "schema": _SECRET,
    },
    "private_key_password": {
        "label": "Private key password",
        "description": "Only if the private key is encrypted.",
        "schema": _SECRET,
    },
    "encoded_data_format": {
        "label": "Certificate payload format",
        "description": "'v2' (timestamped nonce, Anaplan's current format) or 'v1'.",
        "schema": {"type": ["string", "null"], "enum": ["v2", "v1", None], "default": "v2"},
    },
    "auth_url": {"label": "Auth URL", "description": "Default https://auth.anaplan.com", "schema": _STRING},
    "api_url": {"label": "API URL", "description": "Default https://api.anaplan.com/2/0", "schema": _STRING},
    "workspace_id": {"label": "Default workspace id", "schema": _STRING},
    "model_id": {"label": "Default model id", "schema": _STRING},
}

SAP_JOB_SCHEDULING_UI_FIELD_BEHAVIOUR: dict[str, Any] = {
    "hidden-fields": ["schema", "port"],
    "relabeling": {
        "host": "REST URL (lite plan only)",
        "login": "User (lite plan only)",
        "password": "Password (lite plan only)",
    },
    "placeholders": {
        "service_key": '{"url": "https://jobscheduler-rest.cfapps.eu10.hana.ondemand.com", "uaa": {...}}',
        "host": "https://jobscheduler-rest.cfapps.eu10.hana.ondemand.com",
        "dashboard_url": "https://jobscheduler-dashboard.cfapps.eu10.hana.ondemand.com/manageinstances/<id>",
    },
}

SAP_JOB_SCHEDULING_CONN_FIELDS: dict[str, Any] = {
    "service_key": {
        "label": "Service key (JSON)",
        "description": "Paste the instance's whole service key or binding credentials: url and uaa "
        "(clientid + clientsecret, or certificate + key + certurl for x509 keys).",
        "schema": {"type": ["string", "null"], "format": "password"},
    },
    "dashboard_url": {
        "label": "Dashboard URL",
        "description": "Optional: the instance's dashboard, for links from task instances to jobs.",
        "schema": _STRING,
    },
}

# --- SAP Analytics Cloud connection form (begin) ---------------------------------------------------
SAP_ANALYTICS_CLOUD_UI_FIELD_BEHAVIOUR: dict[str, Any] = {
    "hidden-fields": ["schema", "port"],
    "relabeling": {"host": "Tenant URL", "login": "OAuth client id", "password": "OAuth client secret"},
    "placeholders": {
        "host": "https://acme.eu10.hcs.cloud.sap",
        "login": "sb-1a2b3c4d-5e6f-7a8b-9c0d-1e2f3a4b5c6d!b12345|client!b3650",
        "token_url": "https://acme.authentication.eu10.hana.ondemand.com/oauth/token",
        "tenant": "G",
    },
}

SAP_ANALYTICS_CLOUD_CONN_FIELDS: dict[str, Any] = {
    "token_url": {
        "label": "Token URL",
        "description": "Required. System > Administration > App Integration shows it, e.g. "
        "https://acme.authentication.eu10.hana.ondemand.com/oauth/token (same region as the tenant).",
        "schema": _STRING,
    },
    "tenant": {
        "label": "Tenant letter (data management)",
        "description": "The tenant= parameter of the data-management service, e.g. G; needed only by the "
        "schedule operator and sensor.",
        "schema": _STRING,
    },
    "refresh_token": {
        "label": "Refresh token (user context)",
        "description": "Optional. A refresh token from an 'Interactive Usage' OAuth client (authorization-code "
        "flow); Multi Actions need it, and tenants whose data-management service rejects technical tokens.",
        "schema": _SECRET,
    },
}
# --- SAP Analytics Cloud connection form (end) -----------------------------------------------------

PLATFORMS: tuple[tuple[str, str, str], ...] = (
    ("Anaplan", "anaplan", "https://help.anaplan.com/"),
    ("SAP BTP Job Scheduling", "sap_job_scheduling", "https://help.sap.com/docs/job-scheduling"),
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
        "connection-types": [
            {
                "hook-class-name": "airflow_provider_sapplan.hooks.anaplan.AnaplanHook",
                "hook-name": "Anaplan",
                "connection-type": "anaplan",
                "ui-field-behaviour": ANAPLAN_UI_FIELD_BEHAVIOUR,
                "conn-fields": ANAPLAN_CONN_FIELDS,
            },
            {
                "hook-class-name": "airflow_provider_sapplan.hooks.sap_job_scheduling.SapJobSchedulingHook",
                "hook-name": "SAP BTP Job Scheduling",
                "connection-type": "sap_job_scheduling",
                "ui-field-behaviour": SAP_JOB_SCHEDULING_UI_FIELD_BEHAVIOUR,
                "conn-fields": SAP_JOB_SCHEDULING_CONN_FIELDS,
            },
            {
                "hook-class-name": "airflow_provider_sapplan.hooks.sap_analytics_cloud.SapAnalyticsCloudHook",
                "hook-name": "SAP Analytics Cloud",
                "connection-type": "sap_analytics_cloud",
                "ui-field-behaviour": SAP_ANALYTICS_CLOUD_UI_FIELD_BEHAVIOUR,
                "conn-fields": SAP_ANALYTICS_CLOUD_CONN_FIELDS,
            },
        ],
        "extra-links": [
            "airflow_provider_sapplan.operators.anaplan.AnaplanModelLink",
            "airflow_provider_sapplan.operators.sap_job_scheduling.SapJobSchedulingJobLink",
            "airflow_provider_sapplan.operators.sap_analytics_cloud.SapAnalyticsCloudTenantLink",
        ],
    }
