"""Extra links that open a remote object: the URL is pushed to XCom before the task waits."""

from __future__ import annotations

from typing import Any, ClassVar

from airflow_provider_sapplan._compat import BaseOperatorLink, XCom


class XComUrlLink(BaseOperatorLink):
    """A link whose URL the operator pushed to XCom under :attr:`xcom_key` (no lookups at render time)."""

    name: ClassVar[str] = ""
    xcom_key: ClassVar[str] = ""

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        # A task that failed before it pushed the URL (a bad argument, an error before submit) has none:
        # the link renders empty, quietly. Looking the key up anyway makes Airflow 3's task runner log
        # "[error] XCom not found" beside the real failure.
        if getattr(operator, "_link_missing", False):
            return ""
        return XCom.get_value(key=self.xcom_key, ti_key=ti_key) or ""
