"""The SAP Data Intelligence connection form (type ``sap_data_intelligence``), for Airflow 2.x and 3.x.

DI answers HTTP basic auth with the user written ``tenant\\user``; the tenant may instead sit in its
own field. The replication management (RMS) API path and the monitors' local time zone are extras.
"""

from __future__ import annotations

from airflow_provider_sapplan.core.forms import ConnectionForm, FormField

SAP_DATA_INTELLIGENCE_FORM = ConnectionForm(
    conn_type="sap_data_intelligence",
    hook_class_name="airflow_provider_sapplan.hooks.sap_data_intelligence.SapDataIntelligenceHook",
    hook_name="SAP Data Intelligence",
    hidden_fields=("schema",),
    relabeling={"host": "Tenant URL", "login": "User (tenant\\user)", "password": "Password"},
    placeholders={
        "host": "https://vsystem.ingress.<cluster>.dhaas-live.shoot.live.k8s-hana.ondemand.com",
        "login": "default\\etl_user",
    },
    fields=(
        FormField(
            "tenant",
            "Tenant",
            "Only when User is the bare user name: the DI tenant, sent as tenant\\user. Empty when User "
            "already reads tenant\\user.",
            example="default",
        ),
        FormField(
            "rms_api_path",
            "RMS API path",
            "Path of the replication management API on the tenant. Empty: /app/rms/api/dt/v1.",
            example="/app/rms/api/dt/v1",
        ),
        FormField(
            "timezone",
            "Monitor time zone",
            "IANA zone of the local timestamps the RMS monitors return (they carry no zone). Empty: UTC.",
            example="Europe/Berlin",
        ),
        FormField(
            "timeout",
            "Request timeout (seconds)",
            "How long one HTTP request may wait: one number (read timeout), or connect and read seconds "
            "separated by a comma. Empty: 10, 60.",
            example="60",
        ),
    ),
)
