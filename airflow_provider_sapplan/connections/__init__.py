"""Every connection form of the provider, declared with :mod:`airflow_provider_sapplan.core.forms`.

One module per platform (``connections/<platform>.py``) declares its :class:`ConnectionForm`; it is
registered here, in :data:`CONNECTION_FORMS`, and nowhere else: ``get_provider_info`` builds the
``connection-types`` from this tuple, the hooks' ``get_connection_form_widgets`` and
``get_ui_field_behaviour`` delegate to :func:`form_for`, and the unit and browser tests iterate over it.
These modules import only ``core.forms``, so reading provider info imports no hook and no wtforms.
"""

from __future__ import annotations

from airflow_provider_sapplan.connections.anaplan import ANAPLAN_FORM
from airflow_provider_sapplan.connections.sap_analytics_cloud import SAP_ANALYTICS_CLOUD_FORM
from airflow_provider_sapplan.connections.sap_cloud_integration import SAP_CLOUD_INTEGRATION_FORM
from airflow_provider_sapplan.connections.sap_data_intelligence import SAP_DATA_INTELLIGENCE_FORM
from airflow_provider_sapplan.connections.sap_job_scheduling import SAP_JOB_SCHEDULING_FORM
from airflow_provider_sapplan.core.forms import ConnectionForm

CONNECTION_FORMS: tuple[ConnectionForm, ...] = (
    ANAPLAN_FORM,
    SAP_JOB_SCHEDULING_FORM,
    SAP_CLOUD_INTEGRATION_FORM,
    SAP_DATA_INTELLIGENCE_FORM,
    SAP_ANALYTICS_CLOUD_FORM,
)


def form_for(conn_type: str) -> ConnectionForm:
    """The declared form of ``conn_type``."""
    for form in CONNECTION_FORMS:
        if form.conn_type == conn_type:
            return form
    raise KeyError(f"No connection form is declared for connection type {conn_type!r}.")
