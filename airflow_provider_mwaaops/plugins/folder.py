"""The plugin for a plugins folder (or MWAA ``plugins.zip``), for when entry points are missing.

Installed with pip, the package's ``airflow.plugins`` entry point loads
:class:`~airflow_provider_mwaaops.plugins.mwaaops.MwaaOpsPlugin` in every component. Teams that
cannot install packages copy the ``airflow_provider_mwaaops`` directory into their plugins folder
(it is on ``sys.path``) together with a one-line module::

    # plugins/mwaaops_plugin.py
    from airflow_provider_mwaaops.plugins.folder import plugins_folder_plugin

    MwaaOpsPlugin = plugins_folder_plugin()

Airflow scans that module for plugin classes. When the package *is* also installed (both paths
present), :func:`plugins_folder_plugin` returns None so the plugin, and its listeners, are
registered once, through the entry point, without Airflow 3 reporting a duplicate plugin.
"""

from __future__ import annotations

from importlib.metadata import entry_points

ENTRY_POINT_GROUP = "airflow.plugins"
PACKAGE = "airflow_provider_mwaaops"


def entry_point_installed() -> bool:
    """True when an installed distribution declares this package's plugin as an entry point."""
    return any(
        ep.value.split(":", 1)[0].startswith(f"{PACKAGE}.") for ep in entry_points(group=ENTRY_POINT_GROUP)
    )


def plugins_folder_plugin() -> type | None:
    """The plugin class for a plugins-folder module, or None when the entry point loads it already."""
    if entry_point_installed():
        return None
    from airflow_provider_mwaaops.plugins.mwaaops import MwaaOpsPlugin

    return MwaaOpsPlugin
