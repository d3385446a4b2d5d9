"""Parsing EventBridge envelopes from AWS Batch: every sample parses, unknown fields are ignored,
and anything that is not a Batch event is refused with a message that says why.
"""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime

import pytest

from batchlens.events import (
    EventType,
    InvalidEvent,
    JobDetail,
    ServiceJobDetail,
    parse_event,
)
from batchlens.history import version_of
from batchlens.records import normalise
from tests.conftest import EventLoader, read_event, sample_event_names, variant

DETAIL_TYPE_TO_EVENT_TYPE = {
    "Batch Job State Change": EventType.JOB_STATE_CHANGE,
    "Batch Service Job State Change": EventType.SERVICE_JOB_STATE_CHANGE,
    "Batch Job Queue Blocked": EventType.JOB_QUEUE_BLOCKED,
    "Batch Service Job Queue Blocked": EventType.SERVICE_JOB_QUEUE_BLOCKED,
}


def test_unit_tests_cannot_open_a_socket() -> None:
    # Given the unit layer's network guard
    # When a test tries to connect anywhere
    # Then the attempt fails before any packet is sent
    with pytest.raises(RuntimeError, match="must not use the network"):
        socket.create_connection(("198.51.100.1", 443), timeout=0.1)
    with socket.socket() as sock, pytest.raises(RuntimeError, match="must not use the network"):
        sock.connect(("198.51.100.1", 443))


@pytest.mark.parametrize("name", sample_event_names())
def test_every_sample_event_parses_with_its_own_kind_and_job(name: str) -> None:
    # Given a sample event exactly as EventBridge delivers it
    event = read_event(name)

    # When it is parsed
    parsed = parse_event(event)

    # Then kind, ids and status are the envelope's and the detail's own
    assert parsed.event_type is DETAIL_TYPE_TO_EVENT_TYPE[event["detail-type"]]
    assert parsed.event_id == event["id"]
    assert parsed.job_id == event["detail"]["jobId"]
    assert parsed.job.status == event["detail"]["status"]
    assert parsed.job.job_queue == event["detail"]["jobQueue"]
    expected_model = ServiceJobDetail if "Service" in event["detail-type"] else JobDetail
    assert type(parsed.job) is expected_model


def test_json_text_and_bytes_parse_like_the_decoded_mapping(load_event: EventLoader) -> None:
    # Given one event as a mapping, as JSON text and as UTF-8 bytes
    event = load_event("job-failed-oom")
    text = json.dumps(event)

    # When each form is parsed
    parsed = [parse_event(event), parse_event(text), parse_event(text.encode())]

    # Then all three describe the same job the same way
    assert parsed[1].job == parsed[0].job
    assert parsed[2].job == parsed[0].job
    assert {p.event_id for p in parsed} == {event["id"]}


@pytest.mark.parametrize("time", ["2025-03-14T13:10:00", "0001-01-01T00:00:00"])
def test_a_time_without_an_offset_is_utc_as_eventbridge_times_are(time: str) -> None:
    # Given an event whose time has no offset (a hand-made one: EventBridge writes "…Z")
    event = variant(read_event("job-failed-oom"), envelope={"time": time})

    # When it is parsed, then its time is that moment in UTC, not in the machine's local time
    moment = parse_event(event).envelope.time
    assert moment == datetime.fromisoformat(time).replace(tzinfo=UTC)
    # And its version, which orders the job's states in the history, can be worked out
    assert version_of(normalise(parse_event(event)))


def test_unknown_fields_in_envelope_and_detail_are_ignored(load_event: EventLoader) -> None:
    # Given the sample that carries fields AWS may add later
    event = load_event("job-submitted-unknown-fields")
    assert "someNewField" in event["detail"]

    # When it is parsed
    parsed = parse_event(event)

    # Then the known fields are there and the unknown ones do not surface in the model
    assert parsed.job.job_id == event["detail"]["jobId"]
    assert parsed.job.status == "RUNNABLE"
    assert "someNewField" not in parsed.job.model_dump(by_alias=True)


def test_unknown_nested_keys_at_every_level_are_tolerated(load_event: EventLoader) -> None:
    # Given a job detail with unknown keys nested inside known objects and lists
    event = load_event("job-failed-oom")
    detail = event["detail"]
    detail["futureTopLevel"] = {"deep": [{"deeper": True}]}
    detail["container"]["futureContainerField"] = {"gpuPartition": "1g.5gb"}
    detail["attempts"][0]["container"]["futureAttemptField"] = [1, 2, 3]
    detail["retryStrategy"]["backoff"] = {"base": 2, "jitter": "FULL"}

    # When it is parsed
    parsed = parse_event(event)

    # Then it validates, and the known values next to the unknown ones are intact
    assert isinstance(parsed.job, JobDetail)
    assert parsed.job.container is not None
    assert parsed.job.container.image == detail["container"]["image"]
    assert parsed.job.attempts[0].container is not None
    assert (
        parsed.job.attempts[0].container.exit_code == detail["attempts"][0]["container"]["exitCode"]
    )
    assert parsed.job.retry_strategy is not None
    assert parsed.job.retry_strategy.attempts == detail["retryStrategy"]["attempts"]


def test_service_event_maps_to_the_describe_service_job_shape(load_event: EventLoader) -> None:
    # Given a SageMaker service-job event
    event = load_event("service-job-failed")

    # When it is parsed
    parsed = parse_event(event)

    # Then it is a service job carrying its service type and the training job's ARN
    assert parsed.event_type.is_service
    assert isinstance(parsed.job, ServiceJobDetail)
    assert parsed.job.service_job_type == event["detail"]["serviceJobType"]
    assert parsed.job.latest_attempt is not None
    resource = parsed.job.latest_attempt.service_resource_id
    assert resource is not None
    assert resource.value == event["detail"]["latestAttempt"]["serviceResourceId"]["value"]


@pytest.mark.parametrize(
    ("name", "blocked", "service"),
    [
        ("job-queue-blocked-capacity", True, False),
        ("service-queue-blocked", True, True),
        ("job-failed-oom", False, False),
        ("service-job-succeeded", False, True),
    ],
)
def test_event_type_flags(name: str, blocked: bool, service: bool) -> None:
    # Given an event of each family; when parsed; then its kind answers both questions
    parsed = parse_event(read_event(name))
    assert parsed.event_type.is_queue_blocked is blocked
    assert parsed.event_type.is_service is service


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ("{not json", "not JSON"),
        (b"\xff\xfe\x00", "not JSON"),
        ("[1, 2, 3]", "expected a JSON object"),
        ('"a string"', "expected a JSON object"),
        ("{}", "not an EventBridge event"),
    ],
)
def test_non_events_are_refused_with_a_reason(payload: str | bytes, reason: str) -> None:
    # Given a payload that is not an EventBridge event; when parsed; then it says why not
    with pytest.raises(InvalidEvent, match=reason):
        parse_event(payload)


def test_other_sources_are_refused(load_event: EventLoader) -> None:
    # Given a well-formed event from another service
    event = variant(load_event("job-succeeded"), envelope={"source": "aws.ecs"})

    # When parsed, then the source is named in the refusal
    with pytest.raises(InvalidEvent, match=r"aws\.ecs"):
        parse_event(event)


def test_unknown_detail_types_are_refused(load_event: EventLoader) -> None:
    # Given a Batch event of a detail-type batchlens does not know
    event = variant(load_event("job-succeeded"), envelope={"detail-type": "Batch Job Rescheduled"})

    # When parsed, then the refusal names the detail-type
    with pytest.raises(InvalidEvent, match="unknown detail-type 'Batch Job Rescheduled'"):
        parse_event(event)


@pytest.mark.parametrize("job_id", [None, "", 42])
def test_a_missing_or_non_string_job_id_is_refused(load_event: EventLoader, job_id: object) -> None:
    # Given a job event whose jobId is absent, empty or not a string
    event = load_event("job-failed-oom")
    if job_id is None:
        del event["detail"]["jobId"]
    else:
        event["detail"]["jobId"] = job_id

    # When parsed, then the refusal points at detail.jobId
    with pytest.raises(InvalidEvent, match=r"detail\.jobId"):
        parse_event(event)


def test_a_malformed_known_field_names_itself(load_event: EventLoader) -> None:
    # Given a detail whose `attempts` is not a list
    event = load_event("job-failed-oom")
    event["detail"]["attempts"] = "three"

    # When parsed, then the error names the field, not just "invalid"
    with pytest.raises(InvalidEvent, match="attempts"):
        parse_event(event)


def test_a_detail_that_is_not_an_object_is_refused(load_event: EventLoader) -> None:
    # Given an envelope whose detail is a list
    event = load_event("job-succeeded")
    event["detail"] = ["jobId", "x"]

    # When parsed, then it is refused as an invalid event (never a crash)
    with pytest.raises(InvalidEvent):
        parse_event(event)


def test_a_required_job_field_missing_is_refused(load_event: EventLoader) -> None:
    # Given a job event without its jobQueue
    event = variant(load_event("job-failed-oom"), drop=["jobQueue"])

    # When parsed, then the refusal names the missing field
    with pytest.raises(InvalidEvent, match="jobQueue"):
        parse_event(event)


def test_a_character_written_as_a_surrogate_pair_parses_but_half_a_pair_is_refused(
    load_event: EventLoader,
) -> None:
    # Given the same reason written with an emoji as a JSON surrogate pair, and with half of it
    event = load_event("job-failed-oom")
    paired = json.dumps({**event, "detail": {**event["detail"], "statusReason": "boom 🚀"}})
    assert "\\ud83d\\ude80" in paired
    half = paired.replace("\\ude80", "")

    # Then the pair is one character, and half of it is refused as no Unicode text
    assert parse_event(paired).job.status_reason == "boom 🚀"
    with pytest.raises(InvalidEvent, match="half of a UTF-16 surrogate pair"):
        parse_event(half)
    with pytest.raises(InvalidEvent, match="half of a UTF-16 surrogate pair"):
        parse_event(half.encode())


@pytest.mark.parametrize("arn_in", ["detail", "resources"])
def test_an_event_without_an_account_takes_it_from_the_job_arn(
    load_event: EventLoader, arn_in: str
) -> None:
    # Given an event without `account` (as some EventBridge stand-ins send it), whose job ARN
    # sits in its detail, or only in its resources
    event = load_event("job-failed-oom")
    del event["account"]
    arn = "arn:aws:batch:eu-west-1:210987654321:job/91d1d12f-bc0b-41ab-bc38-add9e258cb98"
    if arn_in == "detail":
        event["detail"]["jobArn"] = arn
        event["resources"] = []
    else:
        del event["detail"]["jobArn"]
        event["resources"] = ["arn:aws:batch:eu-west-1::job-queue/no-account", arn]

    # When it is parsed, then the account is the one the ARN names (not its region)
    assert parse_event(event).envelope.account == "210987654321"


def test_a_lone_low_surrogate_is_refused_like_a_lone_high_one(load_event: EventLoader) -> None:
    # Given an event whose reason holds the second half of a surrogate pair alone
    event = load_event("job-failed-oom")
    text = json.dumps({**event, "detail": {**event["detail"], "statusReason": "x"}})
    half = text.replace('"statusReason": "x"', '"statusReason": "boom \\udc80"')
    assert "\\udc80" in half

    # When it is parsed, then it is refused as no Unicode text
    with pytest.raises(InvalidEvent, match="half of a UTF-16 surrogate pair"):
        parse_event(half)


def test_a_refusal_names_three_problems_and_counts_the_rest(load_event: EventLoader) -> None:
    # Given a job detail with four malformed fields
    event = load_event("job-failed-oom")
    event["detail"].update(attempts="a", createdAt="b", retryStrategy="c", tags="d")

    # When it is parsed, then the reason names the first three and counts the fourth
    with pytest.raises(InvalidEvent) as refused:
        parse_event(event)
    reason = str(refused.value)
    assert reason.count(": ") == 4  # "invalid job detail: " and one per problem shown
    assert reason.endswith(" (+1 more)")


def test_a_key_value_too_long_names_its_place_in_the_event(load_event: EventLoader) -> None:
    # Given events whose job id, and whose envelope id, are one byte too long for a history key
    event = load_event("job-failed-oom")
    event["detail"]["jobId"] = "j" * 201
    envelope = load_event("job-failed-oom")
    envelope["id"] = "e" * 201

    # When they are parsed, then each refusal says where the value is, its size and the limit
    with pytest.raises(InvalidEvent, match=r"^detail\.jobId is 201 bytes long; at most 200"):
        parse_event(event)
    with pytest.raises(InvalidEvent, match=r"^id is 201 bytes long; at most 200"):
        parse_event(envelope)
