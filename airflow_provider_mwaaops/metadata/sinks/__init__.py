"""Where exports are written and read: a local directory or S3 (see :func:`open_sink`)."""

from airflow_provider_mwaaops.metadata.sinks.base import Sink, open_sink

__all__ = ["Sink", "open_sink"]
