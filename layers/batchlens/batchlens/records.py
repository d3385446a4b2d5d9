"""JobRecord schema v1 (the public contract) and the normaliser that builds it.

Pure code: a parsed event, plus the job as DescribeJobs/DescribeServiceJob returned it (or nothing),
becomes one JobRecord. No AWS call happens here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, TypeVar
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, PlainSerializer
from pydantic.alias_generators import to_camel

from batchlens import failures
from batchlens.events import (
    AnyJobDetail,
    AttemptDetail,
    AttemptTaskContainer,
    BatchEvent,
    ContainerDetail,
    EksAttemptContainer,
    EksContainer,
    EventType,
    JobDetail,
    ServiceJobDetail,
    job_detail,
)
from batchlens.failures import Failure
from batchlens.redact import Redactor, Tally

SCHEMA_VERSION = 1
DEFAULT_LOG_GROUP = "/aws/batch/job"
SAGEMAKER_LOG_GROUP = "/aws/sagemaker/TrainingJobs"
TERMINAL_STATUSES = frozenset({"SUCCEEDED", "FAILED"})


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


#: ISO-8601 UTC with millisecond precision and a `Z`, the format of every time in a JobRecord.
UtcTime = Annotated[datetime, PlainSerializer(_iso, return_type=str, when_used="json")]


class JobKind(StrEnum):
    CONTAINER = "CONTAINER"
    ARRAY_PARENT = "ARRAY_PARENT"
    ARRAY_CHILD = "ARRAY_CHILD"
    MULTINODE_PARENT = "MULTINODE_PARENT"
    MULTINODE_NODE = "MULTINODE_NODE"
    EKS = "EKS"
    SERVICE = "SERVICE"


class Enrichment(StrEnum):
    DESCRIBED = "DESCRIBED"
    EVENT_ONLY = "EVENT_ONLY"
    NOT_FOUND = "NOT_FOUND"


class RecordModel(BaseModel):
    # defer_build: validators are built on first use, not at import (cold start).
    model_config = ConfigDict(
        frozen=True,
        populate_by_name=True,
        alias_generator=to_camel,
        extra="ignore",
        defer_build=True,
    )


class QueueRef(RecordModel):
    name: str
    arn: str | None


class JobDefinitionRef(RecordModel):
    name: str
    revision: int | None
    arn: str | None


class Attempt(RecordModel):
    number: int
    started_at: UtcTime | None
    stopped_at: UtcTime | None
    duration_seconds: float | None
    exit_code: int | None
    reason: str | None
    status_reason: str | None
    log_group: str | None
    log_stream_name: str | None
    log_url: str | None
    resource_arn: str | None


class Links(RecordModel):
    console: str | None
    logs: str | None
    training_job: str | None


class JobRecord(RecordModel):
    """One job's state as batchlens knows it after one event (schema v1)."""

    schema_version: int = SCHEMA_VERSION
    event_type: EventType
    event_id: str
    event_time: UtcTime
    account: str
    region: str
    job_id: str
    job_arn: str | None
    job_name: str
    job_queue: QueueRef
    job_definition: JobDefinitionRef | None
    job_kind: JobKind
    array_index: int | None
    parent_job_id: str | None
    array_size: int | None
    array_status_summary: dict[str, int] | None
    service_job_type: str | None
    status: str
    status_reason: str | None
    is_terminal: bool
    created_at: UtcTime | None
    started_at: UtcTime | None
    stopped_at: UtcTime | None
    queued_seconds: float | None
    run_seconds: float | None
    total_seconds: float | None
    attempts: list[Attempt]
    attempts_used: int
    attempts_allowed: int
    failure: Failure | None
    links: Links
    enrichment: Enrichment
    redacted: int = 0
    #: Last lines of the latest attempt's log (secrets masked), set only on alerting failures.
    log_excerpt: list[str] | None = None
    #: The record was cut to fit DynamoDB's item or SNS's message limit (see batchlens.limits).
    truncated: bool = False

    @property
    def attempts_finished(self) -> int:
        """How many attempts finished: the last one's number, not a count of the list, which a
        record cut to fit (batchlens.limits) shortens by dropping middle attempts."""
        return self.attempts[-1].number if self.attempts else 0

    def to_json_dict(self) -> dict[str, Any]:
        """The public JSON form: camelCase keys, ISO times, absent values as null."""
        return self.model_dump(mode="json", by_alias=True)

    def to_json(self) -> str:
        """The public JSON form as text (serialised in pydantic-core, the hot path's choice)."""
        return self.model_dump_json(by_alias=True)


# --- helpers over AWS's shapes -------------------------------------------------------------


def _time(epoch_ms: int | None) -> datetime | None:
    if epoch_ms is None or epoch_ms <= 0:
        return None
    try:
        return datetime.fromtimestamp(epoch_ms / 1000, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None or end < start:
        return None
    return round((end - start).total_seconds(), 3)


def _arn_partition_region(arn: str | None, fallback_region: str) -> tuple[str, str]:
    parts = (arn or "").split(":")
    if len(parts) >= 4 and parts[0] == "arn" and parts[3]:
        return parts[1] or "aws", parts[3]
    # No job ARN (the API marks it optional): the Region's name tells its partition.
    if fallback_region.startswith("cn-"):
        return "aws-cn", fallback_region
    if fallback_region.startswith("us-gov-"):
        return "aws-us-gov", fallback_region
    return "aws", fallback_region


def console_host(partition: str, region: str) -> str:
    """The AWS console's origin for `region` in `partition` (the template's Console mapping)."""
    if partition == "aws-cn":
        return f"https://{region}.console.amazonaws.cn"
    if partition == "aws-us-gov":
        return f"https://{region}.console.amazonaws-us-gov.com"
    return f"https://{region}.console.aws.amazon.com"


#: Text that URL-encoding leaves alone but for its slashes: log groups and Batch's stream names.
_SLASHED_PLAIN = re.compile(r"[A-Za-z0-9_.~/-]*")


def _cw_escape(value: str) -> str:
    # The CloudWatch console's fragment encoding: URL-encode twice, then '%' becomes '$'
    # (encoding an encoded string only turns each '%' into '%25', so one pass does it).
    if _SLASHED_PLAIN.fullmatch(value):
        # The usual group or stream, whose only escape is '/' ('%2F'): `quote` would go byte by
        # byte, a cost every event with a log link pays twice.
        return value.replace("/", "$252F")
    return quote(value, safe="").replace("%", "$25")


def log_url(partition: str, region: str, group: str, stream: str | None = None) -> str:
    """Deep link to a CloudWatch Logs group, or to one stream of it."""
    url = (
        f"{console_host(partition, region)}/cloudwatch/home?region={region}"
        f"#logsV2:log-groups/log-group/{_cw_escape(group)}"
    )
    if stream:
        url += f"/log-events/{_cw_escape(stream)}"
    return url


def queue_name(job_queue: str) -> str:
    """A job queue's name, from its name or its ARN (`…:job-queue/<name>`)."""
    return job_queue.rsplit("/", 1)[-1] if job_queue.startswith("arn:") else job_queue


def _queue_ref(job_queue: str) -> QueueRef:
    arn = job_queue if job_queue.startswith("arn:") else None
    return QueueRef(name=queue_name(job_queue), arn=arn)


def _job_definition_ref(job_definition: str | None) -> JobDefinitionRef | None:
    if not job_definition:
        return None
    arn = job_definition if job_definition.startswith("arn:") else None
    name_part = job_definition.rsplit("/", 1)[-1]
    name, _, revision = name_part.partition(":")
    # isdigit() also holds for "²", which int() refuses, as it refuses over 4,300 digits.
    known = revision.isascii() and revision.isdigit() and len(revision) <= 10
    return JobDefinitionRef(name=name, revision=int(revision) if known else None, arn=arn)


def _job_kind(job: AnyJobDetail) -> JobKind:
    if isinstance(job, ServiceJobDetail):
        return JobKind.SERVICE
    if job.array_properties is not None and job.array_properties.index is not None:
        return JobKind.ARRAY_CHILD
    if job.array_properties is not None and job.array_properties.size is not None:
        return JobKind.ARRAY_PARENT
    if job.node_details is not None or "#" in job.job_id:
        return JobKind.MULTINODE_NODE
    if job.node_properties is not None:
        return JobKind.MULTINODE_PARENT
    if job.eks_properties is not None or job.eks_attempts:
        return JobKind.EKS
    return JobKind.CONTAINER


def _parent_job_id(job: AnyJobDetail, kind: JobKind) -> str | None:
    if kind is JobKind.ARRAY_CHILD:
        return job.job_id.rsplit(":", 1)[0] if ":" in job.job_id else None
    if kind is JobKind.MULTINODE_NODE:
        return job.job_id.split("#", 1)[0] if "#" in job.job_id else None
    return None


# The container shapes that report an exit code and a reason.
_C = TypeVar("_C", ContainerDetail, AttemptTaskContainer, EksAttemptContainer, EksContainer)


def _speaking(
    containers: Sequence[_C], otherwise: Sequence[_C], essential: frozenset[str] | None = None
) -> _C | None:
    """The container that speaks for a job or an attempt: the one that failed, as the most
    specific evidence names it; if none did, the first of `otherwise`.

    One with a reason and no clean exit first ("OutOfMemoryError: …"; Kubernetes says
    "Completed" of a container that exited 0), then an `essential` one (any, when None) with a
    non-zero exit code: a sidecar killed (137) as its task stopped must not hide the app's exit.
    """
    with_reason = (c for c in containers if c.reason and c.exit_code != 0)
    exited = (
        c
        for c in containers
        if c.exit_code not in (None, 0) and (essential is None or c.name in essential)
    )
    return next(with_reason, None) or next(exited, None) or next(iter(otherwise), None)


def _essential_names(containers: Sequence[ContainerDetail]) -> frozenset[str] | None:
    """The names of the essential ones of a job's `containers`; None when none is marked otherwise.

    An attempt's task containers do not say whether they are essential: their names match the
    job's. ECS stops a task when an essential container exits, never for another one.
    """
    if all(c.essential is not False for c in containers):
        return None
    return frozenset(c.name for c in containers if c.essential is not False and c.name)


def _containers(job: JobDetail) -> list[ContainerDetail]:
    """The job's container definitions: every ECS-properties task container, else `container`.

    An ECS-properties job may carry an empty `container` beside them, which holds no log group.
    """
    if job.ecs_properties is not None:
        tasks = [c for task in job.ecs_properties.task_properties for c in task.containers]
        if tasks:
            return tasks
    return [job.container] if job.container is not None else []


def _primary_container(
    containers: Sequence[ContainerDetail], essential: frozenset[str] | None
) -> ContainerDetail | None:
    """The container that speaks for a job of these `containers` (`_containers(job)`), whose
    `essential` names are `_essential_names(containers)`."""
    if len(containers) == 1:
        # Most jobs have one: it speaks for the job whatever it reports (see `_speaking`).
        return containers[0]
    marked = [c for c in containers if c.essential is not False]
    return _speaking(containers, otherwise=marked or containers, essential=essential)


@dataclass(frozen=True, slots=True)
class _LogPlace:
    """Where a container's awslogs driver writes: its group, and the Region named in its options
    (`awslogs-region`; None: the job's own)."""

    group: str
    region: str | None = None


def _awslogs(container: ContainerDetail) -> _LogPlace | None:
    """The container's awslogs destination; None when another driver (splunk, fluentd,
    awsfirelens, ...) takes its output: Batch still names a stream, but CloudWatch never has it."""
    config = container.log_configuration
    if config is None:
        return _LogPlace(DEFAULT_LOG_GROUP)
    if config.log_driver is not None and config.log_driver.lower() != "awslogs":
        return None
    return _LogPlace(
        config.options.get("awslogs-group") or DEFAULT_LOG_GROUP,
        config.options.get("awslogs-region") or None,
    )


def _log_place(
    containers: Sequence[ContainerDetail], container_name: str | None = None
) -> _LogPlace | None:
    """Where the named one of a job's `containers` (`_containers(job)`) logs (Batch's default
    group without a configuration); unnamed: the first group any container sets, else the first
    container's driver decides."""
    if container_name is not None:
        for container in containers:
            if container.name == container_name:
                return _awslogs(container)
    for container in containers:
        place = _awslogs(container)
        if place is not None and container.log_group:
            return place
    return _awslogs(containers[0]) if containers else _LogPlace(DEFAULT_LOG_GROUP)


def _stream_url(
    partition: str, region: str, place: _LogPlace | None, stream: str | None
) -> str | None:
    """The deep link to `stream`, in the Region its driver writes to; None without one."""
    if place is None or not stream:
        return None
    return log_url(partition, place.region or region, place.group, stream)


def _memory_mib(
    job: JobDetail, containers: Sequence[ContainerDetail], primary: ContainerDetail | None
) -> int | None:
    """`primary` is the one of the job's `containers` that speaks for it (`_primary_container`):
    the one whose memory ran out."""
    if primary is not None and primary.memory_mib:
        return primary.memory_mib
    for container in containers:
        if container.memory_mib:
            return container.memory_mib
    if job.eks_properties and job.eks_properties.pod_properties:
        for eks_container in job.eks_properties.pod_properties.containers:
            for section in ("limits", "requests"):
                memory = eks_container.resources.get(section, {}).get("memory")
                if memory:
                    return _k8s_memory_mib(memory)
    return None


def _k8s_memory_mib(quantity: str) -> int | None:
    units = {"Ki": 1 / 1024, "Mi": 1, "Gi": 1024, "Ti": 1024 * 1024}
    for suffix, factor in units.items():
        if quantity.endswith(suffix):
            try:
                return int(float(quantity[: -len(suffix)]) * factor)
            except (ValueError, OverflowError):  # "abc", or "inf"/"1e400"
                return None
    try:
        return int(float(quantity) / (1024 * 1024))
    except (ValueError, OverflowError):  # "abc", or "inf"/"1e400"
        return None


def _image(job: JobDetail, primary: ContainerDetail | None) -> str | None:
    if primary is not None and primary.image:
        return primary.image
    if job.eks_properties and job.eks_properties.pod_properties:
        for eks_container in job.eks_properties.pod_properties.containers:
            if eks_container.image:
                return eks_container.image
    return None


# --- attempts ------------------------------------------------------------------------------


def _attempt(number: int, started_ms: int | None, stopped_ms: int | None, **fields: Any) -> Attempt:
    """An attempt with its times and duration; fields not given are null."""
    started, stopped = _time(started_ms), _time(stopped_ms)
    values: dict[str, Any] = dict.fromkeys(
        (
            "exit_code",
            "reason",
            "status_reason",
            "log_group",
            "log_stream_name",
            "log_url",
            "resource_arn",
        )
    )
    values.update(fields)
    return Attempt(
        number=number,
        started_at=started,
        stopped_at=stopped,
        duration_seconds=_seconds(started, stopped),
        **values,
    )


def _container_attempt(
    number: int,
    attempt: AttemptDetail,
    containers: Sequence[ContainerDetail],
    *,
    log_place: _LogPlace | None,
    essential: frozenset[str] | None,
    partition: str,
    region: str,
) -> Attempt:
    """`containers` are the job's (`_containers(job)`); `log_place` and `essential` are theirs
    (`_log_place(containers)`, `_essential_names(containers)`), worked out once for all its
    attempts."""
    container = attempt.container
    exit_code = container.exit_code if container else None
    reason = container.reason if container else None
    stream = container.log_stream_name if container else None
    resource = container.task_arn if container else None
    if attempt.task_properties:
        # ECS-properties jobs: the container that failed speaks for the attempt.
        task = attempt.task_properties[0]
        resource = resource or task.task_arn
        named = [c for c in task.containers if essential is None or c.name in essential]
        chosen = _speaking(task.containers, otherwise=named or task.containers, essential=essential)
        if chosen is not None:
            exit_code = exit_code if exit_code is not None else chosen.exit_code
            reason = reason or chosen.reason
            if not stream and chosen.log_stream_name:
                stream = chosen.log_stream_name
                log_place = _log_place(containers, chosen.name)
    return _attempt(
        number,
        attempt.started_at,
        attempt.stopped_at,
        exit_code=exit_code,
        reason=reason,
        status_reason=attempt.status_reason,
        log_group=log_place.group if log_place and stream else None,
        log_stream_name=stream,
        log_url=_stream_url(partition, region, log_place, stream),
        resource_arn=resource,
    )


def _attempts(
    job: AnyJobDetail,
    containers: Sequence[ContainerDetail],
    essential: frozenset[str] | None,
    partition: str,
    region: str,
) -> list[Attempt]:
    """`containers` are a container job's (`_containers(job)`), `essential` their
    `_essential_names`."""
    if isinstance(job, ServiceJobDetail):
        result = []
        for number, service_attempt in enumerate(job.attempts, start=1):
            resource_id = service_attempt.service_resource_id
            resource = resource_id.value if resource_id else None
            name = training_job_of(resource)
            result.append(
                _attempt(
                    number,
                    service_attempt.started_at,
                    service_attempt.stopped_at,
                    status_reason=service_attempt.status_reason,
                    log_group=SAGEMAKER_LOG_GROUP if name else None,
                    log_url=_training_log_url(partition, region, name) if name else None,
                    resource_arn=resource,
                )
            )
        return result
    if job.eks_attempts:
        result = []
        for number, eks_attempt in enumerate(job.eks_attempts, start=1):
            pod_containers = eks_attempt.containers + eks_attempt.init_containers
            chosen = _speaking(pod_containers, otherwise=pod_containers)
            result.append(
                _attempt(
                    number,
                    eks_attempt.started_at,
                    eks_attempt.stopped_at,
                    exit_code=chosen.exit_code if chosen else None,
                    reason=chosen.reason if chosen else None,
                    status_reason=eks_attempt.status_reason,
                    resource_arn=eks_attempt.eks_cluster_arn,
                )
            )
        return result
    if not job.attempts:
        return []  # most events: a job not yet run (the log place goes unasked)
    place = _log_place(containers)
    return [
        _container_attempt(
            number,
            attempt,
            containers,
            log_place=place,
            essential=essential,
            partition=partition,
            region=region,
        )
        for number, attempt in enumerate(job.attempts, start=1)
    ]


def training_job_of(arn: str | None) -> str | None:
    """The name of the SageMaker training job `arn` names, if it names one."""
    return arn.rsplit("/", 1)[-1] if arn and ":training-job/" in arn else None


def training_job_name(attempt: Attempt) -> str | None:
    """The SageMaker training job a service job's attempt ran, if it ran one."""
    return training_job_of(attempt.resource_arn)


def training_log_stream(training_job: str, host: int, started_s: int) -> str:
    """The stream SageMaker names for one host of a training job (`algo-<host>-<epoch>`)."""
    return f"{training_job}/algo-{host}-{started_s}"


def _latest_logs(
    partition: str,
    region: str,
    containers: Sequence[ContainerDetail],
    primary: ContainerDetail | None,
    training_job: str | None,
) -> str | None:
    """The latest attempt's log, finished or not: the stream of the container that speaks for the
    job (`primary`, one of `containers`), or the latest training job's streams."""
    if primary is not None and primary.log_stream_name:
        place = _log_place(containers, primary.name)
        return _stream_url(partition, region, place, primary.log_stream_name)
    if training_job:
        return _training_log_url(partition, region, training_job)
    return None


def _training_log_url(partition: str, region: str, training_job_name: str) -> str:
    # SageMaker names the streams "<training job>/algo-<n>-<epoch>": link the group, filtered.
    return (
        log_url(partition, region, SAGEMAKER_LOG_GROUP)
        + "$3FlogStreamNameFilter$3D"
        + _cw_escape(training_job_name)
    )


def _training_job_url(partition: str, region: str, name: str) -> str:
    return f"{console_host(partition, region)}/sagemaker/home?region={region}#/jobs/{name}"


def _batch_console_url(partition: str, region: str, job_id: str) -> str:
    return f"{console_host(partition, region)}/batch/home?region={region}#jobs/detail/{job_id}"


# --- failure facts -------------------------------------------------------------------------


def _failure_facts(
    event_type: EventType,
    job: AnyJobDetail,
    attempts: list[Attempt],
    containers: Sequence[ContainerDetail],
    primary: ContainerDetail | None,
) -> failures.JobFacts:
    """`containers` are a container job's (`_containers(job)`), `primary` the one that speaks for
    it (`_primary_container`)."""
    retry = job.retry_strategy
    strategy = failures.RetryStrategy(
        attempts=retry.attempts if retry else None,
        evaluate_on_exit=tuple(
            failures.ExitRule(
                action=rule.action or "",
                on_status_reason=rule.on_status_reason,
                on_reason=rule.on_reason,
                on_exit_code=rule.on_exit_code,
            )
            for rule in (retry.evaluate_on_exit if retry else [])
        ),
    )
    attempt_facts = tuple(
        failures.AttemptFacts(
            status_reason=attempt.status_reason,
            container_reason=attempt.reason,
            exit_code=attempt.exit_code,
        )
        for attempt in attempts
    )
    if isinstance(job, ServiceJobDetail):
        return failures.JobFacts(
            event_type=event_type.value,
            status=job.status,
            status_reason=job.status_reason,
            attempts=attempt_facts,
            is_terminated=bool(job.is_terminated),
            is_service_job=True,
            retry_strategy=strategy,
            timeout_seconds=job.timeout_config.attempt_duration_seconds
            if job.timeout_config
            else None,
        )
    container: ContainerDetail | EksContainer | None = primary
    if container is None and job.eks_properties and job.eks_properties.pod_properties:
        # An EKS job's pod containers carry their own exit code and reason.
        pods = job.eks_properties.pod_properties.containers
        container = _speaking(pods, otherwise=pods)
    return failures.JobFacts(
        event_type=event_type.value,
        status=job.status,
        status_reason=job.status_reason,
        attempts=attempt_facts,
        container_reason=container.reason if container else None,
        exit_code=container.exit_code if container else None,
        is_cancelled=bool(job.is_cancelled),
        is_terminated=bool(job.is_terminated),
        retry_strategy=strategy,
        memory_mib=_memory_mib(job, containers, primary),
        image=_image(job, primary),
        timeout_seconds=job.timeout.attempt_duration_seconds if job.timeout else None,
        depends_on=tuple(dep.job_id for dep in job.depends_on if dep.job_id),
    )


# --- the normaliser ------------------------------------------------------------------------

#: What changes as a job moves on: only the event says where the job was at its transition
#: (a RUNNING event leaves `stoppedAt` out; a later description must not fill it in).
_PROGRESS_KEYS = frozenset(
    {
        "status",
        "statusReason",
        "attempts",
        "eksAttempts",
        "latestAttempt",
        "scheduledAt",
        "startedAt",
        "stoppedAt",
        "isCancelled",
        "isTerminated",
    }
)


def _masked(facts: failures.JobFacts, redactor: Redactor) -> tuple[failures.JobFacts, int]:
    """`facts` with secrets masked in their reasons, and how many were masked. The failure's
    texts quote and cut the reasons, and a cut can part a secret from what marks it (a URL's
    password from its `@`), so masking the texts made from them would be too late."""
    mask = Tally(redactor)
    masked = replace(
        facts,
        status_reason=mask(facts.status_reason),
        container_reason=mask(facts.container_reason),
        attempts=tuple(
            replace(
                attempt,
                status_reason=mask(attempt.status_reason),
                container_reason=mask(attempt.container_reason),
            )
            for attempt in facts.attempts
        ),
    )
    return masked, mask.count


def merge_detail(event_detail: Mapping[str, Any], described: Mapping[str, Any]) -> dict[str, Any]:
    """The described job, overlaid with the event's own detail.

    The event is the state at the transition it reports; the description (read later) fills in
    what the event leaves out but must not move the record past that transition.
    """
    static = {key: value for key, value in described.items() if key not in _PROGRESS_KEYS}
    return {**static, **event_detail}


#: Finds which of a job's dependencies (their ids) failed: its id and category, or None.
DependencyLookup = Callable[[list[str]], tuple[str, failures.FailureCategory | None] | None]


def normalise(
    event: BatchEvent,
    described: Mapping[str, Any] | None = None,
    *,
    enrichment: Enrichment | None = None,
    redactor: Redactor | None = None,
    dependency: tuple[str, failures.FailureCategory | None] | None = None,
    failed_dependency: DependencyLookup | None = None,
) -> JobRecord:
    """Build the JobRecord for one event.

    `described` is the DescribeJobs/DescribeServiceJob entry for the job when the API returned
    one; `enrichment` says how it was obtained (default: DESCRIBED when given, else EVENT_ONLY).
    A job failed by a dependency names `dependency` (its id and category), or the one
    `failed_dependency` finds among the job's dependencies (`HistoryTable.failed_dependency`).
    """
    if described is not None:
        job = job_detail(event.event_type, merge_detail(event.detail, described))
    else:
        job = event.job
    if enrichment is None:
        enrichment = Enrichment.DESCRIBED if described is not None else Enrichment.EVENT_ONLY
    envelope = event.envelope
    partition, region = _arn_partition_region(job.job_arn, envelope.region)
    kind = _job_kind(job)
    # A container job's containers, and the one that speaks for it: worked out once for the
    # attempts, the failure facts and the logs link.
    containers = _containers(job) if isinstance(job, JobDetail) else []
    essential = _essential_names(containers)
    primary = _primary_container(containers, essential)
    attempts = _attempts(job, containers, essential, partition, region)

    created, started, stopped = _time(job.created_at), _time(job.started_at), _time(job.stopped_at)
    # The wait ends when an attempt first ran: one whose task failed to start has no start, and
    # the job's own `startedAt` is its latest attempt's.
    first_start = next((a.started_at for a in attempts if a.started_at), started)
    retry_attempts = job.retry_strategy.attempts if job.retry_strategy else None
    running_now = job.status in ("STARTING", "RUNNING")

    redactor = redactor or Redactor()
    failure: Failure | None = None
    masked_in_failure = 0
    # Most events report no failure: their facts go ungathered.
    if failures.is_failure(event.event_type.value, job.status, attempted=bool(attempts)):
        facts = _failure_facts(event.event_type, job, attempts, containers, primary)
        if dependency is not None:
            facts = replace(
                facts, dependency_job_id=dependency[0], dependency_category=dependency[1]
            )
        failure = failures.classify(facts)
        if (
            failure is not None
            and failure.category is failures.FailureCategory.DEPENDENCY_FAILED
            and dependency is None
            and failed_dependency is not None
        ):
            found = failed_dependency(event.depends_on)
            if found is not None:
                facts = replace(facts, dependency_job_id=found[0], dependency_category=found[1])
                failure = failures.classify(facts)
        if failure is not None:
            # The failure's texts quote and cut the reasons: made again from masked reasons
            # when they hold a secret (see `_masked`).
            masked, masked_in_failure = _masked(facts, redactor)
            if masked_in_failure:
                failure = failures.classify(masked)

    training_job_arn: str | None = None
    if isinstance(job, ServiceJobDetail):
        latest = job.latest_attempt.service_resource_id if job.latest_attempt else None
        training_job_arn = latest.value if latest and latest.value else None
        if training_job_arn is None and attempts:
            training_job_arn = attempts[-1].resource_arn

    training_job = training_job_of(training_job_arn)
    logs_link = next((a.log_url for a in reversed(attempts) if a.log_url), None)
    if logs_link is None or running_now:
        # An attempt under way is in no AttemptDetail yet: after a retry, the last finished
        # attempt's log is an older one than the job is writing.
        logs_link = _latest_logs(partition, region, containers, primary, training_job) or logs_link

    array = job.array_properties if isinstance(job, JobDetail) else None
    record = JobRecord(
        event_type=event.event_type,
        event_id=envelope.id,
        event_time=envelope.time,
        account=envelope.account,
        region=envelope.region,
        job_id=job.job_id,
        job_arn=job.job_arn,
        job_name=job.job_name,
        job_queue=_queue_ref(job.job_queue),
        job_definition=_job_definition_ref(job.job_definition)
        if isinstance(job, JobDetail)
        else None,
        job_kind=kind,
        array_index=array.index if array else None,
        parent_job_id=_parent_job_id(job, kind),
        array_size=array.size if array and array.size is not None else None,
        array_status_summary=dict(array.status_summary) if array and array.status_summary else None,
        service_job_type=job.service_job_type if isinstance(job, ServiceJobDetail) else None,
        status=job.status,
        status_reason=job.status_reason,
        is_terminal=job.status in TERMINAL_STATUSES,
        created_at=created,
        started_at=started,
        stopped_at=stopped,
        queued_seconds=_seconds(created, first_start),
        run_seconds=_seconds(started, stopped),
        total_seconds=_seconds(created, stopped),
        attempts=attempts,
        attempts_used=len(attempts) + (1 if running_now else 0),
        attempts_allowed=retry_attempts or 1,
        failure=failure,
        links=Links(
            console=_batch_console_url(partition, region, job.job_id),
            logs=logs_link,
            training_job=_training_job_url(partition, region, training_job)
            if training_job
            else None,
        ),
        enrichment=enrichment,
        redacted=masked_in_failure,
    )
    return redactor.redact_record(record)
