"""EMR steps in the embedded AWS: one at a time in order, FailureDetails, ActionOnFailure, CancelSteps.

Most tests drive the emulator's clock by hand (``clock``): a step's state is read at exact moments
and nothing sleeps. The aiobotocore test lets real time pass, as a trigger does.
"""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from airflow_provider_mwaaops.testing.extensions import emr_scripts
from airflow_provider_mwaaops.testing.extensions.emr_scripts import ManualClock

TIMINGS = emr_scripts.EmrTimings()
RUN = TIMINGS.step_running
LOG_BUCKET = "cluster-logs"


@pytest.fixture
def clock() -> Iterator[ManualClock]:
    with emr_scripts.manual_clock() as manual:
        yield manual


@pytest.fixture
def emr(aws_emulator: Any) -> Any:
    return aws_emulator.client("emr")


def make_cluster(emr: Any, keep_alive: bool = True, release: str = "emr-6.15.0", **kwargs: Any) -> str:
    instances = {
        "KeepJobFlowAliveWhenNoSteps": keep_alive,
        "InstanceCount": 1,
        "MasterInstanceType": "m5.xlarge",
    }
    instances.update(kwargs.pop("Instances", {}))
    return emr.run_job_flow(
        Name="etl",
        ReleaseLabel=release,
        Instances=instances,
        JobFlowRole="EMR_EC2_DefaultRole",
        ServiceRole="EMR_DefaultRole",
        **kwargs,
    )["JobFlowId"]


def step(name: str, action: str = "CONTINUE", *args: str) -> dict[str, Any]:
    return {
        "Name": name,
        "ActionOnFailure": action,
        "HadoopJarStep": {
            "Jar": "command-runner.jar",
            "Args": ["spark-submit", f"s3://code/{name}.py", *args],
        },
    }


def states(emr: Any, cluster_id: str) -> dict[str, str]:
    """Step name -> state, from one ListSteps call (the names are unique in these tests)."""
    return {item["Name"]: item["Status"]["State"] for item in emr.list_steps(ClusterId=cluster_id)["Steps"]}


def cluster_status(emr: Any, cluster_id: str) -> dict[str, Any]:
    return emr.describe_cluster(ClusterId=cluster_id)["Cluster"]["Status"]


def read_gzip(aws_emulator: Any, key: str) -> list[str]:
    body = aws_emulator.client("s3").get_object(Bucket=LOG_BUCKET, Key=key)["Body"].read()
    return gzip.decompress(body).decode().splitlines()


# -- order and outcomes --------------------------------------------------------------------------
def test_steps_run_one_at_a_time_in_order(emr: Any, clock: ManualClock) -> None:
    cluster_id = make_cluster(emr)
    assert cluster_status(emr, cluster_id)["State"] == "WAITING"
    emr.add_job_flow_steps(JobFlowId=cluster_id, Steps=[step("A"), step("B"), step("C")])

    seen = []
    for _ in range(3):
        seen.append((states(emr, cluster_id), cluster_status(emr, cluster_id)["State"]))
        clock.advance(RUN)
    seen.append((states(emr, cluster_id), cluster_status(emr, cluster_id)["State"]))

    assert seen == [
        ({"A": "RUNNING", "B": "PENDING", "C": "PENDING"}, "RUNNING"),
        ({"A": "COMPLETED", "B": "RUNNING", "C": "PENDING"}, "RUNNING"),
        ({"A": "COMPLETED", "B": "COMPLETED", "C": "RUNNING"}, "RUNNING"),
        ({"A": "COMPLETED", "B": "COMPLETED", "C": "COMPLETED"}, "WAITING"),
    ]
    timelines = [item["Status"]["Timeline"] for item in emr.list_steps(ClusterId=cluster_id)["Steps"]]
    assert timelines[0]["StartDateTime"] >= timelines[1]["EndDateTime"]  # C started when B ended


def failing_middle(aws_emulator: Any, emr: Any, action: str, **cluster: Any) -> tuple[str, list[str]]:
    aws_emulator.client("s3").create_bucket(Bucket=LOG_BUCKET)
    aws_emulator.emr.script_step(
        "B", outcome="FAILED", message="Table not found: sales", stderr=["at Job.run"]
    )
    cluster_id = make_cluster(emr, LogUri=f"s3://{LOG_BUCKET}/emr/", **cluster)
    ids = emr.add_job_flow_steps(JobFlowId=cluster_id, Steps=[step("A"), step("B", action), step("C")])[
        "StepIds"
    ]
    return cluster_id, ids


def test_continue_runs_the_next_step_after_a_failure(aws_emulator: Any, emr: Any, clock: ManualClock) -> None:
    cluster_id, ids = failing_middle(aws_emulator, emr, "CONTINUE")
    clock.advance(3 * RUN)

    assert states(emr, cluster_id) == {"A": "COMPLETED", "B": "FAILED", "C": "COMPLETED"}
    assert cluster_status(emr, cluster_id)["State"] == "WAITING"
    failed = emr.describe_step(ClusterId=cluster_id, StepId=ids[1])["Step"]["Status"]
    log_file = f"s3://{LOG_BUCKET}/emr/{cluster_id}/steps/{ids[1]}/stderr.gz"
    assert failed["FailureDetails"] == {
        "Reason": "Unknown Error",  # what AWS returns when it cannot tell the root cause
        "Message": "Table not found: sales",
        "LogFile": log_file,
    }
    assert read_gzip(aws_emulator, log_file.split("/", 3)[3]) == ["at Job.run", "Table not found: sales"]
    controller = read_gzip(aws_emulator, f"emr/{cluster_id}/steps/{ids[1]}/controller.gz")
    assert controller[-1].endswith(f"step {ids[1]} FAILED")


def test_cancel_and_wait_cancels_the_pending_steps(aws_emulator: Any, emr: Any, clock: ManualClock) -> None:
    cluster_id, ids = failing_middle(aws_emulator, emr, "CANCEL_AND_WAIT")
    clock.advance(2 * RUN)

    assert states(emr, cluster_id) == {"A": "COMPLETED", "B": "FAILED", "C": "CANCELLED"}
    assert cluster_status(emr, cluster_id)["State"] == "WAITING"
    assert (
        "StartDateTime"
        not in emr.describe_step(ClusterId=cluster_id, StepId=ids[2])["Step"]["Status"]["Timeline"]
    )


def test_terminate_cluster_shuts_the_cluster_down(aws_emulator: Any, emr: Any, clock: ManualClock) -> None:
    cluster_id, _ = failing_middle(aws_emulator, emr, "TERMINATE_CLUSTER")
    clock.advance(2 * RUN)

    assert states(emr, cluster_id) == {"A": "COMPLETED", "B": "FAILED", "C": "CANCELLED"}
    status = cluster_status(emr, cluster_id)
    assert status["State"] == "TERMINATED_WITH_ERRORS"
    assert status["StateChangeReason"] == {"Code": "STEP_FAILURE", "Message": "Shut down as step failed"}
    with pytest.raises(ClientError) as refused:
        emr.add_job_flow_steps(JobFlowId=cluster_id, Steps=[step("D")])
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert "terminated, or finished may not be modified" in refused.value.response["Error"]["Message"]


def test_a_protected_long_running_cluster_survives_terminate_cluster(
    aws_emulator: Any, emr: Any, clock: ManualClock
) -> None:
    cluster_id, _ = failing_middle(
        aws_emulator, emr, "TERMINATE_JOB_FLOW", Instances={"TerminationProtected": True}
    )
    clock.advance(2 * RUN)
    assert states(emr, cluster_id) == {"A": "COMPLETED", "B": "FAILED", "C": "CANCELLED"}
    assert cluster_status(emr, cluster_id)["State"] == "WAITING"


def test_an_auto_terminating_cluster_ends_after_its_last_step(emr: Any, clock: ManualClock) -> None:
    cluster_id = make_cluster(emr, keep_alive=False, Steps=[step("only")])
    assert states(emr, cluster_id) == {"only": "RUNNING"}
    clock.advance(RUN)
    status = cluster_status(emr, cluster_id)
    assert (status["State"], status["StateChangeReason"]["Code"]) == ("TERMINATED", "ALL_STEPS_COMPLETED")


def test_a_retry_adds_only_the_failed_step_and_the_rest(
    aws_emulator: Any, emr: Any, clock: ManualClock
) -> None:
    aws_emulator.emr.script_step("B", outcome="FAILED", message="flaky", times=1)
    cluster_id = make_cluster(emr)
    emr.add_job_flow_steps(JobFlowId=cluster_id, Steps=[step("A"), step("B", "CANCEL_AND_WAIT"), step("C")])
    clock.advance(2 * RUN)
    emr.add_job_flow_steps(JobFlowId=cluster_id, Steps=[step("B", "CANCEL_AND_WAIT"), step("C")])
    clock.advance(2 * RUN)

    history = [
        (item["Name"], item["Status"]["State"]) for item in emr.list_steps(ClusterId=cluster_id)["Steps"]
    ]
    assert history == [  # newest first
        ("C", "COMPLETED"),
        ("B", "COMPLETED"),
        ("C", "CANCELLED"),
        ("B", "FAILED"),
        ("A", "COMPLETED"),
    ]


def test_step_arguments_can_script_the_step(aws_emulator: Any, emr: Any, clock: ManualClock) -> None:
    aws_emulator.client("s3").create_bucket(Bucket=LOG_BUCKET)
    cluster_id = make_cluster(emr, LogUri=f"s3://{LOG_BUCKET}/")
    scripted = step(
        "load",
        "CONTINUE",
        "--conf",
        "spark.mwaaops.emulator.outcome=FAILED",
        "--conf",
        "spark.mwaaops.emulator.reason=java.io.IOException",
        "--conf=spark.mwaaops.emulator.stdout=rows: 0",
        "--conf",
        "spark.mwaaops.emulator.times=1",
    )
    first, second = (
        emr.add_job_flow_steps(JobFlowId=cluster_id, Steps=[scripted])["StepIds"][0] for _ in range(2)
    )
    clock.advance(2 * RUN)

    described = [
        emr.describe_step(ClusterId=cluster_id, StepId=sid)["Step"]["Status"] for sid in (first, second)
    ]
    assert [status["State"] for status in described] == ["FAILED", "COMPLETED"]  # times=1
    assert described[0]["FailureDetails"]["Reason"] == "java.io.IOException"
    assert read_gzip(aws_emulator, f"{cluster_id}/steps/{first}/stdout.gz") == ["rows: 0"]


# -- CancelSteps ---------------------------------------------------------------------------------
def test_cancel_steps_cancels_pending_and_running_steps(
    aws_emulator: Any, emr: Any, clock: ManualClock
) -> None:
    aws_emulator.emr.script_step("stream", duration=float("inf"))
    cluster_id = make_cluster(emr)
    ids = emr.add_job_flow_steps(JobFlowId=cluster_id, Steps=[step("done"), step("stream"), step("later")])[
        "StepIds"
    ]
    clock.advance(RUN + 60)
    assert states(emr, cluster_id) == {"done": "COMPLETED", "stream": "RUNNING", "later": "PENDING"}

    answer = emr.cancel_steps(ClusterId=cluster_id, StepIds=ids, StepCancellationOption="SEND_INTERRUPT")
    assert answer["CancelStepsInfoList"] == [
        {
            "StepId": ids[0],
            "Status": "FAILED",
            "Reason": f"Step {ids[0]} is COMPLETED; only PENDING or RUNNING steps can be cancelled.",
        },
        {"StepId": ids[1], "Status": "SUBMITTED"},
        {"StepId": ids[2], "Status": "SUBMITTED"},
    ]
    assert states(emr, cluster_id) == {
        "done": "COMPLETED",
        "stream": "CANCEL_PENDING",
        "later": "CANCEL_PENDING",
    }
    clock.advance(TIMINGS.step_cancel_pending)
    assert states(emr, cluster_id) == {"done": "COMPLETED", "stream": "CANCELLED", "later": "CANCELLED"}
    assert cluster_status(emr, cluster_id)["State"] == "WAITING"
    again = emr.cancel_steps(ClusterId=cluster_id, StepIds=[ids[1]])  # idempotent
    assert again["CancelStepsInfoList"] == [{"StepId": ids[1], "Status": "SUBMITTED"}]


def test_a_cancelled_running_step_lets_the_next_one_run_and_skips_action_on_failure(
    aws_emulator: Any, emr: Any, clock: ManualClock
) -> None:
    aws_emulator.emr.script_step("stream", duration=float("inf"))
    cluster_id = make_cluster(emr)
    ids = emr.add_job_flow_steps(
        JobFlowId=cluster_id, Steps=[step("stream", "TERMINATE_CLUSTER"), step("next")]
    )
    emr.cancel_steps(ClusterId=cluster_id, StepIds=ids["StepIds"][:1])
    clock.advance(TIMINGS.step_cancel_pending / 2)
    assert states(emr, cluster_id) == {
        "stream": "CANCEL_PENDING",
        "next": "PENDING",
    }  # the slot is still taken
    clock.advance(TIMINGS.step_cancel_pending / 2 + 0.001)
    assert states(emr, cluster_id) == {"stream": "CANCELLED", "next": "RUNNING"}
    clock.advance(RUN)
    assert states(emr, cluster_id) == {"stream": "CANCELLED", "next": "COMPLETED"}
    assert cluster_status(emr, cluster_id)["State"] == "WAITING"


def test_old_releases_cannot_cancel_running_steps(aws_emulator: Any, emr: Any, clock: ManualClock) -> None:
    aws_emulator.emr.script_step(duration=float("inf"))
    cluster_id = make_cluster(emr, release="emr-5.20.0")
    ids = emr.add_job_flow_steps(JobFlowId=cluster_id, Steps=[step("running"), step("pending")])["StepIds"]
    answer = emr.cancel_steps(ClusterId=cluster_id, StepIds=ids)["CancelStepsInfoList"]
    assert [item["Status"] for item in answer] == ["FAILED", "SUBMITTED"]
    assert "5.28.0" in answer[0]["Reason"]


def test_cancel_steps_on_an_unknown_cluster_is_an_invalid_request(emr: Any) -> None:
    with pytest.raises(ClientError) as raised:
        emr.cancel_steps(ClusterId="j-NOSUCHCLUSTER", StepIds=["s-1"])
    assert raised.value.response["Error"]["Code"] == "InvalidRequestException"


# -- cluster termination -------------------------------------------------------------------------
def test_terminating_a_cluster_interrupts_its_running_step(
    aws_emulator: Any, emr: Any, clock: ManualClock
) -> None:
    aws_emulator.emr.script_step("long", duration=float("inf"))
    cluster_id = make_cluster(emr)
    emr.add_job_flow_steps(JobFlowId=cluster_id, Steps=[step("long"), step("after")])
    clock.advance(10)
    emr.terminate_job_flows(JobFlowIds=[cluster_id])

    assert states(emr, cluster_id) == {"long": "INTERRUPTED", "after": "CANCELLED"}
    status = cluster_status(emr, cluster_id)
    assert (status["State"], status["StateChangeReason"]["Code"]) == ("TERMINATED", "USER_REQUEST")


# -- ListSteps -----------------------------------------------------------------------------------
def test_list_steps_pages_by_fifty_newest_first_with_filters(emr: Any, clock: ManualClock) -> None:
    cluster_id = make_cluster(emr)
    added = []
    for batch in range(3):
        added += emr.add_job_flow_steps(
            JobFlowId=cluster_id, Steps=[step(f"s{batch}-{i}") for i in range(40)]
        )["StepIds"]
    clock.advance(RUN)

    pages, marker = [], None
    while True:
        page = emr.list_steps(ClusterId=cluster_id, **({"Marker": marker} if marker else {}))
        pages.append([item["Id"] for item in page["Steps"]])
        marker = page.get("Marker")
        if not marker:
            break
    assert [len(page) for page in pages] == [50, 50, 20]
    assert [step_id for page in pages for step_id in page] == added[::-1]

    assert [
        item["Id"]
        for item in emr.list_steps(ClusterId=cluster_id, StepStates=["COMPLETED", "RUNNING"])["Steps"]
    ] == [
        added[1],
        added[0],
    ]
    chosen = emr.list_steps(ClusterId=cluster_id, StepIds=added[5:8])["Steps"]
    assert [item["Id"] for item in chosen] == added[5:8][::-1]
    with pytest.raises(ClientError) as raised:
        emr.list_steps(ClusterId=cluster_id, StepIds=added[:11])
    assert raised.value.response["Error"]["Code"] == "InvalidRequestException"


# -- AddJobFlowSteps validation ------------------------------------------------------------------
def test_at_most_256_steps_may_be_pending_or_running(aws_emulator: Any, emr: Any, clock: ManualClock) -> None:
    aws_emulator.emr.script_step(duration=float("inf"))
    cluster_id = make_cluster(emr)
    for _ in range(2):
        emr.add_job_flow_steps(JobFlowId=cluster_id, Steps=[step(f"x{i}") for i in range(128)])
    with pytest.raises(ClientError) as refused:
        emr.add_job_flow_steps(JobFlowId=cluster_id, Steps=[step("one too many")])
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert "256" in refused.value.response["Error"]["Message"]

    first = emr.list_steps(ClusterId=cluster_id, StepStates=["RUNNING"])["Steps"][0]["Id"]
    emr.cancel_steps(ClusterId=cluster_id, StepIds=[first])  # a cancelled step leaves the count
    emr.add_job_flow_steps(JobFlowId=cluster_id, Steps=[step("fits again")])


def test_unknown_cluster_and_unknown_step_are_refused(emr: Any) -> None:
    with pytest.raises(ClientError) as refused:
        emr.add_job_flow_steps(JobFlowId="j-NOSUCHCLUSTER", Steps=[step("A")])
    assert refused.value.response["Error"] == {
        "Code": "ValidationException",
        "Message": "Specified job flow ID does not exist.",
    }
    cluster_id = make_cluster(emr)
    with pytest.raises(ClientError) as missing:
        emr.describe_step(ClusterId=cluster_id, StepId="s-NOSUCHSTEP")
    assert missing.value.response["Error"]["Code"] == "InvalidRequestException"


def test_step_arguments_must_be_strings(aws_emulator: Any, emr: Any) -> None:
    """boto3 refuses them before sending; the service refuses them too, for any other client."""
    import boto3
    from botocore.config import Config

    unchecked = boto3.client(
        "emr",
        region_name=aws_emulator.region_name,
        endpoint_url=aws_emulator.endpoint_url,
        config=Config(parameter_validation=False),
    )
    cluster_id = make_cluster(emr)
    bad = {"Name": "A", "HadoopJarStep": {"Jar": "command-runner.jar", "Args": ["spark-submit", 7]}}
    with pytest.raises(ClientError) as refused:
        unchecked.add_job_flow_steps(JobFlowId=cluster_id, Steps=[bad])
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert "must be a string" in refused.value.response["Error"]["Message"]
    assert emr.list_steps(ClusterId=cluster_id)["Steps"] == []


def test_concurrent_steps_run_side_by_side_and_only_continue(emr: Any, clock: ManualClock) -> None:
    cluster_id = make_cluster(emr, StepConcurrencyLevel=2)
    with pytest.raises(ClientError) as refused:
        emr.add_job_flow_steps(JobFlowId=cluster_id, Steps=[step("A", "CANCEL_AND_WAIT")])
    assert "ActionOnFailure CANCEL_AND_WAIT is not valid" in refused.value.response["Error"]["Message"]

    emr.add_job_flow_steps(JobFlowId=cluster_id, Steps=[step("A"), step("B"), step("C")])
    assert states(emr, cluster_id) == {"A": "RUNNING", "B": "RUNNING", "C": "PENDING"}
    clock.advance(RUN)
    assert states(emr, cluster_id) == {"A": "COMPLETED", "B": "COMPLETED", "C": "RUNNING"}


def test_execution_role_and_properties_are_kept(emr: Any) -> None:
    cluster_id = make_cluster(emr)
    role = "arn:aws:iam::123456789012:role/step-runtime"
    step_id = emr.add_job_flow_steps(JobFlowId=cluster_id, Steps=[step("A")], ExecutionRoleArn=role)[
        "StepIds"
    ][0]
    assert emr.describe_step(ClusterId=cluster_id, StepId=step_id)["Step"]["ExecutionRoleArn"] == role


# -- what a trigger reads, through aiobotocore ---------------------------------------------------
async def test_a_trigger_sees_steps_progress_and_reads_the_failed_step_log(
    aws_emulator: Any, emr: Any
) -> None:
    aws_emulator.emr.set_timings(step_running=0.3)
    aws_emulator.emr.script_step("B", outcome="FAILED", message="boom")
    aws_emulator.client("s3").create_bucket(Bucket=LOG_BUCKET)
    cluster_id = make_cluster(emr, LogUri=f"s3://{LOG_BUCKET}/logs")
    async with aws_emulator.async_client("emr") as client, aws_emulator.async_client("s3") as s3:
        added = await client.add_job_flow_steps(
            JobFlowId=cluster_id, Steps=[step("A"), step("B", "CANCEL_AND_WAIT"), step("C")]
        )
        b_id = added["StepIds"][1]
        seen: list[str] = []
        for _ in range(200):
            described = (await client.describe_step(ClusterId=cluster_id, StepId=b_id))["Step"]["Status"]
            if not seen or seen[-1] != described["State"]:
                seen.append(described["State"])
            if described["State"] == "FAILED":
                break
            await asyncio.sleep(0.01)
        listed = await client.list_steps(ClusterId=cluster_id, StepStates=["CANCELLED"])
        bucket, key = described["FailureDetails"]["LogFile"][len("s3://") :].split("/", 1)
        log = await s3.get_object(Bucket=bucket, Key=key)
        body = await log["Body"].read()

    # Real time passes here: which states a poll catches depends on the machine's load.
    assert seen == sorted(seen, key=["PENDING", "RUNNING", "FAILED"].index)
    assert len(seen) > 1
    assert seen[-1] == "FAILED"
    assert [item["Name"] for item in listed["Steps"]] == ["C"]
    assert gzip.decompress(body).decode().splitlines() == ["boom"]
