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


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": "airflow-provider-sapplan",
        "name": "SAP planning and integration (Anaplan, SAP BTP, SAC, DI, CPI)",
        "description": "Hooks, operators, sensors and triggers for Anaplan and SAP planning and integration platforms.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "Anaplan",
                "external-doc-url": "https://help.anaplan.com/",
                "tags": ["service"],
            }
        ],
        "hooks": [
            {"integration-name": "Anaplan", "python-modules": ["airflow_provider_sapplan.hooks.anaplan"]},
        ],
        "operators": [
            {"integration-name": "Anaplan", "python-modules": ["airflow_provider_sapplan.operators.anaplan"]},
        ],
        "sensors": [
            {"integration-name": "Anaplan", "python-modules": ["airflow_provider_sapplan.sensors.anaplan"]},
        ],
        "triggers": [
            {"integration-name": "Anaplan", "python-modules": ["airflow_provider_sapplan.triggers.anaplan"]},
        ],
        "connection-types": [
            {
                "hook-class-name": "airflow_provider_sapplan.hooks.anaplan.AnaplanHook",
                "hook-name": "Anaplan",
                "connection-type": "anaplan",
                "ui-field-behaviour": ANAPLAN_UI_FIELD_BEHAVIOUR,
                "conn-fields": ANAPLAN_CONN_FIELDS,
            },
        ],
        "extra-links": ["airflow_provider_sapplan.operators.anaplan.AnaplanModelLink"],
    }
