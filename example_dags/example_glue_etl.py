"""
A Glue ETL job run once per DAG run, its own log lines in the task log, for any date.

``run_etl`` starts the Glue job with the date to process: the run's conf ``{"date": "YYYY-MM-DD"}``
(a backfill of one day, triggered from the UI or the REST API), else the run's own date: its
logical date, or, for an Airflow 3 run without one (REST API, asset-triggered), when it was
scheduled to run (``run_after``). While the job runs, its output and error lines appear in the
task log, each once. A retry or a worker that dies never starts a second run: the retry finds the
first run and waits for it, or, if it failed, starts a new run linked to it.
``check_run`` reads the finished run back and shows which date it processed.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow_provider_mwaaops.compat import DAG, Variable, task
from airflow_provider_mwaaops.operators.glue import ResumableGlueJobOperator

GLUE_JOB = "mwaaops_example_orders_etl"
RUN_DATE = "{{ dag_run.conf.get('date') or ((dag_run.logical_date or dag_run.run_after) | ds) }}"


def _glue():
    from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

    return AwsBaseHook(client_type="glue").conn


with DAG(
    dag_id="example_glue_etl",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["example", "glue"],
    doc_md=__doc__,
) as dag:

    @task
    def create_job() -> str:
        """Idempotent setup: the Glue job (on a real account it exists already)."""
        glue = _glue()
        if GLUE_JOB not in glue.list_jobs()["JobNames"]:
            glue.create_job(
                Name=GLUE_JOB,
                Role=Variable.get("mwaaops_example_role_arn", "arn:aws:iam::123456789012:role/etl"),
                Command={"Name": "glueetl", "ScriptLocation": "s3://mwaaops-example-lake/scripts/orders.py"},
                GlueVersion="5.0",
                WorkerType="G.1X",
                NumberOfWorkers=2,
            )
        return GLUE_JOB

    run_etl = ResumableGlueJobOperator(
        task_id="run_etl",
        job_name=create_job(),
        script_args={"--date": RUN_DATE, "--source": "s3://mwaaops-example-lake/raw/orders/"},
        forward_logs=True,
        retries=2,
        retry_delay=timedelta(seconds=5),
        deferrable=True,
        # Not less: Airflow 3.3 can fail a deferred task whose trigger fires before the scheduler
        # has processed the deferring process's exit (apache/airflow#72716, open).
        waiter_delay=10,
    )

    @task
    def check_run(job_run_id: str, requested: str) -> dict:
        """The finished run, as Glue reports it: state, date processed, time used."""
        run = _glue().get_job_run(JobName=GLUE_JOB, RunId=job_run_id)["JobRun"]
        processed = run["Arguments"]["--date"]
        if processed != requested:
            raise ValueError(f"the run processed {processed}, not the requested {requested}")
        return {"state": run["JobRunState"], "date": processed, "execution_time_s": run.get("ExecutionTime")}

    check_run(run_etl.output, requested=RUN_DATE)


if __name__ == "__main__":
    dag.test()
