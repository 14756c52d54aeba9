"""One declaration of a connection form, rendered for every Airflow line the provider supports.

A platform declares its form once, as a :class:`ConnectionForm` of :class:`FormField` values
(``airflow_provider_sapplan/connections/<platform>.py``). This module renders it three ways:

* :meth:`ConnectionForm.provider_info_entry`: the ``connection-types`` entry of ``get_provider_info``,
  with the ``conn-fields`` JSON schemas and the ``ui-field-behaviour`` (hyphen keys) that Airflow 3.x
  reads without importing the hook;
* :meth:`ConnectionForm.form_widgets`: Airflow 2.x ``get_connection_form_widgets``, built only from the
  field classes 2.x accepts (``StringField``, ``PasswordField``, ``IntegerField``, ``BooleanField``;
  any other class makes the 2.x webserver drop the whole connection type);
* :meth:`ConnectionForm.field_behaviour`: Airflow 2.x ``get_ui_field_behaviour`` (underscore keys).

What each line can show, and how a kind is rendered on it:

========================  ==================================  =====================================
kind                      Airflow 3.x (``conn-fields``)        Airflow 2.x (wtforms)
========================  ==================================  =====================================
``STRING``                text input                           ``StringField``
``PASSWORD``              masked input (``format: password``)  ``PasswordField`` (masked, kept on edit)
``MULTILINE``             text area (``format: multiline``)    ``StringField`` (2.x allows no text area)
``SECRET_MULTILINE``      text area, value redacted on reopen  ``PasswordField``
                          when the field name is sensitive
``CHOICE``                drop-down of the choices, no null    ``StringField`` + the allowed values in
                          option (the type stays nullable)     the help text, checked on save
``INTEGER``               number input                         ``IntegerField`` (empty allowed)
``BOOLEAN``               check box                            ``BooleanField``
========================  ==================================  =====================================

Airflow 3.3 shows no placeholder for an extra field, so a field's ``example`` is appended to its
help text (and also given as a placeholder, which 2.x shows). wtforms and flask_appbuilder are
imported only inside :meth:`ConnectionForm.form_widgets`: declaring a form costs nothing else.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

STANDARD_FIELDS = frozenset({"host", "schema", "login", "password", "port", "extra", "description"})


class FieldKind(str, enum.Enum):
    """How a connection field is edited (see the module docstring for each line's rendering)."""

    STRING = "string"
    PASSWORD = "password"
    MULTILINE = "multiline"
    SECRET_MULTILINE = "secret_multiline"
    CHOICE = "choice"
    INTEGER = "integer"
    BOOLEAN = "boolean"


@dataclass(frozen=True)
class FormField:
    """One extra field of a connection form.

    :param name: the key in the connection's extras (plain name, no ``extra__<type>__`` prefix).
    :param label: what the form shows next to the input.
    :param description: help text: what goes here and when it is needed.
    :param kind: how it is edited (:class:`FieldKind`).
    :param choices: for ``CHOICE``: ``(value, what the user sees)`` pairs, in display order.
    :param default: value a new connection starts with (``None``: empty).
    :param example: an example value, appended to the help text as "Example: ...".
    :param section: Airflow 3.x groups fields with the same section under their own heading; 2.x
        prefixes the label with it instead.
    """

    name: str
    label: str
    description: str
    kind: FieldKind = FieldKind.STRING
    choices: tuple[tuple[str, str], ...] = ()
    default: str | int | bool | None = None
    example: str | None = None
    section: str | None = None

    def __post_init__(self) -> None:
        if not self.name.isidentifier() or self.name.startswith("extra__") or self.name in STANDARD_FIELDS:
            raise ValueError(f"Form field name {self.name!r} must be a plain identifier, not a standard field.")
        if not self.label.strip() or not self.description.strip():
            raise ValueError(f"Form field {self.name!r} needs a label and a description.")
        if (self.kind is FieldKind.CHOICE) != bool(self.choices):
            raise ValueError(f"Form field {self.name!r}: choices are given for CHOICE fields, and only for them.")
        if self.kind is FieldKind.CHOICE and self.default is not None and self.default not in self.values:
            raise ValueError(f"Form field {self.name!r}: default {self.default!r} is not one of {self.values}.")
        if self.kind is FieldKind.BOOLEAN and self.default:
            # 2.x refills a form only from truthy stored values: a stored False would reopen as True.
            raise ValueError(f"Boolean form field {self.name!r} must default to False (Airflow 2.x round trip).")

    @property
    def values(self) -> tuple[str, ...]:
        """The allowed values of a ``CHOICE`` field."""
        return tuple(value for value, _ in self.choices)

    @property
    def secret(self) -> bool:
        """Whether the value is masked (and kept unchanged when a reopened form is saved)."""
        return self.kind in (FieldKind.PASSWORD, FieldKind.SECRET_MULTILINE)

    @property
    def help_text(self) -> str:
        """The help text on Airflow 3.x: the description and the example value (3.3 shows no placeholder)."""
        text = self.description.strip()
        return f"{text} Example: {self.example}" if self.example else text

    @property
    def widget_help_text(self) -> str:
        """The help text on Airflow 2.x: a choice is a text input there, so it lists the allowed values."""
        if self.kind is not FieldKind.CHOICE:
            return self.help_text
        allowed = ", ".join(f"'{value}' ({display})" for value, display in self.choices)
        return f"{self.description.strip()} Allowed: {allowed}." + (f" Example: {self.example}" if self.example else "")

    def json_schema(self) -> dict[str, Any]:
        """The Airflow 3.x ``conn-fields`` schema: always nullable, never a ``null`` enum member."""
        schema: dict[str, Any]
        if self.kind is FieldKind.INTEGER:
            schema = {"type": ["integer", "null"]}
        elif self.kind is FieldKind.BOOLEAN:
            schema = {"type": "boolean"}
        else:
            schema = {"type": ["string", "null"]}
        if self.kind is FieldKind.PASSWORD:
            schema["format"] = "password"
        elif self.kind in (FieldKind.MULTILINE, FieldKind.SECRET_MULTILINE):
            schema["format"] = "multiline"
        elif self.kind is FieldKind.CHOICE:
            schema["enum"] = list(self.values)
            schema["values_display"] = dict(self.choices)
        if self.default is not None or self.kind is FieldKind.BOOLEAN:
            schema["default"] = self.default if self.default is not None else False
        if self.section:
            schema["section"] = self.section
        return schema

    def widget(self) -> Any:
        """The Airflow 2.x wtforms field (imports wtforms and flask_appbuilder)."""
        from flask_appbuilder.fieldwidgets import BS3PasswordFieldWidget, BS3TextFieldWidget
        from wtforms import BooleanField, IntegerField, PasswordField, StringField
        from wtforms.validators import AnyOf, Optional

        label = self.label
        if self.section and not self.label.startswith(self.section):
            label = f"{self.section}: {self.label}"
        common: dict[str, Any] = {"description": self.widget_help_text}
        if self.default is not None:
            common["default"] = self.default
        if self.secret:
            return PasswordField(label, widget=_kept_secret_widget(BS3PasswordFieldWidget)(), **common)
        if self.kind is FieldKind.INTEGER:
            return IntegerField(label, widget=BS3TextFieldWidget(), validators=[Optional()], **common)
        if self.kind is FieldKind.BOOLEAN:
            return BooleanField(label, **common)
        validators: list[Any] = []
        if self.kind is FieldKind.CHOICE:
            validators = [Optional(), AnyOf(self.values, message=f"Must be one of: {', '.join(self.values)}.")]
        return StringField(label, widget=BS3TextFieldWidget(), validators=validators, **common)


# What Airflow 2.x's connection view (airflow.www.views.SENSITIVE_FIELD_PLACEHOLDER) replaces with the
# stored value when a form is saved; a unit test checks the two agree.
SENSITIVE_PLACEHOLDER = "RATHER_LONG_SENSITIVE_FIELD_PLACEHOLDER"


@functools.cache
def _kept_secret_widget(base: type) -> type:
    """A 2.x password widget that keeps a stored secret when a reopened form is saved.

    Airflow 2.11 refills a reopened form's secret extra fields, but a password input renders empty, and
    saving an empty extra field deletes the stored value: re-saving would drop the service key. This
    widget renders 2.x's placeholder when the field holds a value (never the value itself), which 2.x's
    view replaces with the stored secret when the form is saved.
    """

    class KeptSecretPasswordWidget(base):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            super().__init__(hide_value=False)

        def __call__(self, field: Any, **kwargs: Any) -> Any:
            kwargs["value"] = SENSITIVE_PLACEHOLDER if field.data else ""
            return super().__call__(field, **kwargs)

    return KeptSecretPasswordWidget


@dataclass(frozen=True)
class ConnectionForm:
    """The connection form of one connection type, declared once for every Airflow line.

    :param conn_type: the connection type (``conn_type`` of the hook).
    :param hook_class_name: dotted path of the hook class.
    :param hook_name: the connection type's name in the UI's type list.
    :param fields: the extra fields, in the order the form shows them.
    :param hidden_fields: standard fields (host, schema, login, password, port) the form hides.
    :param relabeling: new labels of standard fields.
    :param placeholders: example values of standard fields (extra fields use ``FormField.example``).
    """

    conn_type: str
    hook_class_name: str
    hook_name: str
    fields: tuple[FormField, ...]
    hidden_fields: tuple[str, ...] = ()
    relabeling: Mapping[str, str] = field(default_factory=dict)
    placeholders: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        names = [f.name for f in self.fields]
        if len(set(names)) != len(names):
            raise ValueError(f"Connection form {self.conn_type!r} declares a field twice: {names}.")
        for where, keys in (
            ("hidden_fields", self.hidden_fields),
            ("relabeling", self.relabeling),
            ("placeholders", self.placeholders),
        ):
            unknown = set(keys) - STANDARD_FIELDS
            if unknown:
                raise ValueError(
                    f"Connection form {self.conn_type!r}: {where} names {sorted(unknown)}, which are not standard "
                    "fields; describe extra fields in their FormField."
                )
        shown_but_hidden = set(self.hidden_fields) & (set(self.relabeling) | set(self.placeholders))
        if shown_but_hidden:
            raise ValueError(f"Connection form {self.conn_type!r} relabels hidden fields {sorted(shown_but_hidden)}.")

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    def get(self, name: str) -> FormField:
        for form_field in self.fields:
            if form_field.name == name:
                return form_field
        raise KeyError(name)

    # -- Airflow 3.x: provider info -------------------------------------------------------------

    def conn_fields(self) -> dict[str, Any]:
        """``conn-fields``: label, description (help text with example) and JSON schema per field."""
        return {f.name: {"label": f.label, "description": f.help_text, "schema": f.json_schema()} for f in self.fields}

    def _placeholders(self) -> dict[str, str]:
        extra = {f.name: f.example for f in self.fields if f.example}
        return {**dict(self.placeholders), **extra}

    def ui_field_behaviour(self) -> dict[str, Any]:
        """``ui-field-behaviour`` of provider info (hyphen keys, as Airflow 3.x reads it)."""
        return {
            "hidden-fields": list(self.hidden_fields),
            "relabeling": dict(self.relabeling),
            "placeholders": self._placeholders(),
        }

    def provider_info_entry(self) -> dict[str, Any]:
        """The ``connection-types`` entry of ``get_provider_info``."""
        return {
            "hook-class-name": self.hook_class_name,
            "hook-name": self.hook_name,
            "connection-type": self.conn_type,
            "ui-field-behaviour": self.ui_field_behaviour(),
            "conn-fields": self.conn_fields(),
        }

    # -- Airflow 2.x: hook class methods --------------------------------------------------------

    def form_widgets(self) -> dict[str, Any]:
        """``get_connection_form_widgets`` for Airflow 2.x (imports wtforms and flask_appbuilder)."""
        return {f.name: f.widget() for f in self.fields}

    def field_behaviour(self) -> dict[str, Any]:
        """``get_ui_field_behaviour`` for Airflow 2.x (underscore keys)."""
        return {
            "hidden_fields": list(self.hidden_fields),
            "relabeling": dict(self.relabeling),
            "placeholders": self._placeholders(),
        }
