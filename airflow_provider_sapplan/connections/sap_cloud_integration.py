"""The SAP Cloud Integration connection form (type ``sap_cloud_integration``), for Airflow 2.x and 3.x.

Two service keys, because Cloud Integration issues two kinds of token: the ``api`` plan's key calls the
OData API (``/api/v1``), the ``integration-flow`` plan's key calls deployed flows (``/http/...``). Host,
login and password serve basic auth (Neo and some Cloud Foundry set-ups) when no key is given.
"""

from __future__ import annotations

from airflow_provider_sapplan.core.forms import ConnectionForm, FieldKind, FormField

SERVICE_KEYS = "Service keys"

SAP_CLOUD_INTEGRATION_FORM = ConnectionForm(
    conn_type="sap_cloud_integration",
    hook_class_name="airflow_provider_sapplan.hooks.sap_cloud_integration.SapCloudIntegrationHook",
    hook_name="SAP Cloud Integration",
    hidden_fields=("schema", "port"),
    relabeling={
        "host": "Tenant URL (basic auth only)",
        "login": "User (basic auth only)",
        "password": "Password (basic auth only)",
    },
    placeholders={"host": "https://mytenant.it-cpi018.cfapps.eu10.hana.ondemand.com"},
    fields=(
        FormField(
            "service_key",
            "API service key (JSON)",
            "The whole service key of the Process Integration Runtime 'api' plan, pasted as JSON: an 'oauth' "
            "section with clientid, clientsecret, url (the tenant's API host) and tokenurl, or with certificate, "
            "key and the cert token URL for an x509 key. Empty: basic auth with Tenant URL, User and Password.",
            kind=FieldKind.SECRET_MULTILINE,
            section=SERVICE_KEYS,
            example='{"oauth": {"clientid": "sb-...", "clientsecret": "...", "url": '
            '"https://<sub>.it-cpi018.cfapps.eu10.hana.ondemand.com", "tokenurl": '
            '"https://<sub>.authentication.eu10.hana.ondemand.com/oauth/token"}}',
        ),
        FormField(
            "runtime_service_key",
            "Integration-flow service key (JSON)",
            "The service key of the 'integration-flow' plan, used to call flow endpoints (/http/...); its "
            "oauth.url is the runtime host. An 'api' token cannot call flows. Empty: basic auth for flows.",
            kind=FieldKind.SECRET_MULTILINE,
            section=SERVICE_KEYS,
            example='{"oauth": {"clientid": "sb-...", "clientsecret": "...", "url": '
            '"https://<sub>.it-cpi018-rt.cfapps.eu10.hana.ondemand.com", "tokenurl": "..."}}',
        ),
        FormField(
            "runtime_url",
            "Runtime URL",
            "Only when flows are served from another host than the integration-flow key (or the tenant URL) says.",
            example="https://<sub>.it-cpi018-rt.cfapps.eu10.hana.ondemand.com",
        ),
        FormField(
            "web_ui_url",
            "Web UI URL",
            "Optional: the tenant's web UI, so task instances link to the artifact and its messages.",
            example="https://<sub>.integrationsuite.cfapps.eu10.hana.ondemand.com",
        ),
        FormField(
            "timeout",
            "Request timeout (seconds)",
            "How long one HTTP request may wait: one number (read timeout), or connect and read seconds "
            "separated by a comma. Flows that answer slowly may need more. Empty: 10, 120.",
            example="120",
        ),
    ),
)
