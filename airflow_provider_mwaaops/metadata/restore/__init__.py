"""Restore an export into an Airflow metadata database: verified first, idempotent, ids remapped.

:func:`restore_metadata` is the entry point; the operator, the ``mwaaops metadata restore`` command
and the DR drill example all call it. See ``docs/components/metadata.rst`` ("Restore").
"""

from __future__ import annotations

from airflow_provider_mwaaops.metadata.restore.errors import RestoreError
from airflow_provider_mwaaops.metadata.restore.plan import TableStats
from airflow_provider_mwaaops.metadata.restore.run import RestoreOptions, RestoreReport, restore_metadata

__all__ = ["RestoreError", "RestoreOptions", "RestoreReport", "TableStats", "restore_metadata"]
