"""Helpers for DAGs that consume asset events (datasets on Airflow 2.11) from outside Airflow."""
