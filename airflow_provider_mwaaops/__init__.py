"""Operations kit for Apache Airflow on Amazon MWAA."""

__version__ = "0.1.0"
