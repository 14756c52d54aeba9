"""``python -m airflow_provider_sapplan.sandbox``: see :func:`airflow_provider_sapplan.sandbox.cli.main`."""

from __future__ import annotations

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
