"""Airflow's own reasons for ending a try, forwarded into the task log (see log/forwarder.py)."""
