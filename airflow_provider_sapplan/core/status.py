"""The provider-wide status model: every platform maps its raw states onto three outcomes.

Each platform module declares one :class:`StatusTable`. Unknown raw values are treated as still
running (and logged once per value), so a new state the platform adds never fails a pipeline by
itself; the raw value always travels with the outcome into XCom and error messages.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Iterable

log = logging.getLogger(__name__)


class Outcome(str, enum.Enum):
    """Where a remote job stands, whatever the platform calls it."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"

    @property
    def is_terminal(self) -> bool:
        return self is not Outcome.RUNNING


class StatusTable:
    """Maps one platform's raw state strings to :class:`Outcome` values."""

    def __init__(
        self,
        platform: str,
        *,
        running: Iterable[str],
        succeeded: Iterable[str] = (),
        failed: Iterable[str] = (),
    ) -> None:
        self.platform = platform
        self._table: dict[str, Outcome] = {}
        for values, outcome in (
            (running, Outcome.RUNNING),
            (succeeded, Outcome.SUCCEEDED),
            (failed, Outcome.FAILED),
        ):
            for value in values:
                self._table[value.upper()] = outcome
        self._warned: set[str] = set()

    def outcome(self, raw: str | None) -> Outcome:
        key = (raw or "").upper()
        found = self._table.get(key)
        if found is None:
            if key not in self._warned:
                self._warned.add(key)
                log.warning("%s reported an unknown state %r; treating it as still running.", self.platform, raw)
            return Outcome.RUNNING
        return found

    def known(self) -> list[str]:
        return sorted(self._table)
