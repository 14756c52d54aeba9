"""The contract between the sandbox server and one emulated platform.

Adding a platform means writing a module with a backend (state and behaviour, usable from Python)
and a :class:`Platform` subclass that exposes the backend over HTTP as :class:`~.routing.Mount`
objects, then listing the subclass in :data:`~.server.PLATFORMS`.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from .routing import Mount
from .stats import Stats


@dataclass
class SandboxContext:
    """What every platform gets from the server: timing knobs, a data directory and the stats.

    ``time_scale`` multiplies emulated durations (0.1 runs ten times faster); ``token_ttl`` is
    the lifetime of issued access tokens in seconds (real, not scaled, because clients compare
    it with their own clock); ``clock`` returns epoch seconds and can be replaced in tests.
    """

    time_scale: float
    token_ttl: float
    data_dir: Path
    stats: Stats
    clock: Callable[[], float] = field(default=time.time)

    def scaled(self, seconds: float) -> float:
        """An emulated duration in real seconds."""
        return seconds * self.time_scale


class Platform(ABC):
    """One emulated platform: its name, its HTTP mounts, its backend and how to reset it."""

    #: Short name, used in URLs (``/<name>/...``, ``/_sandbox/<name>/...``) and in the stats.
    name: ClassVar[str]
    #: Human-readable name printed by ``python -m airflow_provider_sapplan.sandbox``.
    title: ClassVar[str]

    def __init__(self, context: SandboxContext) -> None:
        self.context = context

    @property
    @abstractmethod
    def backend(self) -> Any:
        """The state object tests script from Python (``server.<name>``)."""

    @abstractmethod
    def mounts(self) -> list[Mount]:
        """The URL prefixes this platform serves: API, auth and ``/_sandbox/<name>`` control."""

    @abstractmethod
    def reset(self) -> None:
        """Return to the seed state (``POST /_sandbox/reset``)."""

    def close(self) -> None:  # noqa: B027 - optional hook, most platforms have nothing to release
        """Release resources when the server stops."""

    def connection_hints(self, base_url: str) -> list[str]:
        """Lines telling a user how to point an Airflow connection at this platform's fake."""
        return []
