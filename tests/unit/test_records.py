"""JobRecord schema v1: the public contract every consumer sees, built from the sample events.

Expected values come from the event files and from ARCHITECTURE.md's schema table, never from the
normaliser itself.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from urllib.parse import unquote

import pytest

from batchlens.events import parse_event
from batchlens.failures import FailureCategory
from batchlens.logtail import wants_excerpt
from batchlens.records import Enrichment, JobRecord, normalise
from tests.conftest import (
    EventLoader,
    Json,
    ecs_app_failed_sidecar_logging_apart,
    read_event,
    sample_event_names,
    variant,
)

# ARCHITECTURE.md, "JobRecord, schema v1": the keys of the public JSON, exactly.
RECORD_KEYS = {
    "schemaVersion",
    "eventType",
    "eventId",
    "eventTime",
    "account",
    "region",
    "jobId",
    "jobArn",
    "jobName",
    "jobQueue",
    "jobDefinition",
    "jobKind",
    "arrayIndex",
    "parentJobId",
    "arraySize",
    "arrayStatusSummary",
    "serviceJobType",
    "status",
    "statusReason",
    "isTerminal",
    "createdAt",
    "startedAt",
    "stoppedAt",
    "queuedSeconds",
    "runSeconds",
    "totalSeconds",
    "attempts",
    "attemptsUsed",
    "attemptsAllowed",
    "failure",
    "links",
    "enrichment",
    "redacted",
    "logExcerpt",  # additive: set only on alerting failures (logtail.py)
    "truncated",  # additive: the record was cut to fit a size limit (limits.py)
}
QUEUE_KEYS = {"name", "arn"}
DEFINITION_KEYS = {"name", "revision", "arn"}
ATTEMPT_KEYS = {
    "number",
    "startedAt",
    "stoppedAt",
    "durationSeconds",
    "exitCode",
    "reason",
    "statusReason",
    "logGroup",
    "logStreamName",
    "logUrl",
    "resourceArn",
}
FAILURE_KEYS = {"category", "summary", "detail", "retryable", "batchWillRetry", "nextStep"}
LINK_KEYS = {"console", "logs", "trainingJob"}
TIME_FIELDS = ("eventTime", "createdAt", "startedAt", "stoppedAt")
ISO_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$")

# The jobKind of each sample, from events/README.md.
JOB_KINDS = {
    "array-child-failed.json": "ARRAY_CHILD",
    "array-parent-failed.json": "ARRAY_PARENT",
    "multinode-failed.json": "MULTINODE_PARENT",
    "multinode-node-failed.json": "MULTINODE_NODE",
    "eks-failed-oom.json": "EKS",
    "service-job-failed.json": "SERVICE",
    "service-job-succeeded.json": "SERVICE",
    "service-queue-blocked.json": "SERVICE",
    "ecs-properties-succeeded.json": "CONTAINER",
}
NO_FAILURE = [
    "job-runnable",
    "job-running",
    "job-succeeded",
    "ecs-properties-succeeded",
    "service-job-succeeded",
    "job-submitted-unknown-fields",
]
WITH_FAILURE = [
    name.removesuffix(".json")
    for name in sample_event_names()
    if read_event(name)["detail"]["status"] == "FAILED"
    or "Blocked" in read_event(name)["detail-type"]
]


def record_of(event: Json, described: Json | None = None) -> JobRecord:
    return normalise(parse_event(event), described)


def json_of(name: str) -> Json:
    return record_of(read_event(name)).to_json_dict()


def epoch_ms(iso: str) -> int:
    return round(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)


def cloudwatch_target(url: str) -> tuple[str, str | None]:
    """The (log group, log stream) a CloudWatch console deep link opens."""
    fragment = url.split("#logsV2:log-groups/log-group/", 1)[1]
    group, _, stream = fragment.partition("/log-events/")

    def decode(part: str) -> str:
        return unquote(unquote(part.replace("$", "%")))

    return decode(group), decode(stream) if stream else None


# --- shape -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sample_event_names())
def test_record_keys_are_exactly_schema_v1(name: str) -> None:
    # Given any sample event; when it is normalised
    record = json_of(name)

    # Then the JSON carries exactly the documented keys, nested objects included
    assert set(record) == RECORD_KEYS
    assert record["schemaVersion"] == 1
    assert set(record["jobQueue"]) == QUEUE_KEYS
    assert set(record["links"]) == LINK_KEYS
    if record["jobDefinition"] is not None:
        assert set(record["jobDefinition"]) == DEFINITION_KEYS
    for attempt in record["attempts"]:
        assert set(attempt) == ATTEMPT_KEYS
    if record["failure"] is not None:
        assert set(record["failure"]) == FAILURE_KEYS


@pytest.mark.parametrize("name", sample_event_names())
def test_times_are_iso_utc_with_z_and_equal_the_event_epochs(name: str) -> None:
    # Given a sample event with epoch-millisecond times
    event = read_event(name)
    detail = event["detail"]

    # When it is normalised
    record = json_of(name)

    # Then every time is ISO-8601 UTC ending in Z, at the instant the event reported
    for field in TIME_FIELDS:
        if record[field] is not None:
            assert ISO_UTC.match(record[field]), (field, record[field])
    assert epoch_ms(record["eventTime"]) == epoch_ms(event["time"])
    for field in ("createdAt", "startedAt", "stoppedAt"):
        if detail.get(field):
            assert epoch_ms(record[field]) == detail[field]
        else:
            assert record[field] is None
    for attempt, source in zip(record["attempts"], detail.get("attempts", []), strict=False):
        for field in ("startedAt", "stoppedAt"):
            if source.get(field):
                assert ISO_UTC.match(attempt[field])
                assert epoch_ms(attempt[field]) == source[field]


def test_envelope_fields_come_from_the_envelope(load_event: EventLoader) -> None:
    # Given a sample event
    event = load_event("job-failed-spot")

    # When normalised
    record = record_of(event).to_json_dict()

    # Then the envelope's id, account and region are the record's
    assert (record["eventId"], record["account"], record["region"]) == (
        event["id"],
        event["account"],
        event["region"],
    )
    assert record["eventType"] == "JOB_STATE_CHANGE"


def test_queue_and_definition_are_split_from_their_arns(load_event: EventLoader) -> None:
    # Given a job whose queue and definition are ARNs
    event = load_event("job-failed-app-error")
    queue_arn = event["detail"]["jobQueue"]
    definition_arn = event["detail"]["jobDefinition"]

    # When normalised
    record = record_of(event).to_json_dict()

    # Then name, revision and ARN are separate values
    assert record["jobQueue"] == {"name": queue_arn.split("/")[-1], "arn": queue_arn}
    name, revision = definition_arn.split("/")[-1].split(":")
    assert record["jobDefinition"] == {
        "name": name,
        "revision": int(revision),
        "arn": definition_arn,
    }


@pytest.mark.parametrize("revision", ["\u00b2", "9" * 5_000])
def test_a_revision_int_cannot_read_is_unknown_and_never_fails_the_record(
    load_event: EventLoader, revision: str
) -> None:
    # Given a job whose definition ARN ends in digits Python's isdigit() accepts but int() refuses:
    # a superscript two, and more digits than int() converts
    event = load_event("job-failed-app-error")
    arn = event["detail"]["jobDefinition"].rsplit(":", 1)[0] + f":{revision}"
    event = variant(event, jobDefinition=arn)

    # When normalised (README: `normalise` never raises on what `parse_event` accepts)
    record = record_of(event).to_json_dict()

    # Then the definition keeps its name and ARN, and its revision is unknown
    assert record["jobDefinition"] == {
        "name": arn.split("/")[-1].split(":")[0],
        "revision": None,
        "arn": arn,
    }


def test_a_definition_given_by_name_has_no_arn(load_event: EventLoader) -> None:
    # Given a job whose definition is written as name:revision (a hand-made event), not an ARN
    event = variant(load_event("job-failed-app-error"), jobDefinition="etl-transform:4")

    # When normalised, then name and revision are read and no ARN is made up
    record = record_of(event).to_json_dict()
    assert record["jobDefinition"] == {"name": "etl-transform", "revision": 4, "arn": None}


# --- durations and attempts ------------------------------------------------------------------


def test_durations_follow_the_job_times(load_event: EventLoader) -> None:
    # Given a finished job with three attempts
    event = load_event("job-failed-oom")
    detail = event["detail"]

    # When normalised
    record = record_of(event).to_json_dict()

    # Then run, total and queue-wait durations are the differences of the event's times
    assert record["runSeconds"] == pytest.approx((detail["stoppedAt"] - detail["startedAt"]) / 1000)
    assert record["totalSeconds"] == pytest.approx(
        (detail["stoppedAt"] - detail["createdAt"]) / 1000
    )
    first_start = detail["attempts"][0]["startedAt"]
    assert record["queuedSeconds"] == pytest.approx((first_start - detail["createdAt"]) / 1000)
    for attempt, source in zip(record["attempts"], detail["attempts"], strict=True):
        expected = (source["stoppedAt"] - source["startedAt"]) / 1000
        assert attempt["durationSeconds"] == pytest.approx(expected)


def test_a_job_that_never_started_has_no_run_or_queue_duration(load_event: EventLoader) -> None:
    # Given a job cancelled while still queued
    event = load_event("job-cancelled-state-time-limit")
    assert not event["detail"].get("startedAt")

    # When normalised
    record = record_of(event).to_json_dict()

    # Then only the total is known
    assert record["runSeconds"] is None
    assert record["queuedSeconds"] is None
    assert record["totalSeconds"] == pytest.approx(
        (event["detail"]["stoppedAt"] - event["detail"]["createdAt"]) / 1000
    )


def test_a_running_job_has_no_stop_time_and_counts_its_current_attempt(
    load_event: EventLoader,
) -> None:
    # Given a job that is running its first attempt
    event = load_event("job-running")
    assert event["detail"]["attempts"] == []

    # When normalised
    record = record_of(event).to_json_dict()

    # Then it has no stop time or run duration, and one attempt is in use
    assert record["stoppedAt"] is None
    assert record["runSeconds"] is None
    assert record["attemptsUsed"] == 1
    assert record["attemptsAllowed"] == event["detail"]["retryStrategy"]["attempts"]
    assert record["isTerminal"] is False


def test_attempts_used_and_allowed_follow_attempts_and_retry_strategy(
    load_event: EventLoader,
) -> None:
    # Given a job that used all of its retry attempts
    event = load_event("job-failed-oom")

    # When normalised
    record = record_of(event).to_json_dict()

    # Then it reports each attempt in order, with its exit code and reason
    assert record["attemptsUsed"] == len(event["detail"]["attempts"])
    assert record["attemptsAllowed"] == event["detail"]["retryStrategy"]["attempts"]
    assert [a["number"] for a in record["attempts"]] == [1, 2, 3]
    for attempt, source in zip(record["attempts"], event["detail"]["attempts"], strict=True):
        assert attempt["exitCode"] == source["container"]["exitCode"]
        assert attempt["reason"] == source["container"]["reason"]
        assert attempt["logStreamName"] == source["container"]["logStreamName"]
        assert attempt["resourceArn"] == source["container"]["taskArn"]


def test_a_zero_length_attempt_lasts_zero_seconds_and_a_backwards_one_has_no_duration(
    load_event: EventLoader,
) -> None:
    # Given a job whose first attempt stopped the millisecond it started, and whose second
    # attempt reports a stop before its start (clock skew between hosts)
    event = load_event("job-failed-oom")
    first, second, _ = event["detail"]["attempts"]
    first["stoppedAt"] = first["startedAt"]
    second["stoppedAt"] = second["startedAt"] - 1_000

    # When normalised
    attempts = record_of(event).to_json_dict()["attempts"]

    # Then the first lasted 0 seconds, and the second's duration is unknown, not negative
    assert attempts[0]["durationSeconds"] == 0.0
    assert attempts[1]["durationSeconds"] is None


def test_a_zero_epoch_time_is_no_time(load_event: EventLoader) -> None:
    # Given a queued job whose detail writes its unset start and stop times as 0
    event = variant(load_event("job-runnable"), startedAt=0, stoppedAt=0)

    # When normalised, then they are null, not 1970, and no duration is made of them
    record = record_of(event).to_json_dict()
    assert (record["startedAt"], record["stoppedAt"]) == (None, None)
    assert (record["runSeconds"], record["totalSeconds"]) == (None, None)


def test_without_a_retry_strategy_one_attempt_is_allowed(load_event: EventLoader) -> None:
    # Given a job submitted without retryStrategy
    event = variant(load_event("job-failed-app-error"), drop=["retryStrategy"])

    # When normalised, then Batch's default of one attempt applies
    assert record_of(event).attempts_allowed == 1


# --- log links ------------------------------------------------------------------------------


def test_log_links_honour_the_awslogs_group_of_the_job(load_event: EventLoader) -> None:
    # Given the OOM job, which logs to a custom awslogs-group
    event = load_event("job-failed-oom")
    group = event["detail"]["container"]["logConfiguration"]["options"]["awslogs-group"]
    assert group == "/custom/batch/genomics"

    # When normalised
    record = record_of(event).to_json_dict()

    # Then every attempt's deep link opens its own stream in that group
    for attempt, source in zip(record["attempts"], event["detail"]["attempts"], strict=True):
        assert attempt["logGroup"] == group
        assert cloudwatch_target(attempt["logUrl"]) == (group, source["container"]["logStreamName"])
        assert attempt["logUrl"].startswith("https://us-east-1.console.aws.amazon.com/cloudwatch/")
    # And the record's log link is the latest attempt's stream
    latest_stream = event["detail"]["attempts"][-1]["container"]["logStreamName"]
    assert cloudwatch_target(record["links"]["logs"]) == (group, latest_stream)


def test_an_empty_ecs_properties_leaves_the_container_log_group_in_force(
    load_event: EventLoader,
) -> None:
    # Given the OOM job (custom awslogs-group) with an `ecsProperties` that lists no task
    event = variant(load_event("job-failed-oom"), ecsProperties={"taskProperties": []})
    group = event["detail"]["container"]["logConfiguration"]["options"]["awslogs-group"]

    # When normalised, then its attempts still log to the container's own group
    record = record_of(event).to_json_dict()
    assert {a["logGroup"] for a in record["attempts"]} == {group}
    assert "4096 MiB" in record["failure"]["summary"]


def test_log_links_default_to_the_batch_log_group(load_event: EventLoader) -> None:
    # Given a job with no logConfiguration
    event = load_event("job-failed-app-error")
    assert "logConfiguration" not in event["detail"]["container"]

    # When normalised
    record = record_of(event).to_json_dict()

    # Then its streams are linked in /aws/batch/job, Batch's default group
    stream = event["detail"]["attempts"][0]["container"]["logStreamName"]
    assert record["attempts"][0]["logGroup"] == "/aws/batch/job"
    assert cloudwatch_target(record["links"]["logs"]) == ("/aws/batch/job", stream)


@pytest.mark.parametrize("driver", ["splunk", "awsfirelens", "fluentd"])
def test_a_job_logging_through_another_driver_has_no_cloudwatch_log(
    load_event: EventLoader, driver: str
) -> None:
    # Given a failed job whose container sends its output to another log driver: Batch still
    # names a stream, but CloudWatch Logs never receives it
    event = load_event("job-failed-app-error")
    event["detail"]["container"]["logConfiguration"] = {"logDriver": driver, "options": {}}
    stream = event["detail"]["attempts"][0]["container"]["logStreamName"]

    # When normalised
    record = record_of(event)

    # Then no link or log group points at a log that does not exist, and no excerpt is read
    attempt = record.attempts[0]
    assert (attempt.log_group, attempt.log_url) == (None, None)
    # And the stream Batch named is still recorded as Batch reported it
    assert attempt.log_stream_name == stream
    assert record.links.logs is None
    assert not wants_excerpt(record, lines=20)


def test_a_running_job_of_another_log_driver_has_no_log_link(load_event: EventLoader) -> None:
    # Given a running job whose container logs to Splunk
    event = load_event("job-running")
    event["detail"]["container"]["logConfiguration"] = {"logDriver": "splunk", "options": {}}
    assert event["detail"]["container"]["logStreamName"]

    # When normalised, then its logs link is null rather than a CloudWatch page for nothing
    assert record_of(event).links.logs is None


def test_log_links_open_the_region_named_by_awslogs_region(load_event: EventLoader) -> None:
    # Given a job in us-east-1 whose awslogs driver writes to eu-west-1
    event = load_event("job-failed-app-error")
    assert event["region"] == "us-east-1"
    event["detail"]["container"]["logConfiguration"] = {
        "logDriver": "awslogs",
        "options": {"awslogs-group": "/custom/etl", "awslogs-region": "eu-west-1"},
    }
    stream = event["detail"]["attempts"][0]["container"]["logStreamName"]

    # When normalised
    record = record_of(event).to_json_dict()

    # Then the attempt's link and the record's link open the stream in eu-west-1's console
    for url in (record["attempts"][0]["logUrl"], record["links"]["logs"]):
        assert url.startswith("https://eu-west-1.console.aws.amazon.com/cloudwatch/home?")
        assert "region=eu-west-1#" in url
        assert cloudwatch_target(url) == ("/custom/etl", stream)
    # And the Batch console link stays in the job's own Region
    assert record["links"]["console"].startswith("https://us-east-1.console.aws.amazon.com/batch/")


def test_a_running_job_links_the_stream_of_its_container(load_event: EventLoader) -> None:
    # Given a running job: no finished attempt yet, but the container has a stream
    event = load_event("job-running")

    # When normalised
    record = record_of(event).to_json_dict()

    # Then the logs link opens that stream
    stream = event["detail"]["container"]["logStreamName"]
    assert cloudwatch_target(record["links"]["logs"]) == ("/aws/batch/job", stream)


def test_a_job_that_never_started_a_container_has_no_log_link(load_event: EventLoader) -> None:
    # Given an image-pull failure: the container never started, so it has no stream
    record = record_of(load_event("job-failed-image-pull")).to_json_dict()

    # Then no link points at a stream that does not exist
    assert record["links"]["logs"] is None
    assert all(a["logUrl"] is None for a in record["attempts"])


def test_ecs_properties_attempts_link_the_failed_or_first_task_container(
    load_event: EventLoader,
) -> None:
    # Given a multi-container ECS-properties job
    event = load_event("ecs-properties-succeeded")
    task = event["detail"]["attempts"][0]["taskProperties"][0]

    # When normalised
    record = record_of(event).to_json_dict()

    # Then the attempt speaks for the app container of its task
    attempt = record["attempts"][0]
    assert attempt["logStreamName"] == task["containers"][0]["logStreamName"]
    assert attempt["resourceArn"] == task["taskArn"]
    assert attempt["exitCode"] == 0


def test_ecs_properties_logs_are_in_the_task_containers_group_beside_an_empty_container(
    load_event: EventLoader,
) -> None:
    # Given an ECS-properties job whose task containers log to their own group, and which
    # carries an empty `container` beside them
    event = load_event("ecs-properties-succeeded")
    assert event["detail"]["container"] == {}
    for container in event["detail"]["ecsProperties"]["taskProperties"][0]["containers"]:
        container["logConfiguration"] = {
            "logDriver": "awslogs",
            "options": {"awslogs-group": "/custom/report-render"},
        }

    # When normalised
    record = record_of(event).to_json_dict()

    # Then the links open the stream in that group
    stream = event["detail"]["attempts"][0]["taskProperties"][0]["containers"][0]["logStreamName"]
    assert record["attempts"][0]["logGroup"] == "/custom/report-render"
    assert cloudwatch_target(record["links"]["logs"]) == ("/custom/report-render", stream)


def _sidecar_first_and_app_out_of_memory(load_event: EventLoader) -> tuple[Json, str]:
    """A failed ECS-properties job whose sidecar, listed first, was killed (137) as the task
    stopped, after the app container was killed for memory; and the app's reason."""
    event = load_event("ecs-properties-succeeded")
    detail = event["detail"]
    detail["status"] = "FAILED"
    oom = "OutOfMemoryError: Container killed due to memory usage"
    for containers in (
        detail["ecsProperties"]["taskProperties"][0]["containers"],
        detail["attempts"][0]["taskProperties"][0]["containers"],
    ):
        containers.reverse()
        containers[0]["exitCode"] = 137
        containers[1].update(exitCode=137, reason=oom)
    return event, oom


def test_a_sidecar_killed_first_does_not_hide_the_app_containers_oom(
    load_event: EventLoader,
) -> None:
    # Given a failed ECS-properties job: the sidecar is listed first and was killed (137) as the
    # task stopped; the app container after it was killed for memory
    event, oom = _sidecar_first_and_app_out_of_memory(load_event)
    detail = event["detail"]
    assert [c["name"] for c in detail["attempts"][0]["taskProperties"][0]["containers"]] == [
        "otel-collector",
        "app",
    ]

    # When normalised
    record = record_of(event).to_json_dict()

    # Then the app's reason speaks for the attempt and the job: it ran out of memory
    app = detail["attempts"][0]["taskProperties"][0]["containers"][1]
    assert record["attempts"][0]["reason"] == oom
    assert record["attempts"][0]["logStreamName"] == app["logStreamName"]
    assert record["failure"]["category"] == "OUT_OF_MEMORY"


def test_an_out_of_memory_summary_quotes_the_memory_of_the_container_that_ran_out(
    load_event: EventLoader,
) -> None:
    # Given a failed ECS-properties job: its sidecar (512 MiB) is listed first and was killed as
    # the task stopped; the app container after it (4096 MiB) was killed for memory
    event, _ = _sidecar_first_and_app_out_of_memory(load_event)
    detail = event["detail"]
    sidecar, app = detail["ecsProperties"]["taskProperties"][0]["containers"]
    assert {"type": "MEMORY", "value": "512"} in sidecar["resourceRequirements"]
    assert {"type": "MEMORY", "value": "4096"} in app["resourceRequirements"]

    # When normalised
    failure = record_of(event).to_json_dict()["failure"]

    # Then what happened and the next step name the app's memory, not the sidecar's
    assert failure["category"] == "OUT_OF_MEMORY"
    assert "more than its 4096 MiB" in failure["summary"]
    assert "(now 4096 MiB)" in failure["nextStep"]


def test_an_out_of_memory_summary_quotes_the_memory_a_job_definition_sets_the_old_way(
    load_event: EventLoader,
) -> None:
    # Given the OOM job, its memory set by the container's `memory` (2048 MiB), not by a
    # MEMORY resource requirement
    event = load_event("job-failed-oom")
    container = event["detail"]["container"]
    container["resourceRequirements"] = [{"type": "VCPU", "value": "2"}]
    container["memory"] = 2048

    # When normalised, then the summary and next step quote that memory
    failure = record_of(event).to_json_dict()["failure"]
    assert failure["category"] == "OUT_OF_MEMORY"
    assert "more than its 2048 MiB" in failure["summary"]
    assert "(now 2048 MiB)" in failure["nextStep"]


def test_a_blocked_queue_is_why_a_retried_job_waits_not_its_old_attempt(
    load_event: EventLoader,
) -> None:
    # Given a job whose attempt 1 lost its Spot host, blocked in its queue for capacity now
    blocked = load_event("job-queue-blocked-capacity")
    retried = load_event("job-retried-runnable")
    assert retried["detail"]["attempts"][0]["statusReason"].startswith("Host EC2")
    for key in ("attempts", "container", "retryStrategy"):
        blocked["detail"][key] = retried["detail"][key]

    # When normalised
    record = record_of(blocked).to_json_dict()

    # Then the block is classified by why the job cannot start, not by the host it lost
    assert record["failure"]["category"] == "CAPACITY"
    assert record["failure"]["summary"].startswith("Queue blocked — Not enough capacity")
    assert "Host EC2" not in record["failure"]["detail"]
    assert len(record["attempts"]) == 1  # the attempt itself is still in the record


def _sidecar_first(detail: Json, *, app_exit: int) -> None:
    """The ECS-properties sample with its non-essential sidecar listed first, killed (137) as
    the task stopped after the essential app exited with `app_exit`."""
    for containers in (
        detail["ecsProperties"]["taskProperties"][0]["containers"],
        detail["attempts"][0]["taskProperties"][0]["containers"],
    ):
        containers.reverse()
        containers[0]["exitCode"] = 137
        containers[1]["exitCode"] = app_exit
    assert detail["ecsProperties"]["taskProperties"][0]["containers"][0]["essential"] is False


def test_a_non_essential_sidecar_killed_as_the_task_stopped_never_speaks_for_the_job(
    load_event: EventLoader,
) -> None:
    # Given a failed ECS-properties job: the essential app exited 1, and ECS then killed the
    # non-essential sidecar listed before it
    event = load_event("ecs-properties-succeeded")
    event["detail"]["status"] = "FAILED"
    _sidecar_first(event["detail"], app_exit=1)

    # When normalised
    record = record_of(event).to_json_dict()

    # Then the app's exit and stream speak for the attempt and the job, not the sidecar's kill
    app = event["detail"]["attempts"][0]["taskProperties"][0]["containers"][1]
    assert record["attempts"][0]["exitCode"] == 1
    assert record["attempts"][0]["logStreamName"] == app["logStreamName"]
    assert record["failure"]["category"] == "APPLICATION_ERROR"
    assert "137" not in record["failure"]["summary"]


def test_a_container_that_does_not_say_it_is_essential_is_essential(
    load_event: EventLoader,
) -> None:
    # Given the failed ECS-properties job of the test above (the app exited 1, the non-essential
    # sidecar listed before it was killed), the app's definition leaving `essential` out
    # (ECS's default is true)
    event = load_event("ecs-properties-succeeded")
    event["detail"]["status"] = "FAILED"
    _sidecar_first(event["detail"], app_exit=1)
    del event["detail"]["ecsProperties"]["taskProperties"][0]["containers"][1]["essential"]

    # When normalised
    record = record_of(event).to_json_dict()

    # Then the app still speaks for the attempt, not the sidecar's kill
    app = event["detail"]["attempts"][0]["taskProperties"][0]["containers"][1]
    assert record["attempts"][0]["exitCode"] == 1
    assert record["attempts"][0]["logStreamName"] == app["logStreamName"]
    assert record["failure"]["category"] == "APPLICATION_ERROR"


def test_a_succeeded_job_does_not_take_its_killed_sidecars_exit_code(
    load_event: EventLoader,
) -> None:
    # Given a succeeded ECS-properties job whose sidecar, listed first, was killed at the end
    event = load_event("ecs-properties-succeeded")
    _sidecar_first(event["detail"], app_exit=0)

    # When normalised
    record = record_of(event).to_json_dict()

    # Then its attempt exited 0, as its essential app did
    app = event["detail"]["attempts"][0]["taskProperties"][0]["containers"][1]
    assert record["attempts"][0]["exitCode"] == 0
    assert record["attempts"][0]["logStreamName"] == app["logStreamName"]


def test_an_eks_container_that_completed_does_not_hide_the_one_that_failed(
    load_event: EventLoader,
) -> None:
    # Given a failed EKS attempt: a sidecar listed first completed (exit 0, Kubernetes' reason
    # "Completed"), the main container exited 1
    event = load_event("eks-failed-oom")
    attempt = event["detail"]["eksAttempts"][0]
    main = attempt["containers"][0]
    main.update(exitCode=1, reason="Error")
    attempt["containers"] = [{"name": "sidecar", "exitCode": 0, "reason": "Completed"}, main]

    # When normalised
    record = record_of(event).to_json_dict()

    # Then the failed container speaks for the attempt
    assert record["attempts"][0]["exitCode"] == 1
    assert record["attempts"][0]["reason"] == "Error"
    assert record["failure"]["category"] == "APPLICATION_ERROR"


def test_an_eks_job_without_attempts_is_classified_by_its_pod_containers(
    load_event: EventLoader,
) -> None:
    # Given a failed EKS job that lists no attempt; its pod container says it was OOM-killed
    event = load_event("eks-failed-oom")
    event["detail"]["eksAttempts"] = []
    event["detail"]["eksProperties"]["podProperties"]["containers"][0].update(
        exitCode=137, reason="OOMKilled"
    )

    # When normalised
    record = record_of(event).to_json_dict()

    # Then the pod container's exit and reason classify the failure
    assert record["attempts"] == []
    assert record["failure"]["category"] == "OUT_OF_MEMORY"


def test_an_eks_image_pull_failure_names_the_pods_image(load_event: EventLoader) -> None:
    # Given a failed EKS job whose container could not pull its image: Kubernetes' reason
    # "ErrImagePull" names no image
    event = load_event("eks-failed-oom")
    event["detail"]["eksAttempts"][0]["containers"][0].update(exitCode=None, reason="ErrImagePull")
    image = event["detail"]["eksProperties"]["podProperties"]["containers"][0]["image"]

    # When normalised
    failure = record_of(event).to_json_dict()["failure"]

    # Then the summary names the image of the pod's container
    assert failure["category"] == "IMAGE_PULL"
    assert image in failure["summary"]


def test_sagemaker_attempts_are_in_the_training_jobs_log_group(load_event: EventLoader) -> None:
    # Given a SageMaker training service job with one attempt
    event = load_event("service-job-failed")

    # When normalised
    attempt = record_of(event).to_json_dict()["attempts"][0]

    # Then its log group is SageMaker's (README), with no stream name Batch does not know
    assert attempt["logGroup"] == "/aws/sagemaker/TrainingJobs"
    assert attempt["logStreamName"] is None
    assert cloudwatch_target(attempt["logUrl"])[0].startswith("/aws/sagemaker/TrainingJobs")


def test_service_jobs_link_the_sagemaker_training_job_and_its_logs(load_event: EventLoader) -> None:
    # Given a SageMaker training service job
    event = load_event("service-job-succeeded")
    training_arn = event["detail"]["latestAttempt"]["serviceResourceId"]["value"]
    training_name = training_arn.split("/")[-1]

    # When normalised
    record = record_of(event).to_json_dict()

    # Then the record links the training job and SageMaker's log group, filtered to it
    assert record["serviceJobType"] == event["detail"]["serviceJobType"]
    assert record["jobDefinition"] is None
    assert record["links"]["trainingJob"].endswith(f"/jobs/{training_name}")
    assert "/sagemaker/" in record["links"]["trainingJob"]
    group, stream = cloudwatch_target(record["links"]["logs"])
    assert group.startswith("/aws/sagemaker/TrainingJobs")
    assert training_name in group + (stream or "")
    assert record["attempts"][0]["resourceArn"] == training_arn


@pytest.mark.parametrize(
    ("arn_partition", "region", "host"),
    [
        ("aws-us-gov", "us-gov-west-1", "https://us-gov-west-1.console.amazonaws-us-gov.com"),
        ("aws-cn", "cn-north-1", "https://cn-north-1.console.amazonaws.cn"),
    ],
)
def test_links_follow_the_partition_and_region_of_the_job_arn(
    load_event: EventLoader, arn_partition: str, region: str, host: str
) -> None:
    # Given a job in another partition
    event = load_event("job-failed-app-error")
    job_id = event["detail"]["jobId"]
    arn = f"arn:{arn_partition}:batch:{region}:123456789012:job/{job_id}"
    event = variant(event, jobArn=arn)

    # When normalised
    record = record_of(event).to_json_dict()

    # Then console and logs links use that partition's console host and region
    assert record["links"]["console"].startswith(host)
    assert f"region={region}" in record["links"]["console"]
    assert job_id in record["links"]["console"]
    assert record["links"]["logs"].startswith(host)


@pytest.mark.parametrize(
    ("region", "host"),
    [
        ("us-gov-west-1", "https://us-gov-west-1.console.amazonaws-us-gov.com"),
        ("cn-north-1", "https://cn-north-1.console.amazonaws.cn"),
        ("eu-west-1", "https://eu-west-1.console.aws.amazon.com"),
    ],
)
def test_without_a_job_arn_the_events_region_tells_the_partition(
    load_event: EventLoader, region: str, host: str
) -> None:
    # Given a job whose detail has no jobArn (optional in the API), in an event from `region`
    event = variant(
        load_event("job-failed-app-error"), envelope={"region": region}, drop=["jobArn"]
    )

    # When normalised; then its links open that partition's console
    links = record_of(event).to_json_dict()["links"]
    assert links["console"].startswith(host)
    assert links["logs"].startswith(host)


# --- kinds ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sample_event_names())
def test_job_kind_of_every_sample(name: str) -> None:
    # Given a sample; when normalised; then its kind is the one events/README.md documents
    assert json_of(name)["jobKind"] == JOB_KINDS.get(name, "CONTAINER")


def test_array_child_points_at_its_parent_with_its_index(load_event: EventLoader) -> None:
    # Given child 7 of the array parent sample
    child = load_event("array-child-failed")
    parent = load_event("array-parent-failed")

    # When the child is normalised
    record = record_of(child).to_json_dict()

    # Then it names its parent's job id and its own index
    assert record["parentJobId"] == parent["detail"]["jobId"]
    assert record["arrayIndex"] == child["detail"]["arrayProperties"]["index"] == 7


def test_array_parent_carries_size_and_children_summary(load_event: EventLoader) -> None:
    # Given the array parent of 1000 children
    event = load_event("array-parent-failed")

    # When normalised
    record = record_of(event).to_json_dict()

    # Then its size and status summary are the event's, and it has no parent
    assert record["arraySize"] == event["detail"]["arrayProperties"]["size"]
    assert record["arrayStatusSummary"] == event["detail"]["arrayProperties"]["statusSummary"]
    assert record["parentJobId"] is None
    assert record["arrayIndex"] is None


def test_the_first_array_child_is_a_child_too(load_event: EventLoader) -> None:
    # Given child 0 of the array parent sample (index 0, the first Batch starts)
    parent_id = load_event("array-parent-failed")["detail"]["jobId"]
    child = load_event("array-child-failed")
    child = variant(
        child, jobId=f"{parent_id}:0", arrayProperties={"statusSummary": {}, "index": 0}
    )

    # When normalised, then it is an array child with index 0 that names its parent
    record = record_of(child).to_json_dict()
    assert (record["jobKind"], record["arrayIndex"]) == ("ARRAY_CHILD", 0)
    assert record["parentJobId"] == parent_id


def test_a_node_is_known_by_its_id_when_its_detail_has_no_node_details(
    load_event: EventLoader,
) -> None:
    # Given node 2 of the multi-node sample, without `nodeDetails` (its id still reads "<id>#2")
    node = variant(load_event("multinode-node-failed"), drop=["nodeDetails"])
    parent = load_event("multinode-failed")

    # When normalised, then it is a multi-node node of its parent
    record = record_of(node).to_json_dict()
    assert record["jobKind"] == "MULTINODE_NODE"
    assert record["parentJobId"] == parent["detail"]["jobId"]


def test_an_eks_job_is_known_by_its_attempts_without_its_pod_properties(
    load_event: EventLoader,
) -> None:
    # Given the EKS sample without `eksProperties`, its `eksAttempts` still there
    event = variant(load_event("eks-failed-oom"), drop=["eksProperties"])
    assert event["detail"]["eksAttempts"]

    # When normalised, then it is an EKS job
    assert record_of(event).to_json_dict()["jobKind"] == "EKS"


def test_multinode_node_points_at_its_parent(load_event: EventLoader) -> None:
    # Given node 2 of the multi-node sample
    node = load_event("multinode-node-failed")
    parent = load_event("multinode-failed")

    # When normalised, then its parent is the multi-node job
    record = record_of(node).to_json_dict()
    assert record["parentJobId"] == parent["detail"]["jobId"]
    assert record_of(parent).parent_job_id is None


# --- failure, terminal and enrichment ---------------------------------------------------------


@pytest.mark.parametrize("name", NO_FAILURE)
def test_success_and_normal_transitions_have_no_failure(name: str) -> None:
    # Given a job that is fine; when normalised; then nothing is reported as wrong
    assert json_of(name)["failure"] is None


@pytest.mark.parametrize("name", WITH_FAILURE)
def test_failed_and_blocked_jobs_carry_a_failure(name: str) -> None:
    # Given a failed job or a blocked queue; when normalised; then a failure explains it
    failure = json_of(name)["failure"]
    assert failure is not None
    assert failure["summary"]
    assert failure["nextStep"]


@pytest.mark.parametrize(
    ("name", "terminal"),
    [
        ("job-succeeded", True),
        ("job-failed-oom", True),
        ("job-running", False),
        ("job-runnable", False),
        ("job-queue-blocked-capacity", False),
    ],
)
def test_terminal_means_succeeded_or_failed(name: str, terminal: bool) -> None:
    assert json_of(name)["isTerminal"] is terminal


def test_a_blocked_queue_is_a_failure_of_a_runnable_job(load_event: EventLoader) -> None:
    # Given a queue-blocked event
    record = record_of(load_event("job-queue-blocked-capacity")).to_json_dict()

    # Then the job is still RUNNABLE, and the reason it cannot start is its failure
    assert record["eventType"] == "JOB_QUEUE_BLOCKED"
    assert record["status"] == "RUNNABLE"
    assert record["failure"]["category"] == "CAPACITY"


def test_a_retried_attempt_says_batch_will_retry(load_event: EventLoader) -> None:
    # Given a job back in RUNNABLE after a lost Spot host, with attempts left
    record = record_of(load_event("job-retried-runnable")).to_json_dict()

    # Then it is not terminal and the failure says Batch retries it
    assert record["isTerminal"] is False
    assert record["failure"]["batchWillRetry"] is True


def test_without_a_description_the_record_is_event_only(load_event: EventLoader) -> None:
    # Given an event and no API description; when normalised; then it says so
    assert record_of(load_event("job-failed-oom")).enrichment is Enrichment.EVENT_ONLY


def test_a_description_fills_gaps_but_never_moves_the_job_past_the_event(
    load_event: EventLoader,
) -> None:
    # Given a RUNNING event without its job definition, and a later description (SUCCEEDED)
    running = variant(load_event("job-running"), drop=["jobDefinition"])
    described: dict[str, Any] = load_event("job-succeeded")["detail"]

    # When normalised with that description
    record = record_of(running, described).to_json_dict()

    # Then the missing definition is the description's
    assert record["jobDefinition"]["arn"] == described["jobDefinition"]
    assert record["enrichment"] == "DESCRIBED"
    # And the job is where the event left it: running, not stopped, no finished attempt
    assert record["status"] == "RUNNING"
    assert "stoppedAt" in described
    assert described["attempts"]
    assert record["stoppedAt"] is None
    assert record["runSeconds"] is None
    assert record["statusReason"] is None
    assert record["attempts"] == []
    assert record["isTerminal"] is False


def test_ecs_properties_logs_are_in_the_failed_containers_own_group() -> None:
    # Given a failed ECS-properties job: the app container (exit 1) logs to Batch's default group,
    # the sidecar to a group of its own
    event = ecs_app_failed_sidecar_logging_apart()

    # When normalised
    record = record_of(event).to_json_dict()

    # Then the app's stream is looked for in the app's group (the default), not the sidecar's
    stream = event["detail"]["attempts"][0]["taskProperties"][0]["containers"][0]["logStreamName"]
    assert record["attempts"][0]["logStreamName"] == stream
    assert record["attempts"][0]["logGroup"] == "/aws/batch/job"
    assert cloudwatch_target(record["links"]["logs"]) == ("/aws/batch/job", stream)


def test_a_starting_job_counts_the_attempt_it_is_starting(load_event: EventLoader) -> None:
    # Given a job in STARTING for its first attempt (README: attempts started, finished + the
    # running one)
    event = variant(load_event("job-running"), status="STARTING")

    # When normalised, then one attempt is in use
    assert record_of(event).to_json_dict()["attemptsUsed"] == 1


def test_an_array_child_has_no_summary_of_children(load_event: EventLoader) -> None:
    # Given an array child, whose arrayProperties carry an empty statusSummary
    event = load_event("array-child-failed")
    assert event["detail"]["arrayProperties"]["statusSummary"] == {}

    # When normalised, then it has no summary (null), not an empty one
    assert record_of(event).to_json_dict()["arrayStatusSummary"] is None


def test_a_description_never_replaces_what_the_event_itself_says(load_event: EventLoader) -> None:
    # Given an array parent's FAILED event, and a description of it with other child counts
    event = load_event("array-parent-failed")
    described: dict[str, Any] = load_event("array-parent-failed")["detail"]
    described["arrayProperties"]["statusSummary"] = {"FAILED": 1, "SUCCEEDED": 999}

    # When normalised with that description
    record = record_of(event, described).to_json_dict()

    # Then the counts are the event's own
    assert record["arrayStatusSummary"] == event["detail"]["arrayProperties"]["statusSummary"]


def test_a_later_description_adds_no_eks_attempt_the_event_did_not_have(
    load_event: EventLoader,
) -> None:
    # Given an EKS job's RUNNING event, which lists no attempt (the key left out, as the event of
    # a job without attempts may), and its description after the attempt failed
    described: dict[str, Any] = load_event("eks-failed-oom")["detail"]
    running = variant(
        load_event("eks-failed-oom"), status="RUNNING", drop=["eksAttempts", "stoppedAt"]
    )

    # When normalised with that description, then it is running its first attempt
    record = record_of(running, described).to_json_dict()
    assert (record["attempts"], record["attemptsUsed"]) == ([], 1)


def test_a_later_description_does_not_link_a_training_job_the_event_had_not_started(
    load_event: EventLoader,
) -> None:
    # Given a SageMaker service job's RUNNABLE event (no attempt yet) and its later description
    described: dict[str, Any] = load_event("service-job-failed")["detail"]
    runnable = variant(
        load_event("service-job-failed"),
        status="RUNNABLE",
        attempts=[],
        drop=["latestAttempt", "startedAt", "stoppedAt", "statusReason"],
    )

    # When normalised with that description, then no training job or log is linked yet
    links = record_of(runnable, described).to_json_dict()["links"]
    assert (links["trainingJob"], links["logs"]) == (None, None)


def test_a_later_termination_does_not_turn_a_retried_attempt_into_a_cancel(
    load_event: EventLoader,
) -> None:
    # Given a job back in RUNNABLE after a lost Spot host, and a description after a person
    # terminated it
    event = load_event("job-retried-runnable")
    described: dict[str, Any] = {**event["detail"], "status": "FAILED", "isTerminated": True}

    # When normalised with that description
    failure = record_of(event, described).to_json_dict()["failure"]

    # Then the record says what the event says: a host loss that Batch retries
    assert failure["category"] == "HOST_TERMINATED"
    assert failure["batchWillRetry"] is True


def test_cancelled_and_terminated_jobs_are_cancellations_whatever_their_reason(
    load_event: EventLoader,
) -> None:
    # Given an app-error job marked isCancelled, and a SageMaker job marked isTerminated
    cancelled = variant(load_event("job-failed-app-error"), isCancelled=True)
    terminated = variant(load_event("service-job-failed"), isTerminated=True)

    # When normalised, then both are cancellations that Batch never retries
    for event, verb in ((cancelled, "Cancelled"), (terminated, "Terminated")):
        failure = record_of(event).to_json_dict()["failure"]
        assert failure["category"] == "CANCELLED"
        assert failure["summary"].startswith(verb)
        assert failure["batchWillRetry"] is False


def test_a_timeout_summary_quotes_the_jobs_own_timeout(load_event: EventLoader) -> None:
    # Given a container job timed out under its 3600 s timeout, and a SageMaker job that ran
    # past its 7200 s one
    container = load_event("job-failed-timeout")
    assert container["detail"]["timeout"] == {"attemptDurationSeconds": 3600}
    service = load_event("service-job-failed")
    reason = "Received status from SageMaker:MaxRuntimeExceeded: Training job ran too long"
    service["detail"]["attempts"][0]["statusReason"] = reason
    service["detail"]["statusReason"] = reason
    service["detail"]["timeoutConfig"] = {"attemptDurationSeconds": 7200}

    # When normalised, then each summary names its timeout
    for event, seconds in ((container, 3600), (service, 7200)):
        failure = record_of(event).to_json_dict()["failure"]
        assert failure["category"] == "TIMEOUT"
        assert f"the {seconds} s job timeout" in failure["summary"]


def test_a_dependency_failure_names_the_jobs_it_depends_on(load_event: EventLoader) -> None:
    # Given a job that never ran because a job in its dependsOn failed
    event = load_event("job-failed-dependency")
    dependency = event["detail"]["dependsOn"][0]["jobId"]

    # When normalised without knowing which dependency failed, then the next step lists them
    assert dependency in record_of(event).to_json_dict()["failure"]["nextStep"]
    # And when the failed dependency is known, the summary names it and its category
    record = normalise(
        parse_event(event), dependency=(dependency, FailureCategory.OUT_OF_MEMORY)
    ).to_json_dict()
    assert f"job {dependency} (OUT_OF_MEMORY) failed" in record["failure"]["summary"]


def test_an_eks_attempt_is_spoken_for_by_its_failed_init_container(
    load_event: EventLoader,
) -> None:
    # Given a failed EKS attempt whose init container exited 2, so its main container never ran
    event = load_event("eks-failed-oom")
    attempt = event["detail"]["eksAttempts"][0]
    attempt["containers"] = [{"name": "default"}]
    attempt["initContainers"] = [{"name": "fetch-inputs", "exitCode": 2, "reason": "Error"}]

    # When normalised
    record = record_of(event).to_json_dict()

    # Then the init container's exit speaks for the attempt, which names its cluster
    assert (record["attempts"][0]["exitCode"], record["attempts"][0]["reason"]) == (2, "Error")
    assert record["attempts"][0]["resourceArn"] == attempt["eksClusterArn"]
    assert record["failure"]["category"] == "APPLICATION_ERROR"


def test_a_service_job_without_its_latest_attempt_links_its_last_training_job(
    load_event: EventLoader,
) -> None:
    # Given a SageMaker job's event without `latestAttempt`
    event = variant(load_event("service-job-failed"), drop=["latestAttempt"])
    arn = event["detail"]["attempts"][-1]["serviceResourceId"]["value"]

    # When normalised, then the training job of its last attempt is linked
    assert record_of(event).to_json_dict()["links"]["trainingJob"].endswith(arn.split("/")[-1])


def test_a_running_service_job_links_its_training_jobs_logs(load_event: EventLoader) -> None:
    # Given a SageMaker job RUNNING its first attempt: latestAttempt names the training job,
    # no attempt has finished
    event = variant(
        load_event("service-job-failed"), status="RUNNING", attempts=[], drop=["stoppedAt"]
    )
    name = event["detail"]["latestAttempt"]["serviceResourceId"]["value"].split("/")[-1]

    # When normalised, then the logs link opens SageMaker's log group filtered to that job
    logs = record_of(event).to_json_dict()["links"]["logs"]
    assert logs is not None
    assert cloudwatch_target(logs)[0].startswith("/aws/sagemaker/TrainingJobs")
    assert logs.endswith(f"$3FlogStreamNameFilter$3D{name}")


def test_a_running_job_links_its_stream_in_the_containers_awslogs_group(
    load_event: EventLoader,
) -> None:
    # Given a running job whose container logs to a group of its own
    event = load_event("job-running")
    event["detail"]["container"]["logConfiguration"] = {
        "logDriver": "awslogs",
        "options": {"awslogs-group": "/custom/etl"},
    }

    # When normalised, then the logs link opens its stream in that group
    stream = event["detail"]["container"]["logStreamName"]
    links = record_of(event).to_json_dict()["links"]
    assert cloudwatch_target(links["logs"]) == ("/custom/etl", stream)


def test_a_running_multi_container_job_links_its_essential_containers_stream(
    load_event: EventLoader,
) -> None:
    # Given a RUNNING ECS-properties job whose non-essential sidecar is listed first and no
    # container has exited yet
    event = variant(
        load_event("ecs-properties-succeeded"), status="RUNNING", attempts=[], drop=["stoppedAt"]
    )
    containers = event["detail"]["ecsProperties"]["taskProperties"][0]["containers"]
    containers.reverse()
    for container in containers:
        container.pop("exitCode", None)
    sidecar, app = containers
    assert (sidecar["essential"], app["essential"]) == (False, True)

    # When normalised, then the logs link opens the app's stream
    links = record_of(event).to_json_dict()["links"]
    assert cloudwatch_target(links["logs"])[1] == app["logStreamName"]


def test_a_record_cut_to_fit_counts_finished_attempts_by_the_last_ones_number(
    load_event: EventLoader,
) -> None:
    # Given the three-attempt OOM job's record with its middle attempt cut (as limits.py cuts)
    record = record_of(load_event("job-failed-oom"))
    cut = record.model_copy(update={"attempts": [record.attempts[0], record.attempts[-1]]})

    # Then it still counts three finished attempts
    assert cut.attempts_finished == 3


def test_a_job_running_its_second_attempt_links_the_stream_of_that_attempt(
    load_event: EventLoader,
) -> None:
    # Given a job RUNNING its second attempt: the first (lost with its Spot host) is in
    # `attempts`, the one under way only in `container` (AttemptDetail comes when it stops)
    event = load_event("job-retried-runnable")
    detail = event["detail"]
    first_stream = detail["attempts"][0]["container"]["logStreamName"]
    current_stream = "clickstream-hourly/default/9b2e41c07d3f4a5e8c6b1d2f3a4e5c6d"
    detail["container"]["logStreamName"] = current_stream
    event = variant(event, status="RUNNING", startedAt=detail["attempts"][0]["stoppedAt"] + 90_000)

    # When normalised
    record = record_of(event).to_json_dict()

    # Then the logs link opens the stream being written, not the finished attempt's
    assert cloudwatch_target(record["links"]["logs"]) == ("/aws/batch/job", current_stream)
    assert record["attempts"][0]["logStreamName"] == first_stream
    assert record["attemptsUsed"] == 2


def test_a_service_job_running_its_second_attempt_links_that_training_jobs_logs(
    load_event: EventLoader,
) -> None:
    # Given a SageMaker job RUNNING its second attempt: latestAttempt names the new training
    # job, `attempts` holds the finished first one
    event = load_event("service-job-failed")
    current = "arn:aws:sagemaker:us-east-1:123456789012:training-job/AWSBatchllm-sft-7b-0314retry2"
    event = variant(
        event,
        status="RUNNING",
        latestAttempt={"serviceResourceId": {"name": "TrainingJobArn", "value": current}},
        drop=["stoppedAt", "statusReason"],
    )

    # When normalised
    links = record_of(event).to_json_dict()["links"]

    # Then both links follow the training job under way
    name = current.rsplit("/", 1)[-1]
    assert links["trainingJob"].endswith(f"/jobs/{name}")
    assert links["logs"].endswith(f"$3FlogStreamNameFilter$3D{name}")


def test_the_queue_wait_ends_when_the_first_attempt_to_start_started(
    load_event: EventLoader,
) -> None:
    # Given a three-attempt job whose first attempt never started (its task failed to start)
    event = load_event("job-failed-oom")
    detail = event["detail"]
    del detail["attempts"][0]["startedAt"]
    second_start = detail["attempts"][1]["startedAt"]
    assert detail["startedAt"] == detail["attempts"][2]["startedAt"] != second_start

    # When normalised
    record = record_of(event).to_json_dict()

    # Then it waited in the queue until the second attempt started, not the last one
    assert record["queuedSeconds"] == pytest.approx((second_start - detail["createdAt"]) / 1000)
