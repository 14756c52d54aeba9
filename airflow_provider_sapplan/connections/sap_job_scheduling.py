"""The SAP BTP Job Scheduling connection form (type ``sap_job_scheduling``), for Airflow 2.x and 3.x.

The service key comes first: every plan but lite authenticates with it. Host, login and password are
hidden; a lite-plan instance's REST URL, user and password have their own fields after the key (a
connection made outside the form may still keep them in Host, Login and Password).
"""

from __future__ import annotations

from airflow_provider_sapplan.core.forms import ConnectionForm, FieldKind, FormField

LITE_PLAN = "Lite plan only"

SAP_JOB_SCHEDULING_FORM = ConnectionForm(
    conn_type="sap_job_scheduling",
    hook_class_name="airflow_provider_sapplan.hooks.sap_job_scheduling.SapJobSchedulingHook",
    hook_name="SAP BTP Job Scheduling",
    hidden_fields=("host", "schema", "login", "password", "port"),
    fields=(
        FormField(
            "service_key",
            "Service key (JSON)",
            "The Job Scheduling instance's service key, pasted whole as JSON (cf service-key <instance> <key>, "
            "or the cockpit's service key view): 'url' and a 'uaa' section with clientid and clientsecret, or "
            "with certificate, key and certurl for an x509 key. Leave empty only for the lite plan below.",
            kind=FieldKind.SECRET_MULTILINE,
            section="Service key",
            example='{"url": "https://jobscheduler-rest.cfapps.eu10.hana.ondemand.com", "uaa": {"url": '
            '"https://<subdomain>.authentication.eu10.hana.ondemand.com", "clientid": "sb-...", '
            '"clientsecret": "..."}}',
        ),
        FormField(
            "dashboard_url",
            "Dashboard URL",
            "Optional: the instance's dashboard, so task instances link to their job. Empty: the service key's "
            "dashboard_url, if any.",
            example="https://jobscheduler-dashboard.cfapps.eu10.hana.ondemand.com/manageinstances/<instance id>",
        ),
        FormField(
            "timeout",
            "Request timeout (seconds)",
            "How long one HTTP request may wait for the service: one number (read timeout; connecting waits at "
            "most 10 s of it), or connect and read seconds separated by a comma (10, 120). Empty: 10, 60.",
            example="60",
        ),
        FormField(
            "lite_plan_url",
            "REST URL",
            "Lite plan only, without a service key: the instance's REST URL (the binding's 'url').",
            example="https://jobscheduler-rest.cfapps.eu10.hana.ondemand.com",
            section=LITE_PLAN,
        ),
        FormField(
            "lite_plan_user",
            "User",
            "Lite plan only, without a service key: the binding's 'user'.",
            example="sbss_abc123...",
            section=LITE_PLAN,
        ),
        FormField(
            "lite_plan_password",
            "Password",
            "Lite plan only, without a service key: the binding's 'password'.",
            kind=FieldKind.PASSWORD,
            section=LITE_PLAN,
        ),
    ),
)
