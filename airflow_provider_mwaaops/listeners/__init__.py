"""Listeners that Airflow calls from its own components; registered by the ``mwaaops`` plugin."""
