"""The Anaplan connection form (type ``anaplan``), declared once for Airflow 2.x and 3.x."""

from __future__ import annotations

from airflow_provider_sapplan.core.forms import ConnectionForm, FieldKind, FormField

_CERT_ONLY = "Certificate auth only."
_PEM_OR_PATH = (
    "PEM text as exported (the -----BEGIN ...----- block), or the path of a PEM file readable on the Airflow "
    "workers and triggerer."
)

ANAPLAN_FORM = ConnectionForm(
    conn_type="anaplan",
    hook_class_name="airflow_provider_sapplan.hooks.anaplan.AnaplanHook",
    hook_name="Anaplan",
    hidden_fields=("host", "schema", "port"),
    relabeling={"login": "Anaplan user (email)", "password": "Password (basic auth only)"},
    placeholders={"login": "integration.user@example.com"},
    fields=(
        FormField(
            "auth_type",
            "Authentication",
            "How the connection signs in: with the user's password, or with a CA-issued certificate and its "
            "private key (the password is then not used).",
            kind=FieldKind.CHOICE,
            choices=(("basic", "user and password"), ("certificate", "CA certificate and private key")),
            default="basic",
        ),
        FormField(
            "certificate",
            "Certificate (certificate auth)",
            f"The CA-issued client certificate: {_PEM_OR_PATH} {_CERT_ONLY}",
            kind=FieldKind.MULTILINE,
            example="/opt/airflow/anaplan/cert.pem",
        ),
        FormField(
            "private_key",
            "Private key (certificate auth)",
            f"The certificate's RSA private key: {_PEM_OR_PATH} {_CERT_ONLY}",
            kind=FieldKind.SECRET_MULTILINE,
            example="/opt/airflow/anaplan/key.pem",
        ),
        FormField(
            "private_key_password",
            "Private key password",
            f"The private key's passphrase, only if the key is encrypted. {_CERT_ONLY}",
            kind=FieldKind.PASSWORD,
        ),
        FormField(
            "encoded_data_format",
            "Certificate payload format",
            f"How the signed nonce is encoded; keep v2 unless Anaplan asks for v1. {_CERT_ONLY}",
            kind=FieldKind.CHOICE,
            choices=(("v2", "timestamped nonce, Anaplan's current format"), ("v1", "random nonce, legacy")),
            default="v2",
        ),
        FormField(
            "workspace_id",
            "Default workspace id",
            "The workspace tasks use when they name none: 32 hexadecimal characters, from the model's URL in "
            "Anaplan (after /workspaces/) or from GET /workspaces. Empty: every task names its workspace.",
            example="8a868cd97d1e2f3b017d2f4a5b6c0001",
        ),
        FormField(
            "model_id",
            "Default model id",
            "The model tasks use when they name none: 32 hexadecimal characters, from the model's URL in "
            "Anaplan (after /models/) or from GET /workspaces/<id>/models. Empty: every task names its model.",
            example="75A40874E6B64FA3AE0743278996850F",
        ),
        FormField(
            "auth_url",
            "Auth URL",
            "Anaplan's authentication service. Leave empty for Anaplan's own (the example).",
            example="https://auth.anaplan.com",
        ),
        FormField(
            "api_url",
            "API URL",
            "Anaplan's Integration API v2. Leave empty for Anaplan's own (the example).",
            example="https://api.anaplan.com/2/0",
        ),
        FormField(
            "timeout",
            "Request timeout (seconds)",
            "How long one HTTP request may wait for Anaplan: one number (read timeout; connecting waits at most "
            "10 s of it), or connect and read seconds separated by a comma (10, 600). Empty: 10, 300.",
            example="300",
        ),
        FormField(
            "verify",
            "TLS verification",
            "Empty or 'true': check Anaplan's TLS certificates against the system's CAs. A path: check them "
            "against that CA bundle (a file on the workers and triggerer). 'false': no check (test set-ups only).",
            example="/etc/ssl/certs/corporate-ca.pem",
        ),
        FormField(
            "requests_per_minute",
            "Requests per minute (tenant budget)",
            "The most requests this Airflow process sends to the tenant in a minute, shared by every task, sensor "
            "and trigger using it; polls are spread out and a 429 holds everyone back. Empty: 600 (Anaplan's "
            "documented limit). 0: no budget.",
            example="600",
        ),
    ),
)
