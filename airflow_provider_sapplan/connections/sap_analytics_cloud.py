"""The SAP Analytics Cloud connection form (type ``sap_analytics_cloud``), for Airflow 2.x and 3.x.

Login and password are an OAuth client's id and secret (System > Administration > App Integration);
the token URL is required. A refresh token from an *Interactive Usage* client gives user-context
tokens, which Multi Actions (and some tenants' data-management service) require.
"""

from __future__ import annotations

from airflow_provider_sapplan.core.forms import ConnectionForm, FieldKind, FormField

SAP_ANALYTICS_CLOUD_FORM = ConnectionForm(
    conn_type="sap_analytics_cloud",
    hook_class_name="airflow_provider_sapplan.hooks.sap_analytics_cloud.SapAnalyticsCloudHook",
    hook_name="SAP Analytics Cloud",
    hidden_fields=("schema", "port"),
    relabeling={"host": "Tenant URL", "login": "OAuth client id", "password": "OAuth client secret"},
    placeholders={
        "host": "https://acme.eu10.hcs.cloud.sap",
        "login": "sb-1a2b3c4d-5e6f-7a8b-9c0d-1e2f3a4b5c6d!b12345|client!b3650",
    },
    fields=(
        FormField(
            "token_url",
            "Token URL",
            "Required. The OAuth token endpoint that System > Administration > App Integration shows; it must be "
            "in the same region as the tenant. Airflow 3 shows it as *** when the connection is reopened (its name "
            "contains 'token'); the stored URL is kept unless you type a new one.",
            example="https://acme.authentication.eu10.hana.ondemand.com/oauth/token",
        ),
        FormField(
            "tenant",
            "Tenant letter (data management)",
            "The tenant= parameter of the data-management service (the letter in the tenant's internal URLs); "
            "needed only by the schedule operator and sensor.",
            example="G",
        ),
        FormField(
            "refresh_token",
            "Refresh token (user context)",
            "Optional. A refresh token from an 'Interactive Usage' OAuth client (authorization-code flow). Multi "
            "Actions need it, and so do tenants whose data-management service rejects technical tokens.",
            kind=FieldKind.PASSWORD,
        ),
        FormField(
            "timeout",
            "Request timeout (seconds)",
            "How long one HTTP request may wait: one number (read timeout), or connect and read seconds "
            "separated by a comma. Empty: 10, 120.",
            example="120",
        ),
    ),
)
