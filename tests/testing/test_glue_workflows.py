"""Glue workflows in the embedded AWS: the graph runs (triggers fire on node states and start job
runs), GetWorkflowRun reports it, StopWorkflowRun stops it and ResumeWorkflowRun follows AWS's
rules, through boto3 and aiobotocore."""

from __future__ import annotations

import time

import pytest
from botocore.exceptions import ClientError

from airflow_provider_mwaaops.testing.extensions.glue_job_runs import life_of
from airflow_provider_mwaaops.testing.extensions.glue_workflow_graph import node_unique_id

QUICK = {"starting_seconds": 0, "running_seconds": 0.15}


@pytest.fixture
def glue(aws_emulator):
    return aws_emulator.client("glue")


def create_jobs(aws_emulator, glue, *names, **script):
    for name in names:
        glue.create_job(
            Name=name, Role="r", Command={"Name": "glueetl", "ScriptLocation": f"s3://s/{name}.py"}
        )
        aws_emulator.glue.script_job(name, **{**QUICK, **script})


def on_success(glue, workflow, name, watched, starts, state="SUCCEEDED", **kwargs):
    glue.create_trigger(
        Name=name,
        WorkflowName=workflow,
        Type="CONDITIONAL",
        StartOnCreation=kwargs.pop("activated", True),
        Predicate={"Conditions": [{"LogicalOperator": "EQUALS", "JobName": watched, "State": state}]},
        Actions=[{"JobName": job} for job in starts],
        **kwargs,
    )


def pipeline(aws_emulator, glue, workflow="nightly"):
    """extract -> transform -> load, each started when the one before it succeeded."""
    create_jobs(aws_emulator, glue, "extract", "transform", "load")
    glue.create_workflow(Name=workflow, DefaultRunProperties={"day": "2026-01-01"})
    glue.create_trigger(
        Name="start", WorkflowName=workflow, Type="ON_DEMAND", Actions=[{"JobName": "extract"}]
    )
    on_success(glue, workflow, "after-extract", "extract", ["transform"])
    on_success(glue, workflow, "after-transform", "transform", ["load"])
    return workflow


def run_to_end(aws_emulator, glue, workflow, run_id, expected="COMPLETED"):
    assert aws_emulator.glue.wait_for_workflow_run(workflow, run_id) == expected
    return glue.get_workflow_run(Name=workflow, RunId=run_id, IncludeGraph=True)["Run"]


def job_nodes(run):
    return {n["Name"]: n for n in run["Graph"]["Nodes"] if n["Type"] == "JOB"}


def node_runs(run, name):
    return job_nodes(run)[name].get("JobDetails", {}).get("JobRuns", [])


def run_states(glue, job):
    return [run["JobRunState"] for run in glue.get_job_runs(JobName=job)["JobRuns"]]


def error_of(call):
    with pytest.raises(ClientError) as raised:
        call()
    return raised.value.response["Error"]


# -- the graph runs --------------------------------------------------------------------------------------
def test_a_workflow_run_runs_its_graph_to_completion(aws_emulator, glue):
    workflow = pipeline(aws_emulator, glue)
    run_id = glue.start_workflow_run(Name=workflow, RunProperties={"region": "eu"})["RunId"]
    assert glue.get_workflow_run(Name=workflow, RunId=run_id)["Run"]["Status"] == "RUNNING"
    run = run_to_end(aws_emulator, glue, workflow, run_id)

    assert run["WorkflowRunProperties"] == {"day": "2026-01-01", "region": "eu"}
    assert "PreviousRunId" not in run
    assert run["CompletedOn"] >= run["StartedOn"]
    assert run["Statistics"] == {
        "TotalActions": 3,
        "TimeoutActions": 0,
        "FailedActions": 0,
        "StoppedActions": 0,
        "SucceededActions": 3,
        "RunningActions": 0,
        "ErroredActions": 0,
        "WaitingActions": 0,
    }
    extract, transform, load = (node_runs(run, name)[0] for name in ("extract", "transform", "load"))
    assert (extract["TriggerName"], transform["TriggerName"], load["TriggerName"]) == (
        "start",
        "after-extract",
        "after-transform",
    )
    # a trigger fires when its condition is met; the next job starts then, not when someone reads
    assert transform["StartedOn"] == extract["CompletedOn"]
    assert load["PredecessorRuns"] == [{"JobName": "transform", "RunId": transform["Id"]}]
    assert "Arguments" not in load  # --WORKFLOW_NAME / --WORKFLOW_RUN_ID reach the script only
    load_run = next(
        r for r in aws_emulator.glue.backend().jobs["load"].job_runs if r.job_run_id == load["Id"]
    )
    assert life_of(load_run).effective_arguments["--WORKFLOW_RUN_ID"] == run_id


def test_graph_nodes_and_edges(aws_emulator, glue):
    workflow = pipeline(aws_emulator, glue)
    graph = glue.get_workflow(Name=workflow, IncludeGraph=True)["Workflow"]["Graph"]
    ids = {(n["Type"], n["Name"]): n["UniqueId"] for n in graph["Nodes"]}
    assert set(ids) == {
        ("TRIGGER", "start"),
        ("TRIGGER", "after-extract"),
        ("TRIGGER", "after-transform"),
        ("JOB", "extract"),
        ("JOB", "transform"),
        ("JOB", "load"),
    }
    assert all(unique_id.startswith("wnode_") and len(unique_id) == 70 for unique_id in ids.values())
    edges = {(e["SourceId"], e["DestinationId"]) for e in graph["Edges"]}
    assert (ids[("TRIGGER", "start")], ids[("JOB", "extract")]) in edges
    assert (ids[("JOB", "extract")], ids[("TRIGGER", "after-extract")]) in edges
    trigger_node = next(n for n in graph["Nodes"] if n["Name"] == "after-extract")
    assert trigger_node["TriggerDetails"]["Trigger"]["Predicate"]["Conditions"][0]["JobName"] == "extract"


def test_a_run_with_a_failed_node_is_completed_and_later_nodes_never_start(aws_emulator, glue):
    workflow = pipeline(aws_emulator, glue)
    aws_emulator.glue.script_next_runs("transform", {"outcome": "FAILED", "error_message": "bad row 7"})
    run = run_to_end(aws_emulator, glue, workflow, glue.start_workflow_run(Name=workflow)["RunId"])
    assert run["Status"] == "COMPLETED"
    assert (run["Statistics"]["FailedActions"], run["Statistics"]["SucceededActions"]) == (1, 1)
    assert node_runs(run, "transform")[0]["ErrorMessage"] == "bad row 7"
    assert node_runs(run, "load") == []
    assert "JobDetails" not in job_nodes(run)["load"]
    assert run_states(glue, "load") == []


def test_logical_and_waits_for_every_condition_and_any_for_one(aws_emulator, glue):
    create_jobs(aws_emulator, glue, "fast", "slow", "both", "either")
    aws_emulator.glue.script_job("slow", starting_seconds=0, running_seconds=0.5)
    glue.create_workflow(Name="fan")
    glue.create_trigger(
        Name="start", WorkflowName="fan", Type="ON_DEMAND", Actions=[{"JobName": "fast"}, {"JobName": "slow"}]
    )
    conditions = [
        {"LogicalOperator": "EQUALS", "JobName": "fast", "State": "SUCCEEDED"},
        {"LogicalOperator": "EQUALS", "JobName": "slow", "State": "SUCCEEDED"},
    ]
    for name, logical, job in (("all-done", "AND", "both"), ("one-done", "ANY", "either")):
        glue.create_trigger(
            Name=name,
            WorkflowName="fan",
            Type="CONDITIONAL",
            StartOnCreation=True,
            Predicate={"Logical": logical, "Conditions": conditions},
            Actions=[{"JobName": job}],
        )
    run = run_to_end(aws_emulator, glue, "fan", glue.start_workflow_run(Name="fan")["RunId"])
    fast, slow = node_runs(run, "fast")[0], node_runs(run, "slow")[0]
    assert node_runs(run, "either")[0]["StartedOn"] == fast["CompletedOn"]
    assert node_runs(run, "both")[0]["StartedOn"] == slow["CompletedOn"]


def test_a_failure_branch_and_a_trigger_that_is_not_activated(aws_emulator, glue):
    create_jobs(aws_emulator, glue, "load", "alert", "audit")
    aws_emulator.glue.script_job("load", outcome="FAILED", **QUICK)
    glue.create_workflow(Name="guarded")
    glue.create_trigger(Name="start", WorkflowName="guarded", Type="ON_DEMAND", Actions=[{"JobName": "load"}])
    on_success(glue, "guarded", "on-failure", "load", ["alert"], state="FAILED")
    on_success(glue, "guarded", "dormant", "load", ["audit"], state="FAILED", activated=False)
    run = run_to_end(aws_emulator, glue, "guarded", glue.start_workflow_run(Name="guarded")["RunId"])
    assert node_runs(run, "alert")[0]["JobRunState"] == "SUCCEEDED"
    assert run_states(glue, "audit") == []


def test_a_trigger_that_names_a_deleted_job_makes_an_error_run(aws_emulator, glue):
    create_jobs(aws_emulator, glue, "extract", "gone")
    glue.create_workflow(Name="stale")
    glue.create_trigger(
        Name="start", WorkflowName="stale", Type="ON_DEMAND", Actions=[{"JobName": "extract"}]
    )
    on_success(glue, "stale", "next", "extract", ["gone"])
    glue.delete_job(JobName="gone")
    run = run_to_end(aws_emulator, glue, "stale", glue.start_workflow_run(Name="stale")["RunId"])
    assert node_runs(run, "gone")[0]["JobRunState"] == "ERROR"
    assert run["Statistics"]["ErroredActions"] == 1


def test_a_trigger_started_run_over_the_job_limit_fails(aws_emulator, glue):
    create_jobs(aws_emulator, glue, "shared")
    aws_emulator.glue.script_job("shared", starting_seconds=0, running_seconds=None)
    busy = glue.start_job_run(JobName="shared")["JobRunId"]
    glue.create_workflow(Name="crowded")
    glue.create_trigger(
        Name="start", WorkflowName="crowded", Type="ON_DEMAND", Actions=[{"JobName": "shared"}]
    )
    run = run_to_end(aws_emulator, glue, "crowded", glue.start_workflow_run(Name="crowded")["RunId"])
    failed = node_runs(run, "shared")[0]
    assert (failed["JobRunState"], failed["ErrorMessage"]) == (
        "FAILED",
        "Concurrent runs exceeded for shared",
    )
    glue.batch_stop_job_run(JobName="shared", JobRunIds=[busy])


def test_workflow_max_concurrent_runs_gives_an_error_run(aws_emulator, glue):
    create_jobs(aws_emulator, glue, "slow", running_seconds=None)
    glue.create_workflow(Name="single", MaxConcurrentRuns=1)
    glue.create_trigger(Name="start", WorkflowName="single", Type="ON_DEMAND", Actions=[{"JobName": "slow"}])
    first = glue.start_workflow_run(Name="single")["RunId"]
    second = glue.start_workflow_run(Name="single")["RunId"]
    run = glue.get_workflow_run(Name="single", RunId=second)["Run"]
    assert (run["Status"], run["ErrorMessage"]) == ("ERROR", "Concurrent runs exceeded for workflow: single.")
    glue.stop_workflow_run(Name="single", RunId=first)


# -- stop ------------------------------------------------------------------------------------------------
def test_stop_workflow_run_stops_running_jobs_and_starts_nothing_more(aws_emulator, glue):
    workflow = pipeline(aws_emulator, glue)
    aws_emulator.glue.script_job("extract", starting_seconds=0, running_seconds=None, stopping_seconds=0.2)
    run_id = glue.start_workflow_run(Name=workflow)["RunId"]
    time.sleep(0.1)
    glue.stop_workflow_run(Name=workflow, RunId=run_id)
    assert glue.get_workflow_run(Name=workflow, RunId=run_id)["Run"]["Status"] == "STOPPING"
    run = run_to_end(aws_emulator, glue, workflow, run_id, expected="STOPPED")
    assert node_runs(run, "extract")[0]["JobRunState"] == "STOPPED"
    assert run["Statistics"]["StoppedActions"] == 1
    assert run_states(glue, "transform") == []
    error = error_of(lambda: glue.stop_workflow_run(Name=workflow, RunId=run_id))
    assert error["Code"] == "IllegalWorkflowStateException"


# -- resume ----------------------------------------------------------------------------------------------
def test_resume_reruns_the_failed_node_and_what_follows_it_only(aws_emulator, glue):
    """Three job nodes, the middle one fails; the resume runs it and the last one, not the first."""
    workflow = pipeline(aws_emulator, glue)
    aws_emulator.glue.script_next_runs("transform", {"outcome": "FAILED", "error_message": "bad row 7"})
    original_id = glue.start_workflow_run(Name=workflow)["RunId"]
    original = run_to_end(aws_emulator, glue, workflow, original_id)
    failed = [
        node["UniqueId"]
        for node in job_nodes(original).values()
        if any(r["JobRunState"] == "FAILED" for r in node.get("JobDetails", {}).get("JobRuns", []))
    ]
    assert failed == [node_unique_id(workflow, "JOB", "transform")]

    answer = glue.resume_workflow_run(Name=workflow, RunId=original_id, NodeIds=failed)
    assert answer["NodeIds"] == failed
    assert answer["RunId"] != original_id
    resumed = run_to_end(aws_emulator, glue, workflow, answer["RunId"])

    assert resumed["PreviousRunId"] == original_id
    assert resumed["WorkflowRunProperties"] == original["WorkflowRunProperties"]
    assert (
        len(run_states(glue, "extract")),
        len(run_states(glue, "transform")),
        len(run_states(glue, "load")),
    ) == (
        1,
        2,
        1,
    )
    assert run_states(glue, "transform") == ["SUCCEEDED", "FAILED"]  # newest first
    # the complete graph: extract's details are copied from the original run
    assert node_runs(resumed, "extract") == node_runs(original, "extract")
    assert node_runs(resumed, "load")[0]["JobRunState"] == "SUCCEEDED"
    assert resumed["Statistics"]["TotalActions"] == 2
    # the original run is unchanged
    again = glue.get_workflow_run(Name=workflow, RunId=original_id, IncludeGraph=True)["Run"]
    assert again["Statistics"] == original["Statistics"]
    assert node_runs(again, "load") == []


def test_resume_can_be_repeated_and_resumes_a_resumed_run(aws_emulator, glue):
    workflow = pipeline(aws_emulator, glue)
    aws_emulator.glue.script_next_runs("load", {"outcome": "FAILED"}, {"outcome": "FAILED"})
    first = run_to_end(aws_emulator, glue, workflow, glue.start_workflow_run(Name=workflow)["RunId"])
    load = [node_unique_id(workflow, "JOB", "load")]
    second_id = glue.resume_workflow_run(Name=workflow, RunId=first["WorkflowRunId"], NodeIds=load)["RunId"]
    second = run_to_end(aws_emulator, glue, workflow, second_id)
    assert node_runs(second, "load")[0]["JobRunState"] == "FAILED"
    third_id = glue.resume_workflow_run(Name=workflow, RunId=second_id, NodeIds=load)["RunId"]
    third = run_to_end(aws_emulator, glue, workflow, third_id)
    assert third["PreviousRunId"] == second_id
    assert node_runs(third, "load")[0]["JobRunState"] == "SUCCEEDED"
    assert node_runs(third, "transform") == node_runs(first, "transform")
    assert run_states(glue, "load") == ["SUCCEEDED", "FAILED", "FAILED"]
    assert len(run_states(glue, "extract")) == 1


def test_a_redundant_downstream_node_is_not_restarted_twice(aws_emulator, glue):
    workflow = pipeline(aws_emulator, glue)
    aws_emulator.glue.script_next_runs("load", {"outcome": "FAILED"})
    run_id = run_to_end(aws_emulator, glue, workflow, glue.start_workflow_run(Name=workflow)["RunId"])[
        "WorkflowRunId"
    ]
    transform, load = (node_unique_id(workflow, "JOB", name) for name in ("transform", "load"))
    answer = glue.resume_workflow_run(Name=workflow, RunId=run_id, NodeIds=[load, transform])
    assert answer["NodeIds"] == [transform]
    run_to_end(aws_emulator, glue, workflow, answer["RunId"])
    assert run_states(glue, "load") == ["SUCCEEDED", "FAILED"]


def test_resume_rules(aws_emulator, glue):
    workflow = pipeline(aws_emulator, glue)
    create_jobs(aws_emulator, glue, "idle")
    aws_emulator.glue.script_next_runs("transform", {"outcome": "FAILED"})
    aws_emulator.glue.script_job("extract", starting_seconds=0, running_seconds=0.4)
    run_id = glue.start_workflow_run(Name=workflow)["RunId"]
    transform, load = (node_unique_id(workflow, "JOB", name) for name in ("transform", "load"))

    running = error_of(lambda: glue.resume_workflow_run(Name=workflow, RunId=run_id, NodeIds=[transform]))
    assert running["Code"] == "IllegalWorkflowStateException"
    run_to_end(aws_emulator, glue, workflow, run_id)

    def resume(node_ids, name=workflow, run=run_id):
        return error_of(lambda: glue.resume_workflow_run(Name=name, RunId=run, NodeIds=node_ids))["Code"]

    assert resume([node_unique_id(workflow, "TRIGGER", "after-extract")]) == "InvalidInputException"
    assert resume([load]) == "InvalidInputException"  # load never ran in this run
    assert resume(["wnode_unknown"]) == "InvalidInputException"
    assert resume([transform], name="missing") == "EntityNotFoundException"
    assert resume([transform], run="wr_missing") == "EntityNotFoundException"


def test_resume_past_the_workflow_limit_is_refused(aws_emulator, glue):
    workflow = pipeline(aws_emulator, glue)
    glue.update_workflow(Name=workflow, MaxConcurrentRuns=1)
    aws_emulator.glue.script_next_runs("transform", {"outcome": "FAILED"})
    done = run_to_end(aws_emulator, glue, workflow, glue.start_workflow_run(Name=workflow)["RunId"])
    aws_emulator.glue.script_job("extract", starting_seconds=0, running_seconds=None)
    busy = glue.start_workflow_run(Name=workflow)["RunId"]
    transform = [node_unique_id(workflow, "JOB", "transform")]
    error = error_of(
        lambda: glue.resume_workflow_run(Name=workflow, RunId=done["WorkflowRunId"], NodeIds=transform)
    )
    assert error == {
        "Code": "ConcurrentRunsExceededException",
        "Message": f"Concurrent runs exceeded for workflow: {workflow}.",
    }
    glue.stop_workflow_run(Name=workflow, RunId=busy)


def test_unknown_workflow_and_run(glue):
    assert error_of(lambda: glue.start_workflow_run(Name="missing"))["Code"] == "EntityNotFoundException"
    glue.create_workflow(Name="empty")
    assert (
        error_of(lambda: glue.get_workflow_run(Name="empty", RunId="wr_x"))["Code"]
        == "EntityNotFoundException"
    )


def test_a_predicate_with_one_condition_needs_no_logical_but_several_do(glue):
    glue.create_workflow(Name="w")
    one = [{"LogicalOperator": "EQUALS", "JobName": "a", "State": "SUCCEEDED"}]

    def create(conditions):
        glue.create_trigger(
            Name=f"t{len(conditions)}",
            WorkflowName="w",
            Type="CONDITIONAL",
            Predicate={"Conditions": conditions},
            Actions=[{"JobName": "b"}],
        )

    create(one)
    assert error_of(lambda: create(one * 2))["Code"] == "InvalidInputException"


async def test_aiobotocore_reads_the_run_graph(aws_emulator, glue):
    workflow = pipeline(aws_emulator, glue)
    async with aws_emulator.async_client("glue") as client:
        run_id = (await client.start_workflow_run(Name=workflow))["RunId"]
        statuses = set()
        for _ in range(200):
            run = (await client.get_workflow_run(Name=workflow, RunId=run_id, IncludeGraph=True))["Run"]
            statuses.add(run["Status"])
            if run["Status"] == "COMPLETED":
                break
            import asyncio

            await asyncio.sleep(0.05)
        listed = (await client.get_workflow_runs(Name=workflow, MaxResults=5))["Runs"]
    assert statuses == {"RUNNING", "COMPLETED"}
    assert [node_runs(run, name)[0]["JobRunState"] for name in ("extract", "transform", "load")] == [
        "SUCCEEDED"
    ] * 3
    assert [r["WorkflowRunId"] for r in listed] == [run_id]
    assert "Graph" not in listed[0]


def test_crawler_nodes_and_run_properties(aws_emulator, glue):
    glue.create_database(DatabaseInput={"Name": "lake"})
    glue.create_crawler(
        Name="discover", Role="r", DatabaseName="lake", Targets={"S3Targets": [{"Path": "s3://l/"}]}
    )
    create_jobs(aws_emulator, glue, "load")
    glue.create_workflow(Name="crawl-then-load")
    glue.create_trigger(
        Name="start", WorkflowName="crawl-then-load", Type="ON_DEMAND", Actions=[{"CrawlerName": "discover"}]
    )
    glue.create_trigger(
        Name="crawled",
        WorkflowName="crawl-then-load",
        Type="CONDITIONAL",
        StartOnCreation=True,
        Predicate={
            "Conditions": [
                {"LogicalOperator": "EQUALS", "CrawlerName": "discover", "CrawlState": "SUCCEEDED"}
            ]
        },
        Actions=[{"JobName": "load"}],
    )
    run_id = glue.start_workflow_run(Name="crawl-then-load", RunProperties={"day": "d1"})["RunId"]
    glue.put_workflow_run_properties(Name="crawl-then-load", RunId=run_id, RunProperties={"rows": "10"})
    run = run_to_end(aws_emulator, glue, "crawl-then-load", run_id)
    crawler = next(n for n in run["Graph"]["Nodes"] if n["Type"] == "CRAWLER")
    assert [crawl["State"] for crawl in crawler["CrawlerDetails"]["Crawls"]] == ["SUCCEEDED"]
    assert node_runs(run, "load")[0]["TriggerName"] == "crawled"
    properties = glue.get_workflow_run_properties(Name="crawl-then-load", RunId=run_id)["RunProperties"]
    assert properties == run["WorkflowRunProperties"] == {"day": "d1", "rows": "10"}
    resumed = glue.resume_workflow_run(Name="crawl-then-load", RunId=run_id, NodeIds=[crawler["UniqueId"]])
    run_to_end(aws_emulator, glue, "crawl-then-load", resumed["RunId"])
    assert run_states(glue, "load") == ["SUCCEEDED", "SUCCEEDED"]
