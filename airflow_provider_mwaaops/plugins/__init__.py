"""AirflowPlugin classes exposed through the package's ``airflow.plugins`` entry point."""
