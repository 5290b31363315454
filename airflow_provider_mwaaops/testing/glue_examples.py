"""What the Glue examples' job runs do on the embedded AWS, for the demo and the example tests.

The examples create their Glue jobs and workflow themselves (idempotently, as on a real account);
what a real job's script would do (log its progress, fail on a bad input the first time) is
scripted here in the emulator (``aws_emulator.glue``, a
:class:`~airflow_provider_mwaaops.testing.extensions.glue_control.GlueControl`):

* ``example_glue_etl``: the ETL job logs a few output and error lines while it runs, which the
  task forwards into its log; the run's conf carries the backfill date.
* ``example_glue_workflow_resume``: the first run of the workflow's ``transform`` job fails (a
  column the new data lacks); the example's ``on_retry_callback`` deploys the fixed script and
  the retry resumes the workflow from ``transform``.

Scripts live in the emulator's Glue backend, so call :func:`prepare_glue_example` after any
``reset()`` and before the DAG runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_mwaaops.testing.emulator import AwsEmulator

__all__ = [
    "BACKFILL_DATE",
    "ETL_DAG_ID",
    "ETL_JOB",
    "WORKFLOW_DAG_ID",
    "WORKFLOW_JOBS",
    "prepare_glue_example",
    "script_glue_examples",
]

ETL_DAG_ID = "example_glue_etl"
WORKFLOW_DAG_ID = "example_glue_workflow_resume"
ETL_JOB = "mwaaops_example_orders_etl"
WORKFLOW_JOBS = ("mwaaops_example_extract", "mwaaops_example_transform", "mwaaops_example_load")
#: The backfill date the demo and the example tests pass in the run's conf.
BACKFILL_DATE = "2026-11-30"
#: The first transform run's ErrorMessage, as a Spark job's AnalysisException reads.
TRANSFORM_ERROR = (
    "AnalysisException: [UNRESOLVED_COLUMN.WITH_SUGGESTION] A column with name `amount` cannot be "
    "resolved. Did you mean one of the following? [`amount_cents`, `currency`]"
)
ETL_OUTPUT = [
    "Reading s3://mwaaops-example-lake/raw/orders/ for the requested date",
    "Read 12840 rows from 4 files",
    "Dropped 12 rows with a null order_id",
    "Wrote 12828 rows to s3://mwaaops-example-lake/curated/orders/",
]
ETL_ERRORS = ["WARN GlueContext: spark.sql.shuffle.partitions=200 for 12840 rows; consider fewer"]


def script_glue_examples(emulator: AwsEmulator) -> None:
    """Script both examples' jobs (harmless for a DAG that does not use them)."""
    glue = emulator.glue
    glue.script_job(
        ETL_JOB,
        starting_seconds=1.0,
        running_seconds=4.0,
        output_lines=ETL_OUTPUT,
        error_lines=ETL_ERRORS,
    )
    for job in WORKFLOW_JOBS:
        glue.script_job(job, starting_seconds=0.5, running_seconds=1.5)
    glue.script_next_runs(WORKFLOW_JOBS[1], {"outcome": "FAILED", "error_message": TRANSFORM_ERROR})


def prepare_glue_example(dag: Any, emulator: AwsEmulator) -> dict[str, Any] | None:
    """Before ``dag.test()`` of a Glue example: script its jobs; returns the run conf (or None)."""
    if dag.dag_id not in (ETL_DAG_ID, WORKFLOW_DAG_ID):
        return None
    script_glue_examples(emulator)
    return {"date": BACKFILL_DATE} if dag.dag_id == ETL_DAG_ID else None
