"""Sensors: wait for a condition on an AWS resource that this package did not start.

Each service has one module; every sensor derives from
:class:`~airflow_provider_mwaaops.sensors.base.AwsBaseSensor`.
"""
