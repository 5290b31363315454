"""Extensions of moto's own backends, for the AWS behaviour the provider needs and moto lacks.

moto runs in this process (see :mod:`airflow_provider_mwaaops.testing.emulator`), so these modules
patch moto's classes at runtime rather than faking responses: a redriven Step Functions execution
really reruns its state machine in moto's engine. :func:`install_all` is idempotent and is called by
``AwsEmulator.start()``.
"""

from __future__ import annotations

import threading

_lock = threading.Lock()
_installed = False


def install_all() -> None:
    """Install every extension once per process; later calls do nothing."""
    global _installed
    with _lock:
        if _installed:
            return
        from airflow_provider_mwaaops.testing.extensions import (
            emr_serverless_jobs,
            emr_steps,
            glue_job_api,
            glue_job_logs,
            glue_job_runs,
            glue_jobs,
            glue_workflow_graph,
            glue_workflow_runs,
            glue_workflows_api,
            mwaa_rest_api,
            stepfunctions_api,
            stepfunctions_callbacks,
            stepfunctions_errors,
            stepfunctions_executions,
            stepfunctions_map_children,
            stepfunctions_map_runs,
            stepfunctions_redrive,
            stepfunctions_replay,
            stepfunctions_timeouts,
            stepfunctions_versions,
        )

        # Replay first: the Map Run patches wrap the iteration hooks it installs.
        stepfunctions_replay.install()
        stepfunctions_map_runs.install()
        stepfunctions_map_children.install()  # after map_runs: a child wraps the whole iteration
        stepfunctions_timeouts.install()
        stepfunctions_errors.install()
        stepfunctions_redrive.install()
        stepfunctions_api.install()
        stepfunctions_versions.install()
        stepfunctions_executions.install()
        stepfunctions_callbacks.install()  # SendTaskFailure's cause (engineer H5, metadata restore)
        glue_jobs.install()
        glue_job_runs.install()  # Glue job runs, logs and workflows as AWS runs them (engineer glue-emulator)
        glue_job_api.install()
        glue_job_logs.install()
        glue_workflow_graph.install()
        glue_workflow_runs.install()
        glue_workflows_api.install()
        mwaa_rest_api.install()  # MWAA environments and InvokeRestApi (engineer H7)
        emr_serverless_jobs.install()  # EMR Serverless job runs and applications (issue 13)
        emr_steps.install()  # EMR steps: order, failures, ActionOnFailure, CancelSteps (issue 13)
        _installed = True


__all__ = ["install_all"]
