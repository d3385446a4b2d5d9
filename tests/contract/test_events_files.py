"""Contract: the samples in `events/` are AWS Batch events exactly as EventBridge delivers them.

Every `events/*.json` except `sqs-batch.json` is one EventBridge event from `aws.batch` with one of
the four Batch detail-types. Its `detail` is checked against botocore's model of the Batch API
(`JobDetail` for job events, the `DescribeServiceJob` output for service-job events): every key
must be a member of the shape it sits in, with a value of the shape's type, so the samples cannot
drift into shapes AWS never sends. Only `job-submitted-unknown-fields.json` may carry keys the model
does not know — it exists to prove that the parser tolerates fields AWS adds later.

`sqs-batch.json` is the Lambda SQS event that wraps three of these events, as an SQS target of the
EventBridge rule receives them.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any, Final, cast

import botocore.session
import pytest
from botocore.model import (
    ListShape,
    MapShape,
    ServiceModel,
    Shape,
    StringShape,
    StructureShape,
)

EVENTS_DIR: Final = Path(__file__).resolve().parents[2] / "events"
SQS_FILE: Final = "sqs-batch.json"
UNKNOWN_FIELDS_FILE: Final = "job-submitted-unknown-fields.json"

ACCOUNT: Final = "123456789012"
REGION: Final = "us-east-1"

JOB_STATE_CHANGE: Final = "Batch Job State Change"
JOB_QUEUE_BLOCKED: Final = "Batch Job Queue Blocked"
SERVICE_JOB_STATE_CHANGE: Final = "Batch Service Job State Change"
SERVICE_JOB_QUEUE_BLOCKED: Final = "Batch Service Job Queue Blocked"
DETAIL_TYPES: Final = frozenset(
    {JOB_STATE_CHANGE, JOB_QUEUE_BLOCKED, SERVICE_JOB_STATE_CHANGE, SERVICE_JOB_QUEUE_BLOCKED}
)
SERVICE_DETAIL_TYPES: Final = frozenset({SERVICE_JOB_STATE_CHANGE, SERVICE_JOB_QUEUE_BLOCKED})
ENVELOPE_KEYS: Final = (
    "version",
    "id",
    "detail-type",
    "source",
    "account",
    "time",
    "region",
    "resources",
    "detail",
)
TERMINAL: Final = frozenset({"SUCCEEDED", "FAILED"})

# The files other code and docs rely on by name.
REQUIRED_FILES: Final = (
    "job-runnable.json",
    "job-running.json",
    "job-succeeded.json",
    "job-failed-oom.json",
    "job-failed-spot.json",
    "job-failed-image-pull.json",
    "job-failed-app-error.json",
    "job-failed-timeout.json",
    "job-failed-secrets.json",
    "job-retried-runnable.json",
    "job-failed-dependency.json",
    "job-queue-blocked-capacity.json",
    "job-queue-blocked-misconfiguration.json",
    "job-cancelled-state-time-limit.json",
    "array-parent-failed.json",
    "array-child-failed.json",
    "multinode-failed.json",
    "multinode-node-failed.json",
    "eks-failed-oom.json",
    "ecs-properties-succeeded.json",
    "service-job-succeeded.json",
    "service-job-failed.json",
    "service-queue-blocked.json",
    "job-submitted-unknown-fields.json",
    SQS_FILE,
)

UUID_RE: Final = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
JOB_ID_RE: Final = re.compile(rf"^{UUID_RE}(?::(?P<index>\d+)|#(?P<node>\d+))?$")
JOB_ARN_RE: Final = re.compile(
    rf"^arn:aws:batch:{REGION}:{ACCOUNT}:(?P<kind>job|service-job)/(?P<id>[^/]+)$"
)
QUEUE_ARN_RE: Final = re.compile(rf"^arn:aws:batch:{REGION}:{ACCOUNT}:job-queue/[A-Za-z0-9_-]+$")
JOB_DEFINITION_ARN_RE: Final = re.compile(
    rf"^arn:aws:batch:{REGION}:{ACCOUNT}:job-definition/(?P<name>[A-Za-z0-9_-]+):\d+$"
)
EVENT_TIME_RE: Final = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
GITHUB_TOKEN_RE: Final = re.compile(r"ghp_[A-Za-z0-9]{36}")

Json = dict[str, Any]


# --------------------------------------------------------------------------- loading


def _load(name: str) -> Any:
    return json.loads((EVENTS_DIR / name).read_text(encoding="utf-8"))


@cache
def load_event(name: str) -> Json:
    event = _load(name)
    assert isinstance(event, dict), f"{name}: not a JSON object"
    return cast(Json, event)


def event_files() -> list[str]:
    return sorted(p.name for p in EVENTS_DIR.glob("*.json") if p.name != SQS_FILE)


def detail_of(name: str) -> Json:
    detail = load_event(name)["detail"]
    assert isinstance(detail, dict)
    return cast(Json, detail)


def is_service(event: Json) -> bool:
    return event["detail-type"] in SERVICE_DETAIL_TYPES


# --------------------------------------------------------------------------- botocore shapes


@cache
def batch_model() -> ServiceModel:
    return botocore.session.get_session().get_service_model("batch")


def detail_shape(event: Json) -> StructureShape:
    model = batch_model()
    shape: Shape | None
    if is_service(event):
        shape = model.operation_model("DescribeServiceJob").output_shape
    else:
        shape = model.shape_for("JobDetail")
    assert isinstance(shape, StructureShape)
    return shape


def shape_problems(value: object, shape: Shape, path: str, *, allow_unknown: bool) -> Iterator[str]:
    """Yield every way `value` departs from `shape` (botocore's model of the Batch API)."""
    kind = shape.type_name
    if isinstance(shape, StructureShape):
        if not isinstance(value, dict):
            yield f"{path}: expected an object ({shape.name}), got {type(value).__name__}"
            return
        members = shape.members
        for key, item in value.items():
            if key not in members:
                if not allow_unknown:
                    yield f"{path}.{key}: not a member of {shape.name}"
                continue
            yield from shape_problems(
                item, members[key], f"{path}.{key}", allow_unknown=allow_unknown
            )
    elif isinstance(shape, ListShape):
        if not isinstance(value, list):
            yield f"{path}: expected a list ({shape.name}), got {type(value).__name__}"
            return
        for i, item in enumerate(value):
            yield from shape_problems(
                item, shape.member, f"{path}[{i}]", allow_unknown=allow_unknown
            )
    elif isinstance(shape, MapShape):
        if not isinstance(value, dict):
            yield f"{path}: expected a map ({shape.name}), got {type(value).__name__}"
            return
        for key, item in value.items():
            yield from shape_problems(key, shape.key, f"{path}<key {key!r}>", allow_unknown=False)
            yield from shape_problems(
                item, shape.value, f"{path}[{key!r}]", allow_unknown=allow_unknown
            )
    elif kind == "string":
        if not isinstance(value, str):
            yield f"{path}: expected a string ({shape.name}), got {type(value).__name__}"
        elif isinstance(shape, StringShape) and shape.enum and value not in shape.enum:
            yield f"{path}: {value!r} is not one of {shape.name} {shape.enum}"
    elif kind in ("integer", "long"):
        if isinstance(value, bool) or not isinstance(value, int):
            yield f"{path}: expected an integer ({shape.name}), got {value!r}"
    elif kind == "boolean":
        if not isinstance(value, bool):
            yield f"{path}: expected a boolean ({shape.name}), got {value!r}"
    elif kind in ("double", "float"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            yield f"{path}: expected a number ({shape.name}), got {value!r}"
    else:
        yield f"{path}: shape type {kind!r} ({shape.name}) is not expected in a Batch event"


def unknown_keys(value: object, shape: Shape, path: str) -> Iterator[str]:
    """Yield the paths of keys that `shape` does not model."""
    if isinstance(shape, StructureShape) and isinstance(value, dict):
        for key, item in value.items():
            if key not in shape.members:
                yield f"{path}.{key}"
            else:
                yield from unknown_keys(item, shape.members[key], f"{path}.{key}")
    elif isinstance(shape, ListShape) and isinstance(value, list):
        for i, item in enumerate(value):
            yield from unknown_keys(item, shape.member, f"{path}[{i}]")
    elif isinstance(shape, MapShape) and isinstance(value, dict):
        for key, item in value.items():
            yield from unknown_keys(item, shape.value, f"{path}[{key!r}]")


# --------------------------------------------------------------------------- timestamps


def event_time_ms(event: Json) -> int:
    when = datetime.strptime(event["time"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    return int(when.timestamp()) * 1000


def job_timestamps(detail: Json) -> Iterator[tuple[str, int]]:
    """Every epoch-millisecond timestamp in a detail, with where it sits."""
    for key in ("createdAt", "scheduledAt", "startedAt", "stoppedAt"):
        if key in detail:
            yield key, detail[key]
    for attempts_key in ("attempts", "eksAttempts"):
        for i, att in enumerate(detail.get(attempts_key, [])):
            for key in ("startedAt", "stoppedAt"):
                if key in att:
                    yield f"{attempts_key}[{i}].{key}", att[key]
    array = detail.get("arrayProperties", {})
    if "statusSummaryLastUpdatedAt" in array:
        yield "arrayProperties.statusSummaryLastUpdatedAt", array["statusSummaryLastUpdatedAt"]


def containers_with_streams(detail: Json) -> Iterator[tuple[str, Json]]:
    """Every container record that names a task, in job, attempt and ECS-properties shapes."""
    container = detail.get("container")
    if container:
        yield "container", container
    for i, att in enumerate(detail.get("attempts", [])):
        if "container" in att:
            yield f"attempts[{i}].container", att["container"]
        for t, task in enumerate(att.get("taskProperties", [])):
            for c, cont in enumerate(task.get("containers", [])):
                yield (
                    f"attempts[{i}].taskProperties[{t}].containers[{c}]",
                    {
                        "taskArn": task.get("taskArn"),
                        **cont,
                    },
                )
    for t, task in enumerate(detail.get("ecsProperties", {}).get("taskProperties", [])):
        for c, cont in enumerate(task.get("containers", [])):
            yield (
                f"ecsProperties.taskProperties[{t}].containers[{c}]",
                {
                    "taskArn": task.get("taskArn"),
                    **cont,
                },
            )


# --------------------------------------------------------------------------- the files themselves


def test_every_required_sample_exists() -> None:
    missing = [name for name in REQUIRED_FILES if not (EVENTS_DIR / name).is_file()]
    assert not missing, f"missing samples in events/: {missing}"


@pytest.mark.parametrize("name", [*event_files(), SQS_FILE])
def test_file_is_pretty_printed_json(name: str) -> None:
    text = (EVENTS_DIR / name).read_text(encoding="utf-8")
    assert text == json.dumps(json.loads(text), indent=2, ensure_ascii=False) + "\n", (
        f"{name}: not 2-space pretty-printed JSON ending in one newline"
    )


@pytest.mark.parametrize("name", [*event_files(), SQS_FILE])
def test_readme_lists_the_sample(name: str) -> None:
    readme = (EVENTS_DIR / "README.md").read_text(encoding="utf-8")
    assert f"`{name}`" in readme, f"events/README.md does not describe {name}"


# --------------------------------------------------------------------------- the envelope


@pytest.mark.parametrize("name", event_files())
def test_envelope_is_an_eventbridge_batch_event(name: str) -> None:
    event = load_event(name)
    for key in ENVELOPE_KEYS:
        assert key in event, f"{name}: envelope lacks {key!r}"
    if name != UNKNOWN_FIELDS_FILE:
        assert list(event) == list(ENVELOPE_KEYS), f"{name}: envelope keys {list(event)}"
    assert event["version"] == "0"
    assert str(uuid.UUID(event["id"])) == event["id"], f"{name}: id is not a UUID"
    assert event["detail-type"] in DETAIL_TYPES
    assert event["source"] == "aws.batch"
    assert event["account"] == ACCOUNT
    assert EVENT_TIME_RE.match(event["time"]), f"{name}: time {event['time']!r} is not ISO-8601 Z"
    assert event["region"] == REGION
    assert isinstance(event["resources"], list)
    assert all(isinstance(r, str) for r in event["resources"])
    assert isinstance(event["detail"], dict)


def test_event_ids_are_unique() -> None:
    ids = [load_event(name)["id"] for name in event_files()]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("name", event_files())
def test_resources_name_the_job_and_for_blocked_queues_the_queue(name: str) -> None:
    event = load_event(name)
    detail = event["detail"]
    if event["detail-type"] == JOB_QUEUE_BLOCKED:
        assert event["resources"] == [detail["jobArn"], detail["jobQueue"]]
    else:
        # Service-job events (queue-blocked included) name only the service job, as documented.
        assert event["resources"] == [detail["jobArn"]]


@pytest.mark.parametrize("name", event_files())
def test_job_ids_queues_and_definitions_are_consistent(name: str) -> None:
    event = load_event(name)
    detail = event["detail"]
    arn = JOB_ARN_RE.match(detail["jobArn"])
    assert arn, f"{name}: jobArn {detail['jobArn']!r}"
    assert arn["id"] == detail["jobId"], f"{name}: jobId does not match the jobArn"
    assert arn["kind"] == ("service-job" if is_service(event) else "job")
    job_id = JOB_ID_RE.match(detail["jobId"])
    assert job_id, f"{name}: jobId {detail['jobId']!r}"
    assert isinstance(detail["jobName"], str)
    assert detail["jobName"]
    assert QUEUE_ARN_RE.match(detail["jobQueue"]), f"{name}: jobQueue {detail['jobQueue']!r}"
    if is_service(event):
        assert "jobDefinition" not in detail
        assert detail["serviceJobType"] == "SAGEMAKER_TRAINING"
        # The documented event omits these two DescribeServiceJob fields.
        assert "tags" not in detail
        assert "serviceRequestPayload" not in detail
    else:
        assert JOB_DEFINITION_ARN_RE.match(detail["jobDefinition"]), f"{name}: jobDefinition"
    if job_id["index"] is not None:
        assert detail["arrayProperties"]["index"] == int(job_id["index"])
    if job_id["node"] is not None:
        assert detail["nodeDetails"]["nodeIndex"] == int(job_id["node"])


@pytest.mark.parametrize("name", event_files())
def test_status_fits_the_detail_type(name: str) -> None:
    event = load_event(name)
    detail = event["detail"]
    status = detail["status"]
    if event["detail-type"] in (JOB_QUEUE_BLOCKED, SERVICE_JOB_QUEUE_BLOCKED):
        assert status == "RUNNABLE"
        assert detail["statusReason"]
    if status in TERMINAL:
        assert "stoppedAt" in detail, f"{name}: a {status} job has a stoppedAt"
    else:
        assert "stoppedAt" not in detail, f"{name}: a {status} job has no stoppedAt yet"
    if status == "RUNNING":
        assert "startedAt" in detail


@pytest.mark.parametrize("name", event_files())
def test_timestamps_are_ordered(name: str) -> None:
    event = load_event(name)
    detail = event["detail"]
    stamps = dict(job_timestamps(detail))
    for where, value in stamps.items():
        assert isinstance(value, int), f"{name}: {where} is not epoch milliseconds"
        # Epoch milliseconds in this century, not seconds.
        assert 1_500_000_000_000 < value < 4_000_000_000_000, f"{name}: {where}={value}"
    created = detail["createdAt"]
    assert all(v >= created for v in stamps.values()), f"{name}: something precedes createdAt"
    if "startedAt" in detail and "stoppedAt" in detail:
        assert created < detail["startedAt"] < detail["stoppedAt"]
    elif "stoppedAt" in detail:
        assert created < detail["stoppedAt"]
    for key in ("attempts", "eksAttempts"):
        previous_end = created
        for i, att in enumerate(detail.get(key, [])):
            start = att.get("startedAt", previous_end)
            end = att.get("stoppedAt")
            assert start >= previous_end, f"{name}: {key}[{i}] overlaps the attempt before it"
            if end is not None:
                assert start <= end, f"{name}: {key}[{i}] stops before it starts"
                previous_end = end
    # The event is emitted at or after the last change it reports (the envelope has whole seconds).
    last_change = max(stamps.values())
    assert event_time_ms(event) >= last_change - last_change % 1000, (
        f"{name}: event time {event['time']} precedes the last change it reports"
    )


@pytest.mark.parametrize("name", event_files())
def test_attempts_fit_the_retry_strategy(name: str) -> None:
    detail = detail_of(name)
    allowed = detail.get("retryStrategy", {}).get("attempts", 1)
    used = len(detail.get("attempts", [])) + len(detail.get("eksAttempts", []))
    assert 1 <= allowed <= 10
    assert used <= allowed, f"{name}: {used} attempts used of {allowed} allowed"


@pytest.mark.parametrize("name", event_files())
def test_log_streams_belong_to_their_task(name: str) -> None:
    detail = detail_of(name)
    if "jobDefinition" not in detail:
        return
    definition = JOB_DEFINITION_ARN_RE.match(detail["jobDefinition"])
    assert definition
    for where, container in containers_with_streams(detail):
        stream = container.get("logStreamName")
        if stream is None:
            continue
        prefix, _, task_id = stream.split("/")
        assert prefix == definition["name"], f"{name}: {where}.logStreamName {stream!r}"
        task_arn = container.get("taskArn")
        assert task_arn, f"{name}: {where} has a log stream but no task"
        assert task_arn.rsplit("/", 1)[1] == task_id, f"{name}: {where} stream is another task's"


# --------------------------------------------------------------------------- botocore's model


@pytest.mark.parametrize("name", event_files())
def test_detail_matches_the_batch_api_model(name: str) -> None:
    event = load_event(name)
    problems = list(
        shape_problems(
            event["detail"],
            detail_shape(event),
            "detail",
            allow_unknown=name == UNKNOWN_FIELDS_FILE,
        )
    )
    assert not problems, f"{name}:\n" + "\n".join(problems)


def test_the_unknown_fields_sample_really_carries_unknown_fields() -> None:
    event = load_event(UNKNOWN_FIELDS_FILE)
    assert set(event) - set(ENVELOPE_KEYS), "the envelope carries no extra field"
    unknown = list(unknown_keys(event["detail"], detail_shape(event), "detail"))
    top_level = [path for path in unknown if path.count(".") == 1]
    nested = [path for path in unknown if path.count(".") > 1]
    assert top_level, "the detail carries no unknown top-level field"
    assert nested, "the detail carries no unknown nested field"


def test_the_model_check_catches_a_stray_key_and_a_wrong_type() -> None:
    event = load_event("job-succeeded.json")
    shape = detail_shape(event)
    detail = json.loads(json.dumps(event["detail"]))
    detail["container"]["exitcode"] = 0
    detail["attempts"][0]["stoppedAt"] = "1741918747933"
    detail["status"] = "DONE"
    problems = list(shape_problems(detail, shape, "detail", allow_unknown=False))
    assert len(problems) == 3, problems


# --------------------------------------------------------------------------- stories across files


def test_job_lifecycle_samples_are_one_job_in_order() -> None:
    names = ("job-runnable.json", "job-running.json", "job-succeeded.json")
    events = [load_event(name) for name in names]
    assert len({e["detail"]["jobId"] for e in events}) == 1
    assert [e["detail"]["status"] for e in events] == ["RUNNABLE", "RUNNING", "SUCCEEDED"]
    times = [event_time_ms(e) for e in events]
    assert times == sorted(times)
    assert len(set(times)) == len(times)


def test_dependency_sample_depends_on_the_oom_job() -> None:
    oom = detail_of("job-failed-oom.json")
    dependent = detail_of("job-failed-dependency.json")
    assert dependent["dependsOn"] == [{"jobId": oom["jobId"], "type": "SEQUENTIAL"}]
    assert dependent["attempts"] == []
    assert dependent["stoppedAt"] > oom["stoppedAt"]


def test_array_child_belongs_to_the_array_parent() -> None:
    parent = detail_of("array-parent-failed.json")
    child = detail_of("array-child-failed.json")
    assert child["jobId"] == f"{parent['jobId']}:7"
    assert child["arrayProperties"]["index"] == 7
    summary = parent["arrayProperties"]["statusSummary"]
    assert sum(summary.values()) == parent["arrayProperties"]["size"] == 1000
    assert parent["startedAt"] <= child["startedAt"] < child["stoppedAt"] <= parent["stoppedAt"]
    assert event_time_ms(load_event("array-child-failed.json")) <= event_time_ms(
        load_event("array-parent-failed.json")
    )


def test_multinode_node_belongs_to_the_multinode_parent() -> None:
    parent = detail_of("multinode-failed.json")
    node = detail_of("multinode-node-failed.json")
    assert node["jobId"] == f"{parent['jobId']}#2"
    assert node["nodeDetails"] == {"nodeIndex": 2, "isMainNode": False}
    assert parent["nodeProperties"]["numNodes"] == 4
    assert parent["nodeProperties"]["mainNode"] == 0
    assert parent["startedAt"] <= node["startedAt"] < node["stoppedAt"] <= parent["stoppedAt"]


def test_cancelled_job_is_the_blocked_job_later() -> None:
    blocked = load_event("job-queue-blocked-capacity.json")
    cancelled = load_event("job-cancelled-state-time-limit.json")
    assert blocked["detail"]["jobId"] == cancelled["detail"]["jobId"]
    assert cancelled["detail"]["isCancelled"] is True
    assert event_time_ms(blocked) < event_time_ms(cancelled)


def test_app_error_sample_carries_values_for_redaction_tests() -> None:
    container = detail_of("job-failed-app-error.json")["container"]
    environment = {item["name"]: item["value"] for item in container["environment"]}
    assert environment["DB_PASSWORD"] == "hunter2-prod-Zx9"
    assert any(GITHUB_TOKEN_RE.search(arg) for arg in container["command"])


# --------------------------------------------------------------------------- the SQS batch


def test_sqs_batch_wraps_three_sample_events() -> None:
    sqs = _load(SQS_FILE)
    assert isinstance(sqs, dict)
    assert list(sqs) == ["Records"]
    records = sqs["Records"]
    assert len(records) == 3
    samples = {json.dumps(load_event(name), sort_keys=True): name for name in event_files()}
    wrapped = []
    for record in records:
        assert record["eventSource"] == "aws:sqs"
        assert record["eventSourceARN"].startswith(f"arn:aws:sqs:{REGION}:{ACCOUNT}:")
        assert record["awsRegion"] == REGION
        assert str(uuid.UUID(record["messageId"])) == record["messageId"]
        assert record["receiptHandle"]
        assert record["messageAttributes"] == {}
        attributes = record["attributes"]
        for key in ("ApproximateReceiveCount", "SentTimestamp", "ApproximateFirstReceiveTimestamp"):
            assert attributes[key].isdigit(), f"{key} is a string of digits"
        assert attributes["SenderId"]
        body = record["body"]
        assert isinstance(body, str)
        assert record["md5OfBody"] == hashlib.md5(body.encode()).hexdigest()
        event = json.loads(body)
        assert event["source"] == "aws.batch"
        assert event["detail-type"] in DETAIL_TYPES
        assert int(attributes["SentTimestamp"]) >= event_time_ms(event)
        assert int(attributes["ApproximateFirstReceiveTimestamp"]) >= int(
            attributes["SentTimestamp"]
        )
        key = json.dumps(event, sort_keys=True)
        assert key in samples, "an SQS body is not one of the sample events"
        wrapped.append(samples[key])
    assert wrapped == [
        "job-succeeded.json",
        "job-failed-oom.json",
        "job-queue-blocked-capacity.json",
    ]
