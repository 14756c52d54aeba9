"""The contract between the sandbox server and one emulated platform.

Adding a platform means writing a package ``sandbox/<platform>/`` with a backend (state and
behaviour, plain Python, usable from tests) and a :class:`Platform` subclass in its ``routes.py``
that exposes the backend over HTTP as :class:`~.routing.Mount` objects, then listing the subclass
in :data:`~.server.PLATFORMS` (see ``docs/adding-a-platform.md``).
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from .credentials import SandboxCredentials
from .routing import Mount
from .stats import Stats


@dataclass
class SandboxContext:
    """What every platform gets from the server: timing knobs, a data directory and the stats.

    ``time_scale`` multiplies emulated durations (0.1 runs ten times faster); ``token_ttl`` is
    the lifetime of issued access tokens in seconds (real, not scaled, because clients compare
    it with their own clock); ``clock`` returns epoch seconds and can be replaced in tests;
    ``credentials`` are the logins the platforms accept (their documented defaults unless set).
    """

    time_scale: float
    token_ttl: float
    data_dir: Path
    stats: Stats
    clock: Callable[[], float] = field(default=time.time)
    credentials: SandboxCredentials = field(default_factory=SandboxCredentials)

    def scaled(self, seconds: float) -> float:
        """An emulated duration in real seconds."""
        return seconds * self.time_scale


class Platform(ABC):
    """One emulated platform: its name, its HTTP mounts, and the backend holding its state.

    The backend (``backend_class(context)``) must offer ``reset()``; ``close()`` is optional.
    """

    #: Short name, used in URLs (``/<name>/...``, ``/_sandbox/<name>/...``) and in the stats.
    name: ClassVar[str]
    #: Human-readable name printed by ``python -m airflow_provider_sapplan.sandbox``.
    title: ClassVar[str]
    #: The state class; one instance per server.
    backend_class: ClassVar[type]

    def __init__(self, context: SandboxContext) -> None:
        self.context = context
        self._backend = self.backend_class(context)

    @property
    def backend(self) -> Any:
        """The state object tests script from Python (``server.<name>``)."""
        return self._backend

    @abstractmethod
    def mounts(self) -> list[Mount]:
        """The URL prefixes this platform serves: API, auth and ``/_sandbox/<name>`` control."""

    def reset(self) -> None:
        """Return to the seed state (``POST /_sandbox/reset``)."""
        self._backend.reset()

    def close(self) -> None:
        """Release the backend's resources when the server stops."""
        close = getattr(self._backend, "close", None)
        if close is not None:
            close()

    def connection_hints(self, base_url: str) -> list[str]:
        """Lines telling a user how to point an Airflow connection at this platform's fake."""
        return []
