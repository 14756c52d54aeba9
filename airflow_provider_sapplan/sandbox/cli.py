"""Command line of the sandbox (``python -m airflow_provider_sapplan.sandbox``): serve in the foreground.

Prints, for each platform, a ready-to-paste ``export AIRFLOW_CONN_...`` line, then the line
``SANDBOX READY <url>`` (flushed) once the socket listens, so scripts can wait for it. Stops
cleanly on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import signal
import threading
from collections.abc import Sequence
from types import FrameType

from .credentials import SandboxCredentials
from .server import SandboxServer


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m airflow_provider_sapplan.sandbox",
        description="Serve local fakes of the Anaplan and SAP platform APIs for Airflow DAGs and tests.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port to listen on; 0 picks a free one (default 8080)")
    parser.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        help="multiplier for emulated durations, e.g. 0.1 runs tasks ten times faster (default 1.0)",
    )
    parser.add_argument(
        "--token-ttl",
        type=float,
        default=2100.0,
        help="lifetime of issued access tokens in seconds (default 2100, Anaplan's 35 minutes)",
    )
    parser.add_argument("--data-dir", default=None, help="directory for file content (default: a temporary one)")
    parser.add_argument(
        "--credentials",
        default=None,
        metavar="FILE",
        help='JSON file {"platform": {"key": "value"}} of credentials to accept instead of the documented ones '
        "(see docs/sandbox.md); they are never printed",
    )
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the sandbox until SIGTERM/SIGINT; returns the process exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    credentials = None
    if args.credentials:
        try:
            credentials = SandboxCredentials.from_file(args.credentials)
        except ValueError as exc:
            parser.error(str(exc))
    server = SandboxServer(
        host=args.host,
        port=args.port,
        time_scale=args.time_scale,
        token_ttl=args.token_ttl,
        data_dir=args.data_dir,
        verbose=args.verbose,
    )
    if credentials is not None:
        server.context.credentials = credentials
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        server.start()
        print(f"Sandbox listening on {server.url} (time scale {args.time_scale}, token TTL {args.token_ttl:g} s)")
        if server.context.credentials.configured:
            print(f"Credentials from {args.credentials} (not printed); connection hints left out")
        else:
            print("Point Airflow connections at it:")
            for line in server.connection_hints():
                print(f"  {line}")
        print(f"Control API: {server.url}/_sandbox/health, /_sandbox/stats, /_sandbox/faults, /_sandbox/reset")
        print(f"SANDBOX READY {server.url}", flush=True)
        while not stop.wait(0.5):
            pass
        print("Sandbox stopping", flush=True)
    finally:
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
