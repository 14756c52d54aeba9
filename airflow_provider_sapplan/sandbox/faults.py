"""Fault injection shared by every sandbox platform.

A rule matches requests by method and path and makes the server misbehave for a number of them:
answer with a status (429 with ``Retry-After``, 500, 503 ...), drop the connection without any
response, answer 200 with an HTML SAP/IdP login page (what an expired SSO session or a misrouted
proxy looks like to an API client), or delay the request before serving it normally.

Faults are checked before authentication and routing, for every request outside ``/_sandbox`` (the
control API is never faulted, so a broad rule cannot lock a test out of clearing it). Rules are
evaluated in the order they were added; the first rule that matches and still has budget applies.
"""

from __future__ import annotations

import random
import re
import threading
from dataclasses import asdict, dataclass, field, fields
from typing import Any

#: What a browser-oriented SAP Identity Authentication login page looks like to an API client.
HTML_LOGIN_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign In</title>
<link rel="stylesheet" href="/ui/resources/css/sap-identity.css">
</head>
<body class="ids-login">
<div id="logOnFormContainer">
<h1>Sign In</h1>
<form id="logOnForm" name="logOnForm" method="post" action="/saml2/idp/sso" autocomplete="off">
<input type="hidden" name="authenticity_token" value="f3b1c2d9e8a74c5b9a0e1d2c3b4a5f60">
<input type="hidden" name="xsrfProtection" value="Q2FwaXRhbGlzbSBpcyBub3QgYSBsb2dpbiBwYWdl">
<input type="hidden" name="spId" value="5f0c7d3e2b1a4c9d8e7f6a5b">
<input type="hidden" name="spName" value="https://sandbox.example.com">
<input type="hidden" name="targetUrl" value="">
<input type="hidden" name="sourceUrl" value="">
<input type="hidden" name="idpSSOEndpoint" value="/saml2/idp/sso">
<label for="j_username">Email or User Name</label>
<input type="text" id="j_username" name="j_username" autofocus>
<label for="j_password">Password</label>
<input type="password" id="j_password" name="j_password">
<button type="submit" id="logOnFormSubmit">Continue</button>
</form>
<a href="/ui/resetPassword">Forgot password?</a>
</div>
</body>
</html>
"""

_ACTION_FIELDS = ("status", "drop", "html_login", "delay_seconds")


@dataclass
class FaultRule:
    """One fault: which requests it matches, how many of them it hits, and what it does.

    Matching: ``method`` (``"*"`` for any) and ``path_regex`` (``re.search`` on the path without
    the query string). Budget: the first ``skip`` matching requests pass untouched, then the next
    ``times`` matching requests are hit (``times=-1``: every one, forever); with ``probability``
    below 1 each of those is hit only with that chance (a soak's "10% of requests answer 503"),
    and a request it spares is offered to the next rule. Action: ``status``
    (with optional ``headers`` and ``body``; a dict or list body is sent as JSON), ``drop``,
    ``html_login`` or ``delay_seconds`` (sleep, then serve normally; combined with ``status`` it
    sleeps and then answers with the status). Delays are wall-clock seconds, not scaled.
    """

    method: str = "*"
    path_regex: str = ""
    times: int = 1
    skip: int = 0
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    drop: bool = False
    html_login: bool = False
    delay_seconds: float = 0.0
    probability: float = 1.0
    id: int = 0
    matched: int = 0
    applied: int = 0

    def __post_init__(self) -> None:
        self.method = self.method.upper()
        try:
            re.compile(self.path_regex)
        except re.error as exc:
            raise ValueError(f"path_regex {self.path_regex!r} is not a valid regular expression: {exc}") from exc
        actions = [self.status is not None, self.drop, self.html_login, self.delay_seconds > 0]
        if not any(actions):
            raise ValueError(f"a fault needs one of {', '.join(_ACTION_FIELDS)}")
        if sum([self.status is not None, self.drop, self.html_login]) > 1:
            raise ValueError("status, drop and html_login are mutually exclusive")
        if self.status is not None and not 100 <= int(self.status) <= 599:
            raise ValueError(f"status {self.status} is not an HTTP status code")
        if self.times == 0 or self.times < -1:
            raise ValueError("times must be a positive count or -1 (forever)")
        if not 0 < self.probability <= 1:
            raise ValueError(f"probability {self.probability} must be above 0 and at most 1")
        if self.skip < 0 or self.delay_seconds < 0:
            raise ValueError("skip and delay_seconds must not be negative")
        self.headers = {str(k): str(v) for k, v in (self.headers or {}).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FaultRule:
        """Build a rule from the JSON accepted by ``POST /_sandbox/faults``; unknown keys are errors."""
        allowed = {f.name for f in fields(cls)} - {"id", "matched", "applied"}
        unknown = set(data) - allowed
        if unknown:
            raise ValueError(f"unknown fault keys: {', '.join(sorted(unknown))}")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        """JSON form of the rule, including its counters."""
        return asdict(self)

    @property
    def exhausted(self) -> bool:
        """True once the rule has hit all the requests it was meant to."""
        return self.times != -1 and self.applied >= self.times

    def matches(self, method: str, path: str) -> bool:
        """True if the rule's method and path pattern match the request."""
        return (self.method in ("*", method)) and re.search(self.path_regex, path) is not None


class FaultInjector:
    """Thread-safe ordered collection of :class:`FaultRule`; consulted by the server per request."""

    def __init__(self, seed: int | None = None) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []
        self._next_id = 1
        self._random = random.Random(seed)  # only draws for rules with probability < 1

    def add(self, rule: FaultRule | None = None, /, **kwargs: Any) -> FaultRule:
        """Add a rule, given either as a :class:`FaultRule` or as its keyword fields.

        Example: ``faults.add(method="PUT", path_regex=r"/chunks/1$", status=503, times=2)``.
        """
        if rule is None:
            rule = FaultRule(**kwargs)
        elif kwargs:
            raise TypeError("pass either a FaultRule or keyword fields, not both")
        with self._lock:
            rule.id = self._next_id
            self._next_id += 1
            self._rules.append(rule)
        return rule

    def clear(self) -> None:
        """Remove every rule."""
        with self._lock:
            self._rules.clear()

    @property
    def rules(self) -> list[FaultRule]:
        """A snapshot of the rules, in evaluation order."""
        with self._lock:
            return list(self._rules)

    def match(self, method: str, path: str) -> FaultRule | None:
        """Return the rule that hits this request (counting it), or None to serve it normally."""
        with self._lock:
            for rule in self._rules:
                if rule.exhausted or not rule.matches(method, path):
                    continue
                rule.matched += 1
                if rule.matched <= rule.skip:
                    continue
                if rule.probability < 1 and self._random.random() >= rule.probability:
                    continue
                rule.applied += 1
                return rule
        return None
