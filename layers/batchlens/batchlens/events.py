"""Parsing: EventBridge envelopes from AWS Batch and the job shapes inside them.

The `detail` of a job event is the DescribeJobs `JobDetail`; the `detail` of a service-job event is
the DescribeServiceJob response. AWS adds fields without notice, so every model ignores unknown
fields, and every field that AWS may omit is optional.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel


class EventType(StrEnum):
    JOB_STATE_CHANGE = "JOB_STATE_CHANGE"
    SERVICE_JOB_STATE_CHANGE = "SERVICE_JOB_STATE_CHANGE"
    JOB_QUEUE_BLOCKED = "JOB_QUEUE_BLOCKED"
    SERVICE_JOB_QUEUE_BLOCKED = "SERVICE_JOB_QUEUE_BLOCKED"

    @property
    def is_service(self) -> bool:
        return self in (EventType.SERVICE_JOB_STATE_CHANGE, EventType.SERVICE_JOB_QUEUE_BLOCKED)

    @property
    def is_queue_blocked(self) -> bool:
        return self in (EventType.JOB_QUEUE_BLOCKED, EventType.SERVICE_JOB_QUEUE_BLOCKED)


#: Every status of a service job, in the order a job moves through them; container jobs have
#: all but SCHEDULED.
SERVICE_JOB_STATUSES = (
    "SUBMITTED",
    "PENDING",
    "RUNNABLE",
    "SCHEDULED",
    "STARTING",
    "RUNNING",
    "SUCCEEDED",
    "FAILED",
)
JOB_STATUSES = tuple(status for status in SERVICE_JOB_STATUSES if status != "SCHEDULED")

DETAIL_TYPES: Mapping[str, EventType] = {
    "Batch Job State Change": EventType.JOB_STATE_CHANGE,
    "Batch Service Job State Change": EventType.SERVICE_JOB_STATE_CHANGE,
    "Batch Job Queue Blocked": EventType.JOB_QUEUE_BLOCKED,
    "Batch Service Job Queue Blocked": EventType.SERVICE_JOB_QUEUE_BLOCKED,
}


class InvalidEvent(ValueError):
    """The input is not an AWS Batch event batchlens understands; the message says why."""


class AwsShape(BaseModel):
    """Base of every model of an AWS shape: camelCase names, unknown fields ignored."""

    # defer_build: validators are built on first use, not at import (cold start).
    model_config = ConfigDict(
        extra="ignore",
        frozen=True,
        populate_by_name=True,
        alias_generator=to_camel,
        defer_build=True,
    )


def _utc_if_naive(moment: datetime) -> datetime:
    # EventBridge's times are UTC ("…Z"); one written without an offset (a hand-made test event)
    # means UTC too, not the reading machine's local time.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class EventEnvelope(BaseModel):
    """The EventBridge envelope, field for field as Powertools Parser's `EventBridgeModel`.

    Not that model itself: importing it imports every Parser model, about 0.1 s of CPU at each
    cold start (several times that at 256 MB). tests/contract checks that the two agree.
    """

    model_config = ConfigDict(populate_by_name=True, frozen=True, defer_build=True)

    version: str
    id: str
    source: str
    account: str
    time: Annotated[datetime, AfterValidator(_utc_if_naive)]
    region: str
    resources: list[str]
    detail_type: str = Field(alias="detail-type")
    detail: dict[str, Any]
    replay_name: str | None = Field(default=None, alias="replay-name")


class KeyValuePair(AwsShape):
    name: str | None = None
    value: str | None = None


class ResourceRequirement(AwsShape):
    type: str
    value: str


class LogConfiguration(AwsShape):
    log_driver: str | None = None
    options: dict[str, str] = Field(default_factory=dict)


class ContainerDetail(AwsShape):
    """`JobDetail.container`, and the container parts of ECS-properties task containers."""

    name: str | None = None
    image: str | None = None
    vcpus: int | None = None
    memory: int | None = None
    command: list[str] = Field(default_factory=list)
    environment: list[KeyValuePair] = Field(default_factory=list)
    exit_code: int | None = None
    reason: str | None = None
    container_instance_arn: str | None = None
    task_arn: str | None = None
    log_stream_name: str | None = None
    instance_type: str | None = None
    resource_requirements: list[ResourceRequirement] = Field(default_factory=list)
    log_configuration: LogConfiguration | None = None
    essential: bool | None = None

    @property
    def memory_mib(self) -> int | None:
        for requirement in self.resource_requirements:
            if requirement.type.upper() == "MEMORY":
                try:
                    return int(float(requirement.value))
                except (ValueError, OverflowError):  # "abc", or "inf"/"1e400"
                    return None
        return self.memory

    @property
    def log_group(self) -> str | None:
        if self.log_configuration is None:
            return None
        return self.log_configuration.options.get("awslogs-group")


class AttemptContainerDetail(AwsShape):
    container_instance_arn: str | None = None
    task_arn: str | None = None
    exit_code: int | None = None
    reason: str | None = None
    log_stream_name: str | None = None


class AttemptTaskContainer(AwsShape):
    name: str | None = None
    exit_code: int | None = None
    reason: str | None = None
    log_stream_name: str | None = None


class AttemptEcsTask(AwsShape):
    container_instance_arn: str | None = None
    task_arn: str | None = None
    containers: list[AttemptTaskContainer] = Field(default_factory=list)


class AttemptDetail(AwsShape):
    container: AttemptContainerDetail | None = None
    started_at: int | None = None
    stopped_at: int | None = None
    status_reason: str | None = None
    task_properties: list[AttemptEcsTask] = Field(default_factory=list)


class EksAttemptContainer(AwsShape):
    name: str | None = None
    container_id: str | None = Field(default=None, alias="containerID")
    exit_code: int | None = None
    reason: str | None = None


class EksAttemptDetail(AwsShape):
    containers: list[EksAttemptContainer] = Field(default_factory=list)
    init_containers: list[EksAttemptContainer] = Field(default_factory=list)
    eks_cluster_arn: str | None = None
    pod_name: str | None = None
    pod_namespace: str | None = None
    node_name: str | None = None
    started_at: int | None = None
    stopped_at: int | None = None
    status_reason: str | None = None


class EksContainer(AwsShape):
    name: str | None = None
    image: str | None = None
    exit_code: int | None = None
    reason: str | None = None
    resources: dict[str, dict[str, str]] = Field(default_factory=dict)


class EksPodProperties(AwsShape):
    containers: list[EksContainer] = Field(default_factory=list)
    pod_name: str | None = None
    node_name: str | None = None


class EksProperties(AwsShape):
    pod_properties: EksPodProperties | None = None


class EcsTaskProperties(AwsShape):
    containers: list[ContainerDetail] = Field(default_factory=list)
    container_instance_arn: str | None = None
    task_arn: str | None = None


class EcsProperties(AwsShape):
    task_properties: list[EcsTaskProperties] = Field(default_factory=list)


class EvaluateOnExit(AwsShape):
    action: str | None = None
    on_status_reason: str | None = None
    on_reason: str | None = None
    on_exit_code: str | None = None


class RetryStrategy(AwsShape):
    attempts: int | None = None
    evaluate_on_exit: list[EvaluateOnExit] = Field(default_factory=list)


class JobDependency(AwsShape):
    job_id: str | None = None
    type: str | None = None


class ArrayProperties(AwsShape):
    status_summary: dict[str, int] = Field(default_factory=dict)
    size: int | None = None
    index: int | None = None


class NodeDetails(AwsShape):
    node_index: int | None = None
    is_main_node: bool | None = None


class NodeProperties(AwsShape):
    num_nodes: int | None = None
    main_node: int | None = None


class JobTimeout(AwsShape):
    attempt_duration_seconds: int | None = None


#: A job's queue names its metrics' `queue` dimension, its byQueue index key and an SNS message
#: attribute (which SNS refuses empty): an empty name, or an ARN that ends before its name (AWS
#: Batch sends neither), would file the job where no query or dashboard widget looks.
QueueName = Annotated[str, Field(min_length=1, pattern=r"[^/]$")]


class JobDetail(AwsShape):
    """DescribeJobs `JobDetail`: container, array, multi-node, EKS and ECS-properties jobs."""

    job_arn: str | None = None
    job_name: str
    job_id: str
    job_queue: QueueName
    status: str
    share_identifier: str | None = None
    attempts: list[AttemptDetail] = Field(default_factory=list)
    status_reason: str | None = None
    created_at: int | None = None
    retry_strategy: RetryStrategy | None = None
    started_at: int | None = None
    stopped_at: int | None = None
    depends_on: list[JobDependency] = Field(default_factory=list)
    job_definition: str | None = None
    parameters: dict[str, str] = Field(default_factory=dict)
    container: ContainerDetail | None = None
    node_details: NodeDetails | None = None
    node_properties: NodeProperties | None = None
    array_properties: ArrayProperties | None = None
    timeout: JobTimeout | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    platform_capabilities: list[str] = Field(default_factory=list)
    eks_properties: EksProperties | None = None
    eks_attempts: list[EksAttemptDetail] = Field(default_factory=list)
    ecs_properties: EcsProperties | None = None
    is_cancelled: bool | None = None
    is_terminated: bool | None = None


class ServiceResourceId(AwsShape):
    name: str | None = None
    value: str | None = None


class ServiceJobAttempt(AwsShape):
    service_resource_id: ServiceResourceId | None = None
    started_at: int | None = None
    stopped_at: int | None = None
    status_reason: str | None = None


class ServiceJobLatestAttempt(AwsShape):
    service_resource_id: ServiceResourceId | None = None


class ServiceJobTimeout(AwsShape):
    attempt_duration_seconds: int | None = None


class ServiceJobDetail(AwsShape):
    """The DescribeServiceJob response (SageMaker training jobs and future service job types)."""

    job_arn: str | None = None
    job_name: str
    job_id: str
    job_queue: QueueName
    status: str
    status_reason: str | None = None
    service_job_type: str | None = None
    attempts: list[ServiceJobAttempt] = Field(default_factory=list)
    latest_attempt: ServiceJobLatestAttempt | None = None
    created_at: int | None = None
    scheduled_at: int | None = None
    started_at: int | None = None
    stopped_at: int | None = None
    retry_strategy: RetryStrategy | None = None
    timeout_config: ServiceJobTimeout | None = None
    is_terminated: bool | None = None
    share_identifier: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)


AnyJobDetail = JobDetail | ServiceJobDetail


@dataclass(frozen=True, slots=True)
class BatchEvent:
    """One AWS Batch event: its envelope, its kind, and its detail as delivered."""

    envelope: EventEnvelope
    event_type: EventType
    detail: dict[str, Any]
    job: AnyJobDetail

    @property
    def job_id(self) -> str:
        return str(self.detail["jobId"])

    @property
    def event_id(self) -> str:
        return self.envelope.id

    @property
    def depends_on(self) -> list[str]:
        """The ids of the jobs this job depends on, each once (none for a service job)."""
        dependencies = getattr(self.job, "depends_on", [])
        return list(dict.fromkeys(d.job_id for d in dependencies if d.job_id))


def validation_problems(error: ValidationError) -> str:
    """A pydantic error on one line for a person: each field (the first three) and why."""
    problems = []
    for item in error.errors()[:3]:
        where = ".".join(str(part) for part in item["loc"])
        why = item["msg"].removeprefix("Value error, ")  # a validator's own message
        problems.append(f"{where}: {why}" if where else why)
    more = f" (+{error.error_count() - 3} more)" if error.error_count() > 3 else ""
    return "; ".join(problems) + more


def _account_from(event: Mapping[str, Any]) -> str | None:
    detail = event.get("detail")
    arns = [detail.get("jobArn")] if isinstance(detail, Mapping) else []
    resources = event.get("resources")
    arns += list(resources) if isinstance(resources, list) else []
    for arn in arns:
        parts = arn.split(":") if isinstance(arn, str) else []
        if len(parts) > 4 and parts[0] == "arn" and parts[4]:
            return parts[4]
    return None


#: A UTF-16 surrogate written as a JSON escape: paired, `json.loads` joins it into one character;
#: alone, it decodes to a string no UTF-8 writer (DynamoDB, SNS, the logs) can encode.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _has_lone_surrogate(text: str | bytes, decoded: Any) -> bool:
    raw = text if isinstance(text, str) else text.decode("utf-8", "replace")
    if "\\" not in raw or not _SURROGATE_ESCAPE.search(raw):
        # The usual case, decided without walking the event: no escape at all (one memchr, where
        # the regex alone scans the text at about 1 µs a kilobyte), or none for a surrogate.
        return False
    try:
        json.dumps(decoded, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def parse_event(payload: str | bytes | Mapping[str, Any]) -> BatchEvent:
    """Parse one EventBridge event (JSON text or an already-decoded mapping).

    Raises `InvalidEvent` with a message a person can act on; the job detail itself is validated
    by `job_detail()` so that one malformed field names itself.
    """
    if isinstance(payload, str | bytes):
        try:
            decoded = json.loads(payload)
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidEvent(f"not JSON: {exc}") from exc
        except RecursionError as exc:  # nested deeper than the decoder can follow
            raise InvalidEvent("not JSON: nested too deeply") from exc
        if _has_lone_surrogate(payload, decoded):
            raise InvalidEvent("not Unicode text: a string holds half of a UTF-16 surrogate pair")
    else:
        decoded = payload
    if not isinstance(decoded, Mapping):
        raise InvalidEvent(f"expected a JSON object, got {type(decoded).__name__}")
    if "account" not in decoded:
        # Some EventBridge stand-ins omit the account; the job's ARN names it.
        decoded = {**decoded, "account": _account_from(decoded)}
    try:
        envelope = EventEnvelope.model_validate(decoded)
    except ValidationError as exc:
        raise InvalidEvent(f"not an EventBridge event: {validation_problems(exc)}") from exc
    if envelope.source != "aws.batch":
        raise InvalidEvent(f"source is {envelope.source!r}, expected 'aws.batch'")
    event_type = DETAIL_TYPES.get(envelope.detail_type)
    if event_type is None:
        raise InvalidEvent(
            f"unknown detail-type {envelope.detail_type!r}; expected one of {sorted(DETAIL_TYPES)}"
        )
    if not isinstance(envelope.detail, dict):
        raise InvalidEvent("detail is not a JSON object")
    detail = dict(envelope.detail)
    job_id = detail.get("jobId")
    if not isinstance(job_id, str) or not job_id:
        raise InvalidEvent("detail.jobId is missing or not a string")
    # Validated now, so that a malformed record fails alone, before any AWS call of the batch.
    job = job_detail(event_type, detail)
    _check_key_lengths(envelope.id, job)
    try:
        envelope.time.astimezone(UTC)  # what every key, TTL and JSON time is written in
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00: before the calendar in UTC
        raise InvalidEvent(f"time {envelope.time.isoformat()} is out of range") from None
    if envelope.time > LATEST_EVENT_TIME:
        # Its items would expire after the last date Python can write: storing it can never
        # succeed, so it is poison, not a store failure to retry.
        raise InvalidEvent(f"time {envelope.time.isoformat()} is out of range")
    return BatchEvent(envelope=envelope, event_type=event_type, detail=detail, job=job)


#: The longest RetentionDays (the template's RetentionDays allows 1 to this): no item outlives it.
RETENTION_DAYS_MAX = 3650
#: The latest event time whose items can expire within the calendar at the longest RetentionDays.
LATEST_EVENT_TIME = datetime.max.replace(tzinfo=UTC) - timedelta(days=RETENTION_DAYS_MAX + 1)

#: The history's keys and index keys are built from these values, and DynamoDB caps a key at
#: 1,024 bytes (sort keys) to 2,048 (partition keys). AWS Batch's own values are far shorter: ids
#: are UUIDs (plus `:index` or `#node`), names at most 128 characters, statuses one word.
KEY_VALUE_MAX_BYTES = {"id": 200, "jobId": 200, "jobName": 400, "jobQueue": 1000, "status": 64}
#: byParent's sort key holds an array child's index (zero-padded): AWS Batch's are 0 to 9,999.
ARRAY_INDEX_MAX_DIGITS = 18


def _check_key_lengths(event_id: str, job: AnyJobDetail) -> None:
    values = {
        "id": event_id,
        "jobId": job.job_id,
        "jobName": job.job_name,
        "jobQueue": job.job_queue,
        "status": job.status,
    }
    for name, value in values.items():
        if len(value) * 4 <= KEY_VALUE_MAX_BYTES[name]:
            continue  # no character takes more than 4 bytes: the usual value fits unencoded
        size = len(value.encode("utf-8", "surrogatepass"))
        if size > KEY_VALUE_MAX_BYTES[name]:
            where = name if name == "id" else f"detail.{name}"
            raise InvalidEvent(
                f"{where} is {size} bytes long; at most {KEY_VALUE_MAX_BYTES[name]} expected"
            )
    array = job.array_properties if isinstance(job, JobDetail) else None
    index = array.index if array is not None else None
    if index is not None and len(str(abs(index))) > ARRAY_INDEX_MAX_DIGITS:
        raise InvalidEvent(
            f"detail.arrayProperties.index has more than {ARRAY_INDEX_MAX_DIGITS} digits"
        )


def job_detail(event_type: EventType, detail: Mapping[str, Any]) -> AnyJobDetail:
    """Validate a job detail (from an event, or an event overlaid on a described job)."""
    model: type[JobDetail] | type[ServiceJobDetail] = (
        ServiceJobDetail if event_type.is_service else JobDetail
    )
    try:
        return model.model_validate(detail)
    except ValidationError as exc:
        raise InvalidEvent(f"invalid job detail: {validation_problems(exc)}") from exc
