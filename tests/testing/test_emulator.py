"""The embedded AWS really behaves like AWS for both boto3 and aiobotocore callers."""

from __future__ import annotations

import json

import pytest

FAILING_TASK_DEFINITION = {
    "StartAt": "ReadMissingObject",
    "States": {
        "ReadMissingObject": {
            "Type": "Task",
            "Resource": "arn:aws:states:::aws-sdk:s3:getObject",
            "Parameters": {"Bucket": "mwaaops-emulator-test", "Key": "does-not-exist.json"},
            "End": True,
        }
    },
}
ROLE_ARN = "arn:aws:iam::123456789012:role/states"


async def test_aiobotocore_call_succeeds(aws_emulator):
    aws_emulator.client("s3").create_bucket(Bucket="from-boto3")
    async with aws_emulator.async_client("s3") as s3:
        await s3.put_object(Bucket="from-boto3", Key="hello.txt", Body=b"hello")
        listed = await s3.list_objects_v2(Bucket="from-boto3")
    assert [obj["Key"] for obj in listed["Contents"]] == ["hello.txt"]


def test_failing_task_state_ends_failed_with_the_real_error(aws_emulator):
    s3 = aws_emulator.client("s3")
    s3.create_bucket(Bucket="mwaaops-emulator-test")
    sfn = aws_emulator.client("stepfunctions")
    machine = sfn.create_state_machine(
        name="fails-in-task", definition=json.dumps(FAILING_TASK_DEFINITION), roleArn=ROLE_ARN
    )
    started = sfn.start_execution(stateMachineArn=machine["stateMachineArn"], name="run-1", input="{}")

    described = aws_emulator.wait_for_execution(started["executionArn"])

    assert described["status"] == "FAILED"
    # AWS names it S3.NoSuchKeyException; moto's engine keeps the service prefix in lower case.
    assert described["error"].lower() == "s3.nosuchkeyexception"
    assert "specified key does not exist" in described["cause"]
    events = sfn.get_execution_history(executionArn=started["executionArn"])["events"]
    failed = [e for e in events if e["type"] == "TaskFailed"]
    assert failed, [e["type"] for e in events]
    assert failed[0]["taskFailedEventDetails"]["error"] == described["error"]


def test_reset_drops_resources_between_tests(aws_emulator):
    s3 = aws_emulator.client("s3")
    assert s3.list_buckets()["Buckets"] == []
    s3.create_bucket(Bucket="left-behind")
    aws_emulator.reset()
    assert s3.list_buckets()["Buckets"] == []


def test_airflow_connection_points_at_the_emulator(aws_emulator, mwaaops_airflow):
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    aws_emulator.client("s3").create_bucket(Bucket="via-airflow")
    hook = S3Hook(aws_conn_id="aws_default")
    hook.load_string("payload", key="k.txt", bucket_name="via-airflow")
    assert hook.read_key("k.txt", bucket_name="via-airflow") == "payload"


@pytest.mark.parametrize("service", ["stepfunctions", "glue", "sns", "sqs", "logs"])
def test_services_the_provider_uses_answer(aws_emulator, service):
    client = aws_emulator.client(service)
    calls = {
        "stepfunctions": lambda: client.list_state_machines(),
        "glue": lambda: client.get_jobs(),
        "sns": lambda: client.list_topics(),
        "sqs": lambda: client.list_queues(),
        "logs": lambda: client.describe_log_groups(),
    }
    assert calls[service]()["ResponseMetadata"]["HTTPStatusCode"] == 200
