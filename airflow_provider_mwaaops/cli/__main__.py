"""``python -m airflow_provider_mwaaops.cli``: the same as the ``mwaaops`` console script."""

from airflow_provider_mwaaops.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
