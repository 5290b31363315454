"""The plugin Airflow loads from the ``airflow.plugins`` entry point.

Listeners can only reach Airflow through a plugin (a provider-info "plugins" entry is not loaded
by default), so this class is where the package's listeners are attached. Importing this module
must stay cheap: every Airflow component imports it at start-up.
"""

from __future__ import annotations

from airflow_provider_mwaaops.compat import AirflowPlugin
from airflow_provider_mwaaops.listeners.asset_events import asset_events_listener
from airflow_provider_mwaaops.log.forwarder import log_forwarder

#: Listener objects, one per component (each listener module exposes a module-level instance).
LISTENERS: list = [
    asset_events_listener,
    log_forwarder,
]


class MwaaOpsPlugin(AirflowPlugin):
    """Registers the package's listeners with every Airflow component."""

    name = "mwaaops"
    listeners: list = LISTENERS
