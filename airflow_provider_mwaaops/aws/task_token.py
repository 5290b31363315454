"""Answer a Step Functions task that waits for a callback (``.waitForTaskToken``), exactly once.

A disaster-recovery state machine hands a restore its task token and waits. The token can be
answered once: a second SendTaskSuccess/SendTaskFailure fails with ``TaskTimedOut`` or
``InvalidToken``, and an early SendTaskFailure from a try that Airflow will retry would fail the
whole recovery although the retry may succeed. :class:`TaskTokenReporter` therefore sends at most
one answer per object, and callers decide *when* an outcome is final.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from airflow_provider_mwaaops.aws.errors import describe_aws_error, error_code

log = logging.getLogger(__name__)

#: SendTaskFailure's documented limits (characters).
MAX_ERROR_LENGTH = 256
MAX_CAUSE_LENGTH = 32768
#: SendTaskSuccess rejects output above 256 KB (UTF-8 bytes).
MAX_OUTPUT_BYTES = 256 * 1024


#: SendTaskSuccess/SendTaskFailure errors meaning that nobody waits for this token any more (the
#: task timed out after TimeoutSeconds/HeartbeatSeconds or was answered, or its execution ended).
GONE_CODES = frozenset({"TaskTimedOut", "TaskDoesNotExist"})
#: The token is not one Step Functions issued (mistyped, cut, from another Region or account).
INVALID_CODES = frozenset({"InvalidToken"})


class TaskTokenError(Exception):
    """The answer could not be delivered (token expired, unknown, or an AWS error).

    ``code`` is the AWS error code; ``gone`` (expired, answered or ended) and ``invalid`` (not a
    token Step Functions issued) say that sending again cannot help.
    """

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code

    @property
    def gone(self) -> bool:
        return self.code in GONE_CODES

    @property
    def invalid(self) -> bool:
        return self.code in INVALID_CODES


class TaskTokenReporter:
    """Send SendTaskSuccess or SendTaskFailure for one task token, never both, never twice.

    ``client`` is a boto3 Step Functions client; when omitted one is built from the Airflow
    connection ``aws_conn_id`` through the amazon provider's hook, so endpoint overrides and
    assumed roles work as everywhere else in Airflow. A failed delivery is not retried with the
    other verb: the token is considered answered once a call has been attempted.
    """

    def __init__(
        self,
        task_token: str,
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        client: Any = None,
    ) -> None:
        if not task_token or not task_token.strip():
            raise ValueError("task_token is empty")
        self.task_token = task_token
        self.aws_conn_id = aws_conn_id
        self.region_name = region_name
        self._client = client
        self.sent: str | None = None

    @property
    def client(self) -> Any:
        if self._client is None:
            from airflow.providers.amazon.aws.hooks.step_function import StepFunctionHook

            self._client = StepFunctionHook(aws_conn_id=self.aws_conn_id, region_name=self.region_name).conn
        return self._client

    def succeed(self, output: dict[str, Any]) -> None:
        """SendTaskSuccess with ``output`` (JSON; shrunk to a summary if above 256 KB)."""
        body = json.dumps(output, default=str)
        if len(body.encode()) > MAX_OUTPUT_BYTES:
            body = json.dumps({"truncated": True, "keys": sorted(output)})
        self._send("success", lambda: self.client.send_task_success(taskToken=self.task_token, output=body))

    def fail(self, error: str, cause: str) -> None:
        """SendTaskFailure with an error name and a human-readable cause (cut to AWS's limits)."""
        self._send(
            "failure",
            lambda: self.client.send_task_failure(
                taskToken=self.task_token,
                error=error[:MAX_ERROR_LENGTH],
                cause=cause[:MAX_CAUSE_LENGTH],
            ),
        )

    def _send(self, verb: str, call: Any) -> None:
        if self.sent is not None:
            log.warning("Task token already answered with %s; not sending %s", self.sent, verb)
            return
        self.sent = verb
        try:
            call()
        except Exception as exc:
            raise TaskTokenError(
                f"could not send task {verb} to Step Functions: {describe_aws_error(exc)}", error_code(exc)
            ) from exc
        log.info("Sent task %s to the waiting Step Functions task", verb)
