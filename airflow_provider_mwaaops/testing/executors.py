"""Executors that misbehave the way real ones do, for tests of Airflow's recovery paths.

:class:`LosingLocalExecutor` is the LocalExecutor, except that it silently loses the first
workload of every task-instance try queued on :data:`LOSSY_QUEUE` (``queue="mwaaops-lossy"`` on
the task; other tasks run normally), as a Celery broker that drops a message or a
Kubernetes pod that never schedules would. The task instance stays queued until the scheduler's
``[scheduler] task_queued_timeout`` check revokes it, logs ``stuck in queued reschedule`` and
requeues it; the second time the executor runs it for real. Select it with::

    [core] executor = airflow_provider_mwaaops.testing.executors.LosingLocalExecutor

Stock LocalExecutor does not implement ``revoke_task``, so with it Airflow skips stuck tasks
entirely; this class implements it the way remote executors do (forget the workload).
"""

from __future__ import annotations

import logging
from typing import Any

from airflow.executors.local_executor import LocalExecutor

from airflow_provider_mwaaops.compat import EXECUTORS_RUN_WORKLOADS, LOCAL_EXECUTOR_QUEUES_DIRECTLY

log = logging.getLogger(__name__)

#: Tasks on this queue lose their first workload per try; every other task runs normally.
LOSSY_QUEUE = "mwaaops-lossy"


class LosingLocalExecutor(LocalExecutor):
    """LocalExecutor that loses the first workload of each try (see the module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._lost: set[Any] = set()

    def _lose(self, key: Any, queue: Any) -> bool:
        """True the first time a lossy try is seen: that workload is dropped (but looks accepted)."""
        if queue != LOSSY_QUEUE or key in self._lost:
            return False
        self._lost.add(key)
        log.warning("LosingLocalExecutor: losing the first workload of %s", key)
        return True

    if LOCAL_EXECUTOR_QUEUES_DIRECTLY:

        def queue_workload(self, workload: Any, session: Any = None) -> None:
            from airflow.executors.workloads import ExecuteTask

            # Airflow 3.0's LocalExecutor hands each workload to its workers right here (compat).
            if isinstance(workload, ExecuteTask) and self._lose(workload.ti.key, workload.ti.queue):
                return  # accepted as far as the scheduler can tell, never handed to a worker
            super().queue_workload(workload, session=session)

    elif EXECUTORS_RUN_WORKLOADS:

        def _process_workloads(self, workload_list: Any) -> Any:
            from airflow.executors.workloads import ExecuteTask

            kept = []
            for workload in workload_list:
                if isinstance(workload, ExecuteTask) and self._lose(workload.key, workload.ti.queue):
                    # Accepted as far as the scheduler can tell, never handed to a worker.
                    self.queued_tasks.pop(workload.key, None)
                    self.running.add(workload.key)
                else:
                    kept.append(workload)
            if kept:
                return super()._process_workloads(kept)
            return None

    else:

        def execute_async(  # type: ignore[override]
            self, key: Any, command: Any, queue: Any = None, executor_config: Any = None
        ) -> None:
            # BaseExecutor adds the key to ``running`` after this returns: it looks accepted.
            if self._lose(key, queue):
                return
            super().execute_async(  # type: ignore[misc]  # Airflow 2's LocalExecutor has it
                key=key, command=command, queue=queue, executor_config=executor_config
            )

    def revoke_task(self, *, ti: Any) -> None:
        """Forget the workload, as remote executors do; Airflow then reschedules or fails it."""
        queued: dict[Any, Any] = self.queued_tasks
        for key in (ti.key, getattr(ti, "id", None)):
            self.running.discard(key)
            queued.pop(key, None)
