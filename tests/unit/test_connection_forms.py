"""Connection forms: one declaration, valid on Airflow 3.x (provider info) and 2.x (widgets), and in
agreement with what the hooks read. Iterates over every declared form, so a new platform is covered as
soon as it is registered in ``airflow_provider_sapplan.connections``."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from airflow_provider_sapplan.connections import CONNECTION_FORMS, form_for
from airflow_provider_sapplan.core.forms import STANDARD_FIELDS, ConnectionForm, FieldKind, FormField
from airflow_provider_sapplan.core.hook import parse_timeout, parse_verify
from airflow_provider_sapplan.core.pem import normalise_pem
from airflow_provider_sapplan.exceptions import ConnectionConfigError
from airflow_provider_sapplan.get_provider_info import get_provider_info
from tests.connection_forms_table import FORM_CASES, form_case

FORMS = {form.conn_type: form for form in CONNECTION_FORMS}
BEHAVIOUR_SCHEMA = "customized_form_field_behaviours.schema.json"


def _provider_entries() -> dict[str, dict[str, Any]]:
    return {entry["connection-type"]: entry for entry in get_provider_info()["connection-types"]}


def _hook_class(form: ConnectionForm) -> type:
    module, _, name = form.hook_class_name.rpartition(".")
    return getattr(importlib.import_module(module), name)


def _needs_fab() -> None:
    pytest.importorskip("flask_appbuilder", reason="the 2.x widgets need Flask-AppBuilder (Airflow 2.x)")


# -- the registry ---------------------------------------------------------------------------------


def test_every_declared_form_is_in_provider_info_with_form_values() -> None:
    entries = _provider_entries()
    assert set(entries) == set(FORMS)
    assert set(FORM_CASES) == set(FORMS), "every connection type needs its values in tests/connection_forms_table.py"
    for conn_type, form in FORMS.items():
        assert entries[conn_type] == form.provider_info_entry()
        hook = _hook_class(form)
        assert hook.conn_type == conn_type
        assert hook.hook_name == form.hook_name
        # Airflow reads the form methods from the hook's own __dict__, not inherited ones.
        assert {"get_connection_form_widgets", "get_ui_field_behaviour"} <= set(vars(hook))


def test_reading_provider_info_imports_no_hook_and_no_wtforms() -> None:
    code = (
        "import sys, airflow_provider_sapplan.get_provider_info as g; g.get_provider_info(); "
        "print([m for m in sys.modules if m.startswith(('wtforms', 'flask', 'airflow_provider_sapplan.hooks'))])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# -- Airflow 3.x: conn-fields and ui-field-behaviour ------------------------------------------------


@pytest.mark.parametrize("conn_type", sorted(FORMS))
def test_conn_fields_are_valid_for_airflow_3(conn_type: str) -> None:
    from jsonschema import Draft7Validator

    entry = _provider_entries()[conn_type]
    assert list(entry["conn-fields"]) == list(FORMS[conn_type].field_names)
    for name, spec in entry["conn-fields"].items():
        assert set(spec) == {"label", "description", "schema"}, name
        assert spec["label"].strip() and spec["description"].strip(), name
        schema = spec["schema"]
        Draft7Validator.check_schema(schema)
        if "enum" in schema:
            assert None not in schema["enum"], f"{name}: a null enum member shows as a 'null' choice"
            assert set(schema["values_display"]) == set(schema["enum"])
            if "default" in schema:
                assert schema["default"] in schema["enum"]
        if schema["type"] != "boolean":
            assert "null" in schema["type"], f"{name}: an empty field must stay valid"
        example = FORMS[conn_type].get(name).example
        if example:  # Airflow 3.3 shows no placeholder for extra fields: the example is in the help text
            assert f"Example: {example}" in spec["description"]


@pytest.mark.parametrize("conn_type", sorted(FORMS))
def test_ui_field_behaviour_uses_hyphen_keys_and_airflow_schema(conn_type: str) -> None:
    import airflow
    from jsonschema import validate

    behaviour = _provider_entries()[conn_type]["ui-field-behaviour"]
    assert set(behaviour) == {"hidden-fields", "relabeling", "placeholders"}
    as_airflow_reads_it = {key.replace("-", "_"): value for key, value in behaviour.items()}
    schema = json.loads((Path(airflow.__file__).parent / BEHAVIOUR_SCHEMA).read_text())
    validate(as_airflow_reads_it, schema)
    assert set(behaviour["hidden-fields"]) <= STANDARD_FIELDS
    assert not set(behaviour["hidden-fields"]) & set(behaviour["relabeling"])


@pytest.mark.parametrize("conn_type", sorted(FORMS))
def test_secret_text_areas_are_masked_by_airflow_on_reopen(conn_type: str) -> None:
    """A secret multiline field is a text area on 3.x: only its (sensitive) name keeps it redacted.

    (On 2.x it is a PasswordField, which the 2.x form masks whatever its name.)
    """
    secrets_masker = pytest.importorskip("airflow._shared.secrets_masker", reason="Airflow 3.x text areas only")
    should_hide_value_for_key = secrets_masker.should_hide_value_for_key

    for form_field in FORMS[conn_type].fields:
        if form_field.secret:
            assert should_hide_value_for_key(form_field.name), form_field.name


def test_providers_manager_offers_every_field_and_behaviour() -> None:
    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()
    widgets = manager.connection_form_widgets
    behaviours = manager.field_behaviours
    airflow_2 = importlib.util.find_spec("flask_appbuilder") is not None and not hasattr(manager, "_load_ui_metadata")
    for conn_type, form in FORMS.items():
        for form_field in form.fields:
            info = widgets[f"extra__{conn_type}__{form_field.name}"]
            assert info.field_name == form_field.name
            expected_sensitive = form_field.secret if airflow_2 else form_field.kind is FieldKind.PASSWORD
            assert info.is_sensitive == expected_sensitive, form_field.name
        assert behaviours[conn_type]["hidden_fields"] == list(form.hidden_fields)
        assert behaviours[conn_type]["relabeling"] == dict(form.relabeling)


# -- Airflow 2.x: widgets and behaviour -------------------------------------------------------------


@pytest.mark.parametrize("conn_type", sorted(FORMS))
def test_airflow_2_widgets_use_only_allowed_classes_with_help_text(conn_type: str) -> None:
    _needs_fab()
    from wtforms import BooleanField, IntegerField, PasswordField, StringField

    form = FORMS[conn_type]
    hook = _hook_class(form)
    widgets = hook.get_connection_form_widgets()
    assert list(widgets) == list(form.field_names)
    for name, widget in widgets.items():
        declared = form.get(name)
        assert widget.field_class in (StringField, PasswordField, IntegerField, BooleanField), name
        assert widget.kwargs["description"] == declared.widget_help_text
        assert (widget.field_class is PasswordField) == declared.secret, name
        if declared.kind is FieldKind.CHOICE:
            assert widget.field_class is StringField
            for value in declared.values:
                assert f"'{value}'" in widget.kwargs["description"]


@pytest.mark.parametrize("conn_type", sorted(FORMS))
def test_airflow_2_behaviour_uses_underscore_keys(conn_type: str) -> None:
    import airflow
    from jsonschema import validate

    form = FORMS[conn_type]
    behaviour = _hook_class(form).get_ui_field_behaviour()
    assert set(behaviour) == {"hidden_fields", "relabeling", "placeholders"}
    validate(behaviour, json.loads((Path(airflow.__file__).parent / BEHAVIOUR_SCHEMA).read_text()))
    assert behaviour["hidden_fields"] == list(form.hidden_fields)


def test_airflow_2_choice_field_rejects_other_values_and_accepts_empty() -> None:
    _needs_fab()
    from werkzeug.datastructures import MultiDict
    from wtforms import Form

    field_spec = FormField("mode", "Mode", "How.", kind=FieldKind.CHOICE, choices=(("a", "A"), ("b", "B")))
    number = FormField("retries", "Retries", "How many.", kind=FieldKind.INTEGER)
    form_class = type("F", (Form,), {"mode": field_spec.widget(), "retries": number.widget()})
    assert not form_class(MultiDict({"mode": "c"})).validate()
    assert form_class(MultiDict({"mode": "b", "retries": "3"})).validate()
    assert form_class(MultiDict({"mode": "", "retries": ""})).validate()


def test_airflow_2_secret_field_reopens_as_placeholder_never_as_the_secret() -> None:
    """2.11 deletes a stored secret extra saved empty; its placeholder makes the view restore the stored one."""
    _needs_fab()
    from airflow.www.views import SENSITIVE_FIELD_PLACEHOLDER
    from wtforms import Form

    from airflow_provider_sapplan.core.forms import SENSITIVE_PLACEHOLDER

    assert SENSITIVE_PLACEHOLDER == SENSITIVE_FIELD_PLACEHOLDER

    secret = FormField("token", "Token", "The token.", kind=FieldKind.PASSWORD)
    form = type("F", (Form,), {"token": secret.widget()})()
    assert 'value=""' in form.token()
    form.token.data = "s3cret-value"  # what 2.x's prefill_form puts in a reopened form
    html = form.token()
    assert f'value="{SENSITIVE_PLACEHOLDER}"' in html and "s3cret-value" not in html and 'type="password"' in html


# -- the declaration itself -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "host"}, "standard field"),
        ({"name": "extra__x__y"}, "plain identifier"),
        ({"description": " "}, "label and a description"),
        ({"kind": FieldKind.CHOICE}, "choices"),
        ({"choices": (("a", "A"),)}, "choices"),
        ({"kind": FieldKind.CHOICE, "choices": (("a", "A"),), "default": "b"}, "not one of"),
        ({"kind": FieldKind.BOOLEAN, "default": True}, "default to False"),
    ],
)
def test_form_field_refuses_declarations_a_form_cannot_show(kwargs: dict[str, Any], message: str) -> None:
    base: dict[str, Any] = {"name": "field", "label": "Field", "description": "What it is."}
    with pytest.raises(ValueError, match=message):
        FormField(**{**base, **kwargs})


def test_connection_form_refuses_duplicates_and_unknown_standard_fields() -> None:
    one = FormField("a", "A", "a.")
    with pytest.raises(ValueError, match="twice"):
        ConnectionForm("t", "m.H", "T", fields=(one, one))
    with pytest.raises(ValueError, match="not standard"):
        ConnectionForm("t", "m.H", "T", fields=(one,), relabeling={"a": "A"})
    with pytest.raises(ValueError, match="hidden"):
        ConnectionForm("t", "m.H", "T", fields=(one,), hidden_fields=("host",), relabeling={"host": "H"})
    with pytest.raises(KeyError):
        form_for("nope")


def test_every_kind_renders_for_both_lines() -> None:
    kinds = {
        FieldKind.STRING: ({"type": ["string", "null"]}, "StringField"),
        FieldKind.PASSWORD: ({"type": ["string", "null"], "format": "password"}, "PasswordField"),
        FieldKind.MULTILINE: ({"type": ["string", "null"], "format": "multiline"}, "StringField"),
        FieldKind.SECRET_MULTILINE: ({"type": ["string", "null"], "format": "multiline"}, "PasswordField"),
        FieldKind.INTEGER: ({"type": ["integer", "null"]}, "IntegerField"),
        FieldKind.BOOLEAN: ({"type": "boolean", "default": False}, "BooleanField"),
    }
    for kind, (schema, _) in kinds.items():
        assert FormField("f", "F", "f.", kind=kind).json_schema() == schema
    choice = FormField("f", "F", "f.", kind=FieldKind.CHOICE, choices=(("x", "Ex"),), default="x", section="S")
    assert choice.json_schema() == {
        "type": ["string", "null"],
        "enum": ["x"],
        "values_display": {"x": "Ex"},
        "default": "x",
        "section": "S",
    }
    if importlib.util.find_spec("flask_appbuilder") is None:
        return
    for kind, (_, class_name) in kinds.items():
        assert FormField("f", "F", "f.", kind=kind).widget().field_class.__name__ == class_name
    assert choice.widget().args[0] == "S: F"


# -- declarations and hooks agree ------------------------------------------------------------------


class _RecordingExtras(dict):
    """Extras that remember which keys the hook looked up."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.read: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:
        self.read.add(key)
        return super().get(key, default)

    def __getitem__(self, key: str) -> Any:
        self.read.add(key)
        return super().__getitem__(key)

    def __contains__(self, key: object) -> bool:
        self.read.add(str(key))
        return super().__contains__(key)


def _plain(conn_type: str, key: str) -> str:
    prefix = f"extra__{conn_type}__"
    return key[len(prefix) :] if key.startswith(prefix) else key


@pytest.mark.parametrize("conn_type", sorted(FORMS))
def test_hook_reads_exactly_the_declared_extras(conn_type: str) -> None:
    """Every extra the hook reads is in the form, and every field of the form is read by the hook."""
    form = FORMS[conn_type]
    case = form_case(conn_type, "http://127.0.0.1:9")
    read: set[str] = set()
    for overrides in (case.good, *[{**case.good, **variant} for variant in case.variants]):
        values = {**overrides}
        standard = {name: values.pop(name, None) for name in ("host", "login", "password", "schema", "port")}
        extras = _RecordingExtras({k: v for k, v in values.items() if v != ""})
        conn = SimpleNamespace(conn_id="form_test", conn_type=conn_type, extra=json.dumps(extras), **standard)
        hook = _hook_class(form)()
        hook.remember_connection(conn, extras)
        hook.build_client_config(conn, extras)
        read |= {_plain(conn_type, key) for key in extras.read}
    assert read - set(form.field_names) == set(), "the hook reads extras the form does not offer"
    assert set(form.field_names) - read == set(), "the form offers fields the hook never reads"


# -- what the text fields accept ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("300", (10.0, 300.0)),
        (5, (5.0, 5.0)),
        ("10, 600", (10.0, 600.0)),
        ("[3, 30]", (3.0, 30.0)),
        ([2, 20], (2.0, 20.0)),
        ("", None),
        (None, None),
    ],
)
def test_timeout_extra_reads_what_the_form_saves(value: Any, expected: Any) -> None:
    assert parse_timeout(value, "c") == expected


@pytest.mark.parametrize("value", ["soon", "0", "-1", "1, 2, 3", "10, x"])
def test_bad_timeout_names_the_fix(value: str) -> None:
    with pytest.raises(ConnectionConfigError, match=r"e\.g\. 10, 300"):
        parse_timeout(value, "c")


def test_verify_extra(tmp_path: Path) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text("x")
    assert parse_verify(None, "c") is True
    assert parse_verify("True", "c") is True
    assert parse_verify(False, "c") is False
    assert parse_verify("false", "c") is False
    assert parse_verify(str(bundle), "c") == str(bundle)
    with pytest.raises(ConnectionConfigError, match="must be true, false or the path of a CA bundle"):
        parse_verify(str(tmp_path / "missing.pem"), "c")


def test_pem_pasted_into_a_one_line_input_is_restored() -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    one_line = pem.replace("\n", "")  # what a browser's single-line input keeps
    restored = normalise_pem(one_line)
    assert restored == pem
    assert serialization.load_pem_private_key(restored.encode(), password=None).key_size == 1024
    assert normalise_pem(pem) == pem
    assert normalise_pem("/path/to/key.pem") == "/path/to/key.pem"


# -- the Airflow CLI lists every hook ---------------------------------------------------------------


def test_airflow_providers_hooks_lists_every_hook_without_import_error(tmp_path: Path) -> None:
    airflow_cli = Path(sys.executable).parent / "airflow"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(AIRFLOW_HOME=str(tmp_path), AIRFLOW__CORE__LOAD_EXAMPLES="False")
    result = subprocess.run(
        [str(airflow_cli), "providers", "hooks", "-o", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Error when importing hook" not in output
    (json_line,) = [line for line in result.stdout.splitlines() if line.startswith("[{")]
    listed = {hook["connection_type"]: hook for hook in json.loads(json_line)}
    for conn_type, form in FORMS.items():
        assert listed[conn_type]["class"] == form.hook_class_name
        assert listed[conn_type]["hook_name"] == form.hook_name


# -- what the forms' new fields do in the hooks ------------------------------------------------------


def test_lite_plan_fields_of_the_form_authenticate(monkeypatch: pytest.MonkeyPatch, requests_mock: Any) -> None:
    import base64

    from airflow_provider_sapplan.hooks.sap_job_scheduling import SapJobSchedulingHook
    from tests.conftest import set_connection

    api = "https://jobscheduler-rest.test"
    set_connection(
        monkeypatch,
        "jss_lite_form",
        conn_type="sap_job_scheduling",
        host="https://ignored.test",  # the form's fields win over Host/Login/Password
        login="ignored",
        extra={"lite_plan_url": api, "lite_plan_user": "sbss_user", "lite_plan_password": "pw-123", "timeout": ""},
    )
    requests_mock.get(f"{api}/scheduler/jobs/1", json={"_id": 1})
    SapJobSchedulingHook("jss_lite_form").get_job(1)
    assert (
        requests_mock.request_history[-1].headers["Authorization"]
        == "Basic " + base64.b64encode(b"sbss_user:pw-123").decode()
    )


def test_no_service_key_nor_lite_plan_names_both_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow_provider_sapplan.hooks.sap_job_scheduling import SapJobSchedulingHook
    from tests.conftest import set_connection

    set_connection(monkeypatch, "jss_empty_form", conn_type="sap_job_scheduling", extra={"lite_plan_user": "u"})
    with pytest.raises(ConnectionConfigError, match=r"service key JSON.*REST URL, User and Password"):
        SapJobSchedulingHook("jss_empty_form").get_conn()


@pytest.mark.parametrize(("typed", "verify"), [("", True), ("false", False), ("True", True)])
def test_anaplan_verify_field_reaches_the_client(monkeypatch: pytest.MonkeyPatch, typed: str, verify: bool) -> None:
    from airflow_provider_sapplan.hooks.anaplan import AnaplanHook
    from tests.conftest import set_connection

    set_connection(
        monkeypatch, "anaplan_verify", conn_type="anaplan", login="u@example.com", password="p",
        extra={"verify": typed, "timeout": "10, 600"},
    )  # fmt: skip
    config = AnaplanHook("anaplan_verify").get_conn().config
    assert config.verify is verify
    assert config.timeout == (10.0, 600.0)
