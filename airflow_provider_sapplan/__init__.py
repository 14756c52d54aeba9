"""Apache Airflow provider for Anaplan and SAP planning and integration platforms."""

from __future__ import annotations

__version__ = "0.1.0"
