"""
A Glue workflow fails in its middle job; the fix is deployed and the retry resumes from there.

The workflow ``extract -> transform -> load`` runs each job when the one before it succeeded. The
first ``transform`` run fails (the new data renamed a column), so ``load`` never starts and the
task fails, naming the failed node and Glue's ErrorMessage. Its ``on_retry_callback`` deploys the
fixed script (UpdateJob), and the retry calls ResumeWorkflowRun with the failed node: ``transform``
and ``load`` run, ``extract`` does not run again. ``check_resume`` reads both workflow runs to show
it: the resumed run points back at the failed one (PreviousRunId) and still holds the first
run's ``extract`` run.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow_provider_mwaaops.compat import DAG, Variable, task
from airflow_provider_mwaaops.operators.glue import ResumableGlueWorkflowOperator

WORKFLOW = "mwaaops_example_orders_pipeline"
EXTRACT, TRANSFORM, LOAD = "mwaaops_example_extract", "mwaaops_example_transform", "mwaaops_example_load"
SCRIPTS = "s3://mwaaops-example-lake/scripts"


def _glue():
    from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

    return AwsBaseHook(client_type="glue").conn


def deploy_fixed_transform(context) -> None:
    """The fix an engineer ships after reading the error: the script that reads the new column."""
    glue = _glue()
    job = glue.get_job(JobName=TRANSFORM)["Job"]
    command = {**job["Command"], "ScriptLocation": f"{SCRIPTS}/transform_v2.py"}
    glue.update_job(JobName=TRANSFORM, JobUpdate={"Role": job["Role"], "Command": command})


with DAG(
    dag_id="example_glue_workflow_resume",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["example", "glue", "workflow"],
    doc_md=__doc__,
) as dag:

    @task
    def create_workflow() -> str:
        """Idempotent setup: three jobs and the workflow whose triggers chain them."""
        glue = _glue()
        role = Variable.get("mwaaops_example_role_arn", "arn:aws:iam::123456789012:role/etl")
        existing = set(glue.list_jobs()["JobNames"])
        for job in (EXTRACT, TRANSFORM, LOAD):
            if job not in existing:
                name = job.removeprefix("mwaaops_example_")
                glue.create_job(
                    Name=job, Role=role, Command={"Name": "glueetl", "ScriptLocation": f"{SCRIPTS}/{name}.py"}
                )
        if WORKFLOW in glue.list_workflows()["Workflows"]:
            return WORKFLOW
        glue.create_workflow(Name=WORKFLOW, DefaultRunProperties={"lake": "s3://mwaaops-example-lake"})
        glue.create_trigger(
            Name=f"{WORKFLOW}_start", WorkflowName=WORKFLOW, Type="ON_DEMAND", Actions=[{"JobName": EXTRACT}]
        )
        for watched, starts in ((EXTRACT, TRANSFORM), (TRANSFORM, LOAD)):
            glue.create_trigger(
                Name=f"{WORKFLOW}_after_{watched.removeprefix('mwaaops_example_')}",
                WorkflowName=WORKFLOW,
                Type="CONDITIONAL",
                StartOnCreation=True,
                Predicate={
                    "Conditions": [{"LogicalOperator": "EQUALS", "JobName": watched, "State": "SUCCEEDED"}]
                },
                Actions=[{"JobName": starts}],
            )
        return WORKFLOW

    run_pipeline = ResumableGlueWorkflowOperator(
        task_id="run_pipeline",
        workflow_name=create_workflow(),
        run_properties={"requested_by": "{{ dag_run.run_id }}"},
        retries=1,
        retry_delay=timedelta(seconds=1),
        on_retry_callback=deploy_fixed_transform,
        deferrable=True,
        waiter_delay=10,  # see example_glue_etl (apache/airflow#72716)
    )

    @task
    def check_resume(workflow_run_id: str) -> dict:
        """The resumed run and the failed one: what ran again and what did not."""
        glue = _glue()

        def job_runs(run: dict) -> dict:
            nodes = run["Graph"]["Nodes"]
            return {
                n["Name"]: [r["Id"] for r in n.get("JobDetails", {}).get("JobRuns", [])]
                for n in nodes
                if n["Type"] == "JOB"
            }

        resumed = glue.get_workflow_run(Name=WORKFLOW, RunId=workflow_run_id, IncludeGraph=True)["Run"]
        previous_id = resumed.get("PreviousRunId")
        if not previous_id:
            return {"resumed": False, "note": "the first run succeeded: nothing to resume"}
        failed = glue.get_workflow_run(Name=WORKFLOW, RunId=previous_id, IncludeGraph=True)["Run"]
        now, before = job_runs(resumed), job_runs(failed)
        if now[EXTRACT] != before[EXTRACT]:
            raise ValueError(f"extract ran again: {before[EXTRACT]} -> {now[EXTRACT]}")
        return {
            "resumed_from": previous_id,
            "extract_ran_again": False,
            "transform_reran": now[TRANSFORM] != before[TRANSFORM],
            "load_ran": bool(now[LOAD]),
        }

    check_resume(run_pipeline.output)


if __name__ == "__main__":
    dag.test()
