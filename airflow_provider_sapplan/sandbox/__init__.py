"""Local emulator of the platforms' HTTP APIs, for tests, demos and benchmarks.

``python -m airflow_provider_sapplan.sandbox --port 8080`` serves the fakes in the foreground and
prints how to point Airflow connections at them; :class:`SandboxServer` does the same in-process::

    from airflow_provider_sapplan.sandbox import SandboxServer

    with SandboxServer(time_scale=0.05) as sandbox:
        sandbox.anaplan.configure("112000000001", outcome="fail", failed_rows=2)
        ...  # point a hook at sandbox.url + "/anaplan/api/2/0"

Only the standard library is used (plus ``cryptography`` for Anaplan certificate logins).
"""

from __future__ import annotations

from .cli import main
from .server import PLATFORMS, SandboxServer

__all__ = ["PLATFORMS", "SandboxServer", "main"]
