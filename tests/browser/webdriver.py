"""A minimal W3C WebDriver client over ``requests``: enough to drive headless Chromium in the tests.

WebDriver is JSON over HTTP (https://www.w3.org/TR/webdriver2/): start ``chromedriver`` on a free
port, open a session with Chromium's options, then send one request per command. No Selenium needed.
"""

from __future__ import annotations

import base64
import contextlib
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1400,2200",
)
ELEMENT = "element-6066-11e4-a52e-4f735466cecf"  # the W3C key of an element reference


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class WebDriverError(RuntimeError):
    pass


class Browser:
    """One chromedriver process and one headless Chromium session (a fresh profile directory)."""

    def __init__(self, timeout: float = 20.0) -> None:
        self.timeout = timeout
        self.profile = tempfile.mkdtemp(prefix="sapplan-chromium-")
        self.port = free_port()
        self._driver = subprocess.Popen(
            [CHROMEDRIVER, f"--port={self.port}", "--allowed-ips=127.0.0.1"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.base = f"http://127.0.0.1:{self.port}"
        self.http = requests.Session()
        self._wait(lambda: self.http.get(f"{self.base}/status", timeout=2).json()["value"]["ready"], 20)
        capabilities = {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": CHROMIUM, "args": [*CHROMIUM_ARGS, f"--user-data-dir={self.profile}"]},
        }
        value = self._send("POST", "/session", {"capabilities": {"alwaysMatch": capabilities}})
        self.session = value["sessionId"]
        self.command("POST", "/timeouts", {"script": 150_000, "pageLoad": 60_000})

    # -- protocol -----------------------------------------------------------------------------

    def _send(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = self.http.request(method, self.base + path, json=body, timeout=60)
        payload = response.json()
        value = payload.get("value")
        if response.status_code >= 400:
            error = value.get("error") if isinstance(value, dict) else value
            message = value.get("message", "") if isinstance(value, dict) else ""
            raise WebDriverError(f"{method} {path}: {error}: {message.splitlines()[0] if message else ''}")
        return value

    def command(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        return self._send(method, f"/session/{self.session}{path}", body)

    def _wait(self, condition: Callable[[], Any], timeout: float | None = None) -> Any:
        deadline = time.monotonic() + (timeout or self.timeout)
        last: BaseException | None = None
        while time.monotonic() < deadline:
            try:
                result = condition()
                if result:
                    return result
            except Exception as err:  # not there yet: retry until the deadline
                last = err
            time.sleep(0.2)
        raise TimeoutError(f"Condition not met within {timeout or self.timeout}s (last error: {last!r})")

    # -- what the tests use -------------------------------------------------------------------

    def get(self, url: str) -> None:
        self.command("POST", "/url", {"url": url})

    @property
    def url(self) -> str:
        return self.command("GET", "/url")

    def script(self, source: str, *args: Any) -> Any:
        """Run ``source`` (a function body; ``arguments`` holds ``args``) in the page."""
        return self.command("POST", "/execute/sync", {"script": source, "args": list(args)})

    def find(self, css: str, timeout: float | None = None) -> str:
        """The first element matching ``css``, waiting for it; returns its reference."""
        return self._wait(
            lambda: self.command("POST", "/element", {"using": "css selector", "value": css})[ELEMENT], timeout
        )

    def find_all(self, css: str) -> list[str]:
        return [e[ELEMENT] for e in self.command("POST", "/elements", {"using": "css selector", "value": css})]

    def wait_for(self, condition: Callable[[], Any], timeout: float | None = None) -> Any:
        return self._wait(condition, timeout)

    def click(self, element: str) -> None:
        self.script("arguments[0].scrollIntoView({block: 'center'});", {ELEMENT: element})
        self.command("POST", f"/element/{element}/click", {})

    def clear(self, element: str) -> None:
        self.command("POST", f"/element/{element}/clear", {})

    def type(self, element: str, text: str) -> None:
        self.command("POST", f"/element/{element}/value", {"text": text})

    def paste(self, element: str, text: str) -> None:
        """Put ``text`` in an input at once, as a paste does (React inputs drop keys typed too fast).

        The value goes through the element's own setter, so a one-line input strips line breaks as it
        does for a real paste, and an ``input`` event tells the page's framework about it.
        """
        self.script(
            "const e = arguments[0]; const proto = e.tagName === 'TEXTAREA' ? HTMLTextAreaElement.prototype"
            " : HTMLInputElement.prototype; Object.getOwnPropertyDescriptor(proto, 'value').set.call(e, arguments[1]);"
            "e.dispatchEvent(new Event('input', {bubbles: true}));"
            "e.dispatchEvent(new Event('change', {bubbles: true}));",
            {ELEMENT: element},
            text,
        )

    def text(self, element: str) -> str:
        return self.command("GET", f"/element/{element}/text")

    def attribute(self, element: str, name: str) -> Any:
        return self.command("GET", f"/element/{element}/property/{name}")

    def screenshot(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(self.command("GET", "/screenshot")))
        return path

    def full_page_screenshot(self, path: Path) -> Path:
        """Resize the window to the page's height first, so the whole form is in the picture."""
        height = self.script("return Math.max(document.body.scrollHeight, document.documentElement.scrollHeight);")
        self.command("POST", "/window/rect", {"width": 1400, "height": min(max(int(height) + 200, 900), 6000)})
        return self.screenshot(path)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._send("DELETE", f"/session/{self.session}")
        self._driver.terminate()
        try:
            self._driver.wait(10)
        except subprocess.TimeoutExpired:
            self._driver.kill()
