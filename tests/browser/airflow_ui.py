"""The Airflow UI of the installed line, started against a temporary home, and its connection form.

:class:`AirflowUI` runs ``airflow webserver`` (2.x, Flask-AppBuilder form, an admin user created with
the CLI) or ``airflow api-server`` (3.x, React form, simple auth manager with every user an admin) on a
free 127.0.0.1 port, and knows how to open, read, fill, save and test a connection form on that line.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

from airflow_provider_sapplan.core.forms import ConnectionForm, FieldKind, FormField
from tests.browser.webdriver import ELEMENT, Browser, free_port

AIRFLOW_BIN = Path(sys.executable).parent / "airflow"
STANDARD_INPUTS = ("host", "schema", "login", "password", "port")

_STORED = """
import json, sys
from airflow.models import Connection
from airflow.utils.session import create_session
with create_session() as session:
    conn = session.query(Connection).filter(Connection.conn_id == sys.argv[1]).one_or_none()
    print(json.dumps(None if conn is None else {
        "conn_type": conn.conn_type, "host": conn.host, "schema": conn.schema, "login": conn.login,
        "password": conn.password, "port": conn.port, "extra": conn.extra_dejson}))
"""


_ROW_BUTTON = "return arguments[0].querySelector(`button[aria-label='${arguments[1]}']`)"


class AirflowUI:
    """One Airflow UI server of the installed line; subclasses know their line's pages."""

    major = 0

    def __init__(self) -> None:
        import airflow

        self.version = airflow.__version__
        self.home = Path(tempfile.mkdtemp(prefix=f"sapplan-ui-{self.version}-"))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
        self.env.update(
            AIRFLOW_HOME=str(self.home),
            AIRFLOW__CORE__LOAD_EXAMPLES="False",
            AIRFLOW__CORE__TEST_CONNECTION="Enabled",
            AIRFLOW__CORE__DAGS_FOLDER=str(self.home / "dags"),
        )
        self._server: subprocess.Popen[bytes] | None = None
        self.log = self.home / "server.log"

    @staticmethod
    def for_installed_airflow() -> AirflowUI:
        import airflow

        return ApiServerUI() if int(airflow.__version__.split(".")[0]) >= 3 else WebserverUI()

    # -- processes ------------------------------------------------------------------------------

    def cli(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(AIRFLOW_BIN), *args], env=self.env, capture_output=True, text=True, timeout=timeout)

    def server_command(self) -> list[str]:
        raise NotImplementedError

    def prepare(self) -> None:
        """Create the metadata database (and whatever the line needs to log in)."""
        result = self.cli("db", "migrate", timeout=600)
        assert result.returncode == 0, result.stdout + result.stderr

    def start(self) -> None:
        self.prepare()
        with self.log.open("wb") as log:
            self._server = subprocess.Popen(
                self.server_command(), env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            if self._server.poll() is not None:
                raise RuntimeError(f"The Airflow UI server exited: {self.log.read_text()[-3000:]}")
            try:
                if requests.get(self.health_url, timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(1)
        raise TimeoutError(f"The Airflow UI did not answer within 240 s: {self.log.read_text()[-3000:]}")

    @property
    def health_url(self) -> str:
        raise NotImplementedError

    def stop(self) -> None:
        if self._server is not None and self._server.poll() is None:
            os.killpg(self._server.pid, 15)  # the server and the workers it started, all ours
            try:
                self._server.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self._server.pid, 9)
                self._server.wait(10)

    def stored(self, conn_id: str) -> dict[str, Any] | None:
        """The connection as the metadata database holds it (decrypted)."""
        result = subprocess.run(
            [sys.executable, "-c", _STORED, conn_id], env=self.env, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, result.stderr[-2000:]
        return json.loads(result.stdout.strip().splitlines()[-1])

    def cli_test(self, conn_id: str) -> tuple[bool, str]:
        """``airflow connections test``: the Test that works whatever the UI does."""
        result = self.cli("connections", "test", conn_id)
        output = result.stdout + result.stderr
        return "Connection success!" in output, output

    # -- the form (per line) ------------------------------------------------------------------------

    def login(self, browser: Browser) -> None:
        raise NotImplementedError

    def open_add_form(self, browser: Browser, conn_id: str, conn_type: str) -> None:
        raise NotImplementedError

    def open_edit_form(self, browser: Browser, conn_id: str) -> None:
        raise NotImplementedError

    def input_for(self, browser: Browser, form: ConnectionForm, name: str) -> str | None:
        """The visible input of standard field or extra field ``name`` (None when the form has none)."""
        raise NotImplementedError

    def field_text(self, browser: Browser, element: str) -> str:
        """The label and help text shown with an input."""
        raise NotImplementedError

    def expected_label(self, form_field: FormField) -> str:
        raise NotImplementedError

    def expected_help(self, form_field: FormField) -> str:
        raise NotImplementedError

    def keeps_line_breaks(self, form_field: FormField) -> bool:
        raise NotImplementedError

    def reveal(self, browser: Browser, element: str) -> None:
        """Make ``element`` visible (3.x folds sections)."""

    def fill(self, browser: Browser, form: ConnectionForm, values: dict[str, str]) -> None:
        for name, value in values.items():
            element = self.input_for(browser, form, name)
            assert element is not None, f"The form shows no input for {name!r}"
            if name in form.field_names and form.get(name).kind is FieldKind.CHOICE:
                self.choose(browser, element, form.get(name), value)
                continue
            browser.wait_for(lambda el=element: self._ready(browser, el), timeout=20)
            if "\n" in value or len(value) > 60:
                browser.paste(element, value)  # what an admin does with a key or a long URL
            elif value:
                browser.type(element, value)
                if self.value_of(browser, element) != value:
                    # A React input can drop keys typed while it re-renders: retype once as a paste.
                    browser.clear(element)
                    browser.paste(element, value)

    def _ready(self, browser: Browser, element: str) -> bool:
        """Open the element's section and clear it; raises (and is retried) while a section still folds."""
        self.reveal(browser, element)
        browser.clear(element)
        return True

    def choose(self, browser: Browser, element: str, form_field: FormField, value: str) -> None:
        self.reveal(browser, element)
        browser.clear(element)
        browser.type(element, value)

    def value_of(self, browser: Browser, element: str) -> str:
        return browser.attribute(element, "value") or ""

    def save(self, browser: Browser) -> None:
        raise NotImplementedError

    def press_test(self, browser: Browser, conn_id: str) -> tuple[bool, str]:
        """Press the form's or the list's Test button; (succeeded, message shown)."""
        raise NotImplementedError


class WebserverUI(AirflowUI):
    """Airflow 2.x: ``airflow webserver`` with Flask-AppBuilder's connection form."""

    major = 2

    def server_command(self) -> list[str]:
        return [str(AIRFLOW_BIN), "webserver", "--hostname", "127.0.0.1", "--port", str(self.port), "--workers", "1"]

    @property
    def health_url(self) -> str:
        return f"{self.url}/health"

    def prepare(self) -> None:
        super().prepare()
        result = self.cli(
            "users", "create", "--username", "admin", "--password", "admin", "--role", "Admin",
            "--email", "admin@example.com", "--firstname", "Form", "--lastname", "Test",
        )  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr

    def login(self, browser: Browser) -> None:
        browser.get(f"{self.url}/login/")
        if "/login" not in browser.url:  # already logged in: FAB redirects home
            return
        browser.type(browser.find("input[name=username]"), "admin")
        browser.type(browser.find("input[name=password]"), "admin")
        browser.click(browser.find("input[type=submit], button[type=submit]"))
        browser.wait_for(lambda: "/login" not in browser.url)

    def open_add_form(self, browser: Browser, conn_id: str, conn_type: str) -> None:
        browser.get(f"{self.url}/connection/add")
        browser.type(browser.find("#conn_id"), conn_id)
        known = browser.script("return Array.from(document.querySelectorAll('#conn_type option')).map(o => o.value)")
        assert conn_type in known, f"Airflow {self.version} does not offer connection type {conn_type!r}"
        browser.script(
            "const s = document.getElementById('conn_type'); s.value = arguments[0];"
            "s.dispatchEvent(new Event('change', {bubbles: true}));",
            conn_type,
        )
        browser.wait_for(lambda: browser.script("return document.getElementById('conn_type').value") == conn_type)

    def open_edit_form(self, browser: Browser, conn_id: str) -> None:
        browser.get(f"{self.url}/connection/list/?_flt_0_conn_id={conn_id}")
        link = browser.find("a[href*='/connection/edit/']")
        browser.get(browser.attribute(link, "href"))
        browser.find("#conn_id")

    def input_for(self, browser: Browser, form: ConnectionForm, name: str) -> str | None:
        element_id = name if name in STANDARD_INPUTS else f"extra__{form.conn_type}__{name}"
        found = browser.script(
            "const e = document.getElementById(arguments[0]); return e && e.offsetParent !== null ? e : null;",
            element_id,
        )
        return found[ELEMENT] if found else None

    def field_text(self, browser: Browser, element: str) -> str:
        return browser.script("return arguments[0].closest('tr').textContent", {ELEMENT: element})

    def expected_label(self, form_field: FormField) -> str:
        return form_field.widget().args[0]

    def expected_help(self, form_field: FormField) -> str:
        return form_field.widget_help_text

    def keeps_line_breaks(self, form_field: FormField) -> bool:
        return False  # 2.x allows no text area: every extra field is a one-line input

    def save(self, browser: Browser) -> None:
        button = browser.script(
            "return Array.from(document.querySelectorAll('form [type=submit]'))"
            ".find(b => b.offsetParent !== null) || null;"
        )
        assert button, "no visible Save button"
        browser.click(button[ELEMENT])
        # Saved: FAB redirects away from the form (to the list, or home after a direct visit).
        browser.wait_for(lambda: not re.search(r"/connection/(add|edit)", browser.url), timeout=60)

    def press_test(self, browser: Browser, conn_id: str) -> tuple[bool, str]:
        """2.11 shows the result in a green box even when the test failed: read the API's answer too."""
        browser.script(
            "document.querySelectorAll('#flash-messages, .alert').forEach(e => e.remove()); window.__test = null;"
            "$(document).off('ajaxComplete.formtest').on('ajaxComplete.formtest', (e, xhr, opts) => {"
            " if (opts.url.includes('connections/test')) window.__test = [xhr.status, xhr.responseText]; });"
        )
        browser.click(browser.find("#test-connection"))
        status, body = browser.wait_for(lambda: browser.script("return window.__test"), timeout=120)
        shown = browser.wait_for(
            lambda: browser.script(
                "const a = document.querySelector('.container .row .alert');"
                "return a && a.offsetParent !== null && a.textContent.trim() ? a.textContent.trim() : null;"
            )
        )
        assert status == 200, f"POST /api/v1/connections/test answered {status}: {body}"
        result = json.loads(body)
        assert _squash(result["message"]) in _squash(shown), f"the page shows {shown!r}, not {result['message']!r}"
        return bool(result["status"]), result["message"]


def _squash(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


class ApiServerUI(AirflowUI):
    """Airflow 3.x: ``airflow api-server`` with the React connection dialog."""

    major = 3

    def __init__(self) -> None:
        super().__init__()
        # The simple auth manager logs every visitor in as an admin: no login page to drive.
        self.env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS"] = "True"

    def server_command(self) -> list[str]:
        return [str(AIRFLOW_BIN), "api-server", "--host", "127.0.0.1", "--port", str(self.port)]

    @property
    def health_url(self) -> str:
        return f"{self.url}/api/v2/version"

    def login(self, browser: Browser) -> None:
        browser.get(f"{self.url}/connections")
        browser.wait_for(lambda: self._button(browser, "Add Connection"))

    @staticmethod
    def _button(browser: Browser, text: str, scope: str = "") -> str | None:
        found = browser.script(
            "return Array.from(document.querySelectorAll(arguments[0] + ' button'))"
            ".find(b => b.innerText.trim() === arguments[1]) || null;",
            scope,
            text,
        )
        return found[ELEMENT] if found else None

    def open_add_form(self, browser: Browser, conn_id: str, conn_type: str) -> None:
        from airflow_provider_sapplan.connections import form_for

        browser.get(f"{self.url}/connections")
        browser.click(browser.wait_for(lambda: self._button(browser, "Add Connection")))
        browser.type(browser.find("[role=dialog] input[name=connection_id]"), conn_id)
        combo = browser.find("[role=dialog] input[role=combobox]")
        browser.click(combo)
        browser.type(combo, form_for(conn_type).hook_name)
        option = browser.wait_for(
            lambda: browser.script(
                "return Array.from(document.querySelectorAll('[role=option]'))"
                ".find(o => o.innerText.trim() === arguments[0]) || null;",
                form_for(conn_type).hook_name,
            )
        )
        browser.click(option[ELEMENT])
        browser.wait_for(lambda: browser.find_all("[role=dialog] [name^=element_]"))

    def open_edit_form(self, browser: Browser, conn_id: str) -> None:
        browser.get(f"{self.url}/connections")
        row = browser.wait_for(lambda: self._row(browser, conn_id))
        browser.click(
            browser.script("return arguments[0].querySelector(\"button[aria-label='Edit Connection']\")", row)[ELEMENT]
        )
        browser.wait_for(lambda: browser.find_all("[role=dialog] [name^=element_]"))

    @staticmethod
    def _row(browser: Browser, conn_id: str) -> Any:
        return browser.script(
            "return Array.from(document.querySelectorAll('tr')).find(r => Array.from(r.querySelectorAll('td'))"
            ".some(td => td.innerText.trim() === arguments[0])) || null;",
            conn_id,
        )

    def input_for(self, browser: Browser, form: ConnectionForm, name: str) -> str | None:
        css = f"[role=dialog] [name={name}]" if name in STANDARD_INPUTS else f"[role=dialog] #element_{name}"
        if name in form.field_names and form.get(name).kind is FieldKind.CHOICE:
            css = f"[role=dialog] input[name=element_{name}]"  # the select's value holder
        found = browser.find_all(css)
        return found[0] if found else None

    def field_text(self, browser: Browser, element: str) -> str:
        return browser.script(
            "let e = arguments[0]; while (e && !(e.getAttribute('data-part') === 'root' && e.id.startsWith('field')))"
            " e = e.parentElement; return e ? e.textContent : '';",
            {ELEMENT: element},
        )

    def expected_label(self, form_field: FormField) -> str:
        return form_field.label

    def expected_help(self, form_field: FormField) -> str:
        return form_field.help_text

    def keeps_line_breaks(self, form_field: FormField) -> bool:
        return form_field.kind in (FieldKind.MULTILINE, FieldKind.SECRET_MULTILINE)

    def reveal(self, browser: Browser, element: str) -> None:
        trigger = browser.script(
            "const c = arguments[0].closest('[data-part=item-content]'); if (!c) return null;"
            "const t = document.getElementById(c.id.replace(':content:', ':trigger:'));"
            "return t && t.getAttribute('aria-expanded') === 'false' ? t : null;",
            {ELEMENT: element},
        )
        if trigger:
            browser.click(trigger[ELEMENT])
            browser.wait_for(
                lambda: browser.script(
                    "return arguments[0].closest('[hidden]') === null"
                    " && arguments[0].getBoundingClientRect().height > 0",
                    {ELEMENT: element},
                )
            )

    def choose(self, browser: Browser, element: str, form_field: FormField, value: str) -> None:
        if self.value_of(browser, element) == value:
            return
        combo = browser.script(
            "return arguments[0].parentElement.parentElement.querySelector('input[role=combobox]')", {ELEMENT: element}
        )[ELEMENT]
        self.reveal(browser, combo)
        browser.click(combo)
        display = dict(form_field.choices)[value]
        option = browser.wait_for(
            lambda: browser.script(
                "return Array.from(document.querySelectorAll('[role=option]'))"
                ".find(o => o.innerText.trim() === arguments[0]) || null;",
                display,
            )
        )
        browser.click(option[ELEMENT])

    def save(self, browser: Browser) -> None:
        browser.click(self._button(browser, "Save", "[role=dialog]"))
        browser.wait_for(lambda: not browser.find_all("[role=dialog]"), timeout=60)

    def press_test(self, browser: Browser, conn_id: str) -> tuple[bool, str]:
        browser.get(f"{self.url}/connections")
        row = browser.wait_for(lambda: self._row(browser, conn_id))
        browser.script("document.querySelectorAll('[data-scope=toast][data-part=root]').forEach(t => t.remove());")
        browser.click(
            browser.script("return arguments[0].querySelector(\"button[aria-label='Test Connection']\")", row)[ELEMENT]
        )
        toast = browser.wait_for(
            lambda: browser.script(
                "const t = document.querySelector('[data-scope=toast][data-part=root]');"
                "return t ? [t.getAttribute('data-type'), t.innerText] : null;"
            ),
            timeout=120,
        )
        return toast[0] == "success", toast[1]

    def api_test(self, browser: Browser, conn_id: str) -> tuple[bool, str]:
        """The 3.3.2 workaround through the API: test the stored connection as GET returns it.

        GET gives the stored port (null) and masked secrets; POST /connections/test with that body
        reuses the stored secrets, where the UI's body (port 0) is refused with 400 Bad Request.
        """
        result = browser.command(
            "POST",
            "/execute/async",
            {
                "script": "const done = arguments[arguments.length - 1]; (async () => {"
                "const got = await fetch('/api/v2/connections/' + encodeURIComponent(arguments[0]));"
                "const body = await got.json();"
                "const r = await fetch('/api/v2/connections/test', {method: 'POST',"
                " headers: {'Content-Type': 'application/json'}, body: JSON.stringify(body)});"
                "done([r.status, await r.text()]); })().catch(e => done([0, String(e)]));",
                "args": [conn_id],
            },
        )
        status, text = result
        assert status == 200, f"POST /api/v2/connections/test answered {status}: {text}"
        payload = json.loads(text)
        return bool(payload["status"]), payload["message"]
