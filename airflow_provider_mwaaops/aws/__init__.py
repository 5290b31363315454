"""AWS plumbing shared by every operator and trigger of this package.

* :mod:`~airflow_provider_mwaaops.aws.arn`: ARN parsing and Step Functions name rules, with errors
  that quote the bad input.
* :mod:`~airflow_provider_mwaaops.aws.client_pool`: :class:`AsyncClientPool`, one aiobotocore client
  per (connection, region, service, endpoint) per event loop, shared by all triggers of a triggerer.
* :mod:`~airflow_provider_mwaaops.aws.errors`: classification of botocore/aiohttp errors
  (throttled, transient, access denied) and one-line descriptions.
* :mod:`~airflow_provider_mwaaops.aws.polling`: the polling loop the triggers run on the pool.

Nothing is imported here, so importing one submodule (say, ARN parsing in an operator) does not pull
in aiobotocore or the amazon provider.
"""
