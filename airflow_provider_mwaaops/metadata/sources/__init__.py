"""Where exported rows come from: the metadata database (:mod:`.database`) or the REST API."""

from airflow_provider_mwaaops.metadata.sources.base import MetadataSource, ReadWindow

__all__ = ["MetadataSource", "ReadWindow"]
