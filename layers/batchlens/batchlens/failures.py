"""Why a Batch job failed, and whether Batch will try it again: the `failure` of a JobRecord.

Pure domain code. The caller turns DescribeJobs/DescribeServiceJob details into `JobFacts`;
`classify` reads the latest attempt's evidence (container reason, then status reasons, then exit
code) against one table of patterns (`_RULES`, from failure-taxonomy.md) and explains the retry
outlook from the job's `retryStrategy`. No AWS, no I/O, and no input makes it raise.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

__all__ = [
    "AttemptFacts",
    "EvidenceField",
    "ExitRule",
    "Failure",
    "FailureCategory",
    "JobFacts",
    "RetryStrategy",
    "categorize",
    "classify",
    "signal_name",
    "will_batch_retry",
]


class FailureCategory(StrEnum):
    OUT_OF_MEMORY = "OUT_OF_MEMORY"
    HOST_TERMINATED = "HOST_TERMINATED"
    TIMEOUT = "TIMEOUT"
    IMAGE_PULL = "IMAGE_PULL"
    CONTAINER_START = "CONTAINER_START"
    RESOURCE_INITIALIZATION = "RESOURCE_INITIALIZATION"
    INFRASTRUCTURE = "INFRASTRUCTURE"
    APPLICATION_ERROR = "APPLICATION_ERROR"
    CANCELLED = "CANCELLED"
    DEPENDENCY_FAILED = "DEPENDENCY_FAILED"
    CAPACITY = "CAPACITY"
    MISCONFIGURATION = "MISCONFIGURATION"
    UNKNOWN = "UNKNOWN"


class Failure(BaseModel):
    """The `failure` object of a JobRecord (serialised by the caller with `by_alias=True`)."""

    # defer_build: validators are built on first use, not at import (cold start).
    model_config = ConfigDict(
        frozen=True, populate_by_name=True, alias_generator=to_camel, defer_build=True
    )

    category: FailureCategory
    summary: str
    detail: str
    retryable: bool
    batch_will_retry: bool
    next_step: str


@dataclass(frozen=True, slots=True)
class ExitRule:
    """One `retryStrategy.evaluateOnExit` entry."""

    action: str
    on_status_reason: str | None = None
    on_reason: str | None = None
    on_exit_code: str | None = None


@dataclass(frozen=True, slots=True)
class RetryStrategy:
    attempts: int | None = None
    evaluate_on_exit: tuple[ExitRule, ...] = ()


@dataclass(frozen=True, slots=True)
class AttemptFacts:
    """One finished attempt, oldest first."""

    status_reason: str | None = None
    container_reason: str | None = None
    exit_code: int | None = None
    instance_id: str | None = None


@dataclass(frozen=True, slots=True)
class JobFacts:
    event_type: str
    status: str
    status_reason: str | None = None
    attempts: tuple[AttemptFacts, ...] = ()
    container_reason: str | None = None
    exit_code: int | None = None
    is_cancelled: bool = False
    is_terminated: bool = False
    is_service_job: bool = False
    retry_strategy: RetryStrategy | None = None
    memory_mib: int | None = None
    image: str | None = None
    timeout_seconds: int | None = None
    depends_on: tuple[str, ...] = ()
    dependency_category: FailureCategory | None = None
    dependency_job_id: str | None = None


class EvidenceField(StrEnum):
    """Where a piece of evidence sits (the codes of failure-taxonomy.md)."""

    CONTAINER_REASON = "CR"  # container.reason; EKS containers[j].reason
    STATUS_REASON = "S"  # job or attempt statusReason of a container job
    SERVICE_STATUS_REASON = "SVC"  # statusReason of a service (SageMaker) job


# --- the pattern table ------------------------------------------------------------------------

_CR = frozenset({EvidenceField.CONTAINER_REASON})
_S = frozenset({EvidenceField.STATUS_REASON})
_SVC = frozenset({EvidenceField.SERVICE_STATUS_REASON})
_CR_S = _CR | _S
_S_SVC = _S | _SVC


class _Pattern:
    """A regular expression compiled on first use.

    Only failed or blocked jobs are classified; compiling every pattern at import cost about
    13 ms of each cold start, for batches that may hold no failure at all.
    """

    __slots__ = ("_compiled", "_flags", "_source")

    def __init__(self, source: str, flags: int = 0) -> None:
        self._source, self._flags = source, flags
        self._compiled: re.Pattern[str] | None = None

    @property
    def compiled(self) -> re.Pattern[str]:
        if self._compiled is None:
            self._compiled = re.compile(self._source, self._flags)
        return self._compiled

    def search(self, text: str) -> re.Match[str] | None:
        return self.compiled.search(text)

    def match(self, text: str) -> re.Match[str] | None:
        return self.compiled.match(text)

    def sub(self, replacement: str, text: str, count: int = 0) -> str:
        return self.compiled.sub(replacement, text, count=count)

    def finditer(self, text: str) -> Iterator[re.Match[str]]:
        return self.compiled.finditer(text)


class _Rule(NamedTuple):
    pattern: _Pattern
    category: FailureCategory
    fields: frozenset[EvidenceField]


def _rule(pattern: str, category: FailureCategory, fields: frozenset[EvidenceField]) -> _Rule:
    return _Rule(_Pattern(pattern, re.IGNORECASE), category, fields)


_C = FailureCategory
#: Every pattern, most specific first; the first rule that matches a piece of evidence decides.
#: Matched against text with the SageMaker prefix stripped and whitespace collapsed.
_RULES: tuple[_Rule, ...] = (
    # SageMaker's FailureReason leads with its error type; the script's own message after it may
    # quote any other name (a boto3 ResourceLimitExceeded, InternalServerError …).
    _rule(r"^(?:CapacityError|ResourceLimitExceeded)\b", _C.CAPACITY, _SVC),
    _rule(r"^InternalServerError\b", _C.INFRASTRUCTURE, _SVC),
    _rule(r"^AlgorithmError\b", _C.APPLICATION_ERROR, _SVC),
    _rule(r"^(?:ValidationException|ClientError)\b", _C.MISCONFIGURATION, _SVC),
    _rule(r"\bOutOfMemoryError\b|container killed due to memory usage", _C.OUT_OF_MEMORY, _CR_S),
    _rule(r"^OOMKilled\b", _C.OUT_OF_MEMORY, _CR),  # EKS
    _rule(r"^Host EC2\b.*?\b(?:terminated|stopped)\b", _C.HOST_TERMINATED, _CR_S),
    _rule(r"^Your Spot Task was interrupted", _C.HOST_TERMINATED, _CR_S),
    _rule(r"^Container instance deregistration forced", _C.HOST_TERMINATED, _S),
    _rule(r"^Job attempt duration exceeded timeout", _C.TIMEOUT, _S),
    _rule(r"\bMaxRuntimeExceeded\b|\bMaxWaitTimeExceeded\b", _C.TIMEOUT, _SVC),
    _rule(r"\bCannotPullContainerError\b", _C.IMAGE_PULL, _CR_S),
    _rule(r"^(?:ErrImagePull|ImagePullBackOff|InvalidImageName)\b", _C.IMAGE_PULL, _CR),  # EKS
    _rule(r"\bCannotStartContainerError\b", _C.CONTAINER_START, _CR_S),
    _rule(
        r"^(?:ContainerCannotRun|CreateContainerError|CreateContainerConfigError|RunContainerError)\b",
        _C.CONTAINER_START,
        _CR,  # EKS
    ),
    _rule(r"\bResourceInitializationError\b", _C.RESOURCE_INITIALIZATION, _CR_S),
    _rule(
        r"\b(?:DockerTimeoutError|CannotInspectContainerError|CannotCreateContainerError"
        r"|CannotCreateVolumeError|VolumeError|CgroupError|DockerStateError|ContainerRuntimeError"
        r"|ContainerRuntimeTimeoutError|CannotStopContainerError)\b|^(?:InternalError|UnknownError)\b",
        _C.INFRASTRUCTURE,
        _CR_S,
    ),
    _rule(r"^Task failed to start\b", _C.CONTAINER_START, _S),
    _rule(r"^CAPACITY\s*:", _C.CAPACITY, _S_SVC),
    _rule(
        r"\bInsufficientInstanceCapacity\b|capacity is unavailable at this time", _C.CAPACITY, _S
    ),
    _rule(r"^MISCONFIGUR\w*\s*:", _C.MISCONFIGURATION, _S_SVC),
    _rule(r"^ACTION_REQUIRED\b", _C.MISCONFIGURATION, _S_SVC),
    # ECS's own words when the job definition's role does not trust ecs-tasks.amazonaws.com.
    _rule(r"^ECS was unable to assume the role\b", _C.MISCONFIGURATION, _CR_S),
    _rule(r"\b(?:CapacityError|ResourceLimitExceeded)\b", _C.CAPACITY, _SVC),
    _rule(r"\bInternalServerError\b", _C.INFRASTRUCTURE, _SVC),
    _rule(r"\bAlgorithmError\b", _C.APPLICATION_ERROR, _SVC),
    _rule(r"\b(?:ValidationException|ClientError)\b", _C.MISCONFIGURATION, _SVC),
    _rule(r"\bdepend(?:ent|ency|encies)\b[^.]{0,80}?\bfail", _C.DEPENDENCY_FAILED, _S_SVC),
    _rule(
        r"^(?:(?:the\s+)?(?:job|task)\s+)?(?:cancell?ed|terminated|killed|aborted|stopped)"
        r"\s+(?:by|via|from)\b|\binitiated (?:job )?(?:termination|cancell?ation)\b",
        _C.CANCELLED,
        _S_SVC,
    ),
)

#: `Canceled by JobStateTimeLimit action due to reason: <REASON>`: the embedded reason decides.
_TIME_LIMIT = _Pattern(
    r"^(?:cancell?ed|terminated) by JobStateTimeLimit action"
    r"(?: due to reason\s*:\s*(?P<reason>.*))?",
    re.IGNORECASE,
)
_SAGEMAKER_PREFIX = _Pattern(r"^received status from sagemaker\s*:\s*", re.IGNORECASE)
_WHITESPACE = _Pattern(r"\s+")
_TIMEOUT_WORDS = _Pattern(r"time[ds]?[\s-]?out|deadline exceeded", re.IGNORECASE)
_INSTANCE_ID = _Pattern(r"\bi-[0-9a-f]+\b")
_MISCONFIGURATION_CODE = _Pattern(r"^(?:MISCONFIGUR\w*\s*:+\s*(\w+)|(ACTION_REQUIRED))", re.I)

_PULL_PERMANENT = _Pattern(
    r"not found|repository does not exist|unauthorized|pull access denied|manifest unknown"
    r"|access denied|forbidden|InvalidImageName|invalid reference format",
    re.IGNORECASE,
)
_PULL_TRANSIENT = _Pattern(
    r"toomanyrequests|too many requests|rate limit|time[ds]?[\s-]?out|deadline exceeded"
    r"|no space left on device|connection reset",
    re.IGNORECASE,
)
_IMAGE_IN_REASON = tuple(
    _Pattern(pattern, re.IGNORECASE)
    for pattern in (
        r"pull access denied for ([^\s,;]+)",
        r"manifest for ([^\s,;]+) not found",
        r"repository ([^\s,;]+) not found",
        r"failed to resolve (?:ref|reference) [\"']?([^\s\"',;]+?)[\"']?:\s",
        r"pulling image [\"']?([^\s\"',;]+)",
    )
)
_EXEC_NOT_FOUND = _Pattern(r"exec: \"?([^\":]+?)\"?: executable file not found", re.IGNORECASE)
_EKS_PULL = _Pattern(r"^(?:ErrImagePull|ImagePullBackOff|InvalidImageName)\b", re.IGNORECASE)
_LOG_DRIVER = _Pattern(r"failed to initiali[sz]e logging driver", re.IGNORECASE)
_CLOUDWATCH_LOGS = _Pattern(r"cloudwatch|log stream|log group|\blogs\.", re.IGNORECASE)
_UNASSUMED_ROLE = _Pattern(r"^ECS was unable to assume the role '?([^\s']+)", re.IGNORECASE)

# Evidence longer than this is cut before matching: every pattern looks at the start or at a
# distinctive token, and the cut bounds the cost of a pathological reason.
_MATCH_LIMIT = 4096
_SUMMARY_LIMIT = 200
_DETAIL_EVIDENCE_LIMIT = 1000
_WAITING_STATUSES = frozenset({"SUBMITTED", "PENDING", "RUNNABLE"})

#: Linux signal numbers, explicit so names do not depend on the platform running the code.
_LINUX_SIGNALS: dict[int, str] = {
    1: "SIGHUP",
    2: "SIGINT",
    3: "SIGQUIT",
    4: "SIGILL",
    5: "SIGTRAP",
    6: "SIGABRT",
    7: "SIGBUS",
    8: "SIGFPE",
    9: "SIGKILL",
    10: "SIGUSR1",
    11: "SIGSEGV",
    12: "SIGUSR2",
    13: "SIGPIPE",
    14: "SIGALRM",
    15: "SIGTERM",
    16: "SIGSTKFLT",
    17: "SIGCHLD",
    18: "SIGCONT",
    19: "SIGSTOP",
    20: "SIGTSTP",
    21: "SIGTTIN",
    22: "SIGTTOU",
    23: "SIGURG",
    24: "SIGXCPU",
    25: "SIGXFSZ",
    26: "SIGVTALRM",
    27: "SIGPROF",
    28: "SIGWINCH",
    29: "SIGIO",
    30: "SIGPWR",
    31: "SIGSYS",
}

#: MISCONFIGURATION sub-reason -> (what it means, what to do).
_MISCONFIGURATIONS: dict[str, tuple[str, str]] = {
    "COMPUTE_ENVIRONMENT_MAX_RESOURCE": (
        "the job needs more vCPUs than the compute environments' maxvCpus allows",
        "Raise maxvCpus of the compute environment(s) or lower the job's vCPU request",
    ),
    "JOB_RESOURCE_REQUIREMENT": (
        "no instance type in the compute environments can satisfy the job's vCPU/memory/GPU "
        "request",
        "No instance type in the compute environment can satisfy the job's vCPU/memory/GPU "
        "request: add a larger instance type (or family) or lower the request",
    ),
    "SERVICE_ROLE_PERMISSIONS": (
        "the AWS Batch service role lacks permissions",
        "Fix the AWS Batch service role: use the service-linked role or the AWSBatchServiceRole "
        "policy (it needs e.g. autoscaling:DescribeScalingActivities)",
    ),
    "EC2_INSTANCE_CONFIGURATION_UNSUPPORTED": (
        "the compute environment's EC2 instance configuration is not supported",
        "Fix the compute environment's instance configuration: pick instance types, AMI and "
        "launch template settings that AWS Batch supports",
    ),
    "SERVICE_ENVIRONMENT_MAX_RESOURCE": (
        "the job needs more instances than the service environment's capacity limits allow",
        "Raise the service environment's capacityLimits or request fewer instances",
    ),
    "QUOTA_MANAGEMENT_LIMIT_EXCEEDED": (
        "the job needs more instances than its quota share's capacity limits allow",
        "Raise the quota share's capacity limits or request fewer instances",
    ),
    "ACTION_REQUIRED": (
        "the compute environments attached to the job queue are INVALID",
        "Fix the INVALID compute environment(s) (their statusReason says why) or attach a VALID "
        "one to the job queue",
    ),
}


# --- small text helpers -----------------------------------------------------------------------


def _one_line(text: str | None) -> str:
    if not text:
        return ""
    return _WHITESPACE.sub(" ", text).strip()


def _sentence(text: str) -> str:
    return text if text.endswith((".", "!", "?")) else f"{text}."


def _clip(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[: limit - 1].rstrip() + "…"


def _normalise(text: str | None) -> str:
    """One piece of evidence ready for matching: one line, SageMaker prefix stripped, bounded."""
    if not text:
        return ""
    cut = _one_line(text[: 2 * _MATCH_LIMIT])
    return _SAGEMAKER_PREFIX.sub("", cut, count=1)[:_MATCH_LIMIT]


def signal_name(exit_code: int) -> str | None:
    """The signal behind a shell-style exit code above 128 (137 -> SIGKILL), else None."""
    return _LINUX_SIGNALS.get(exit_code - 128) if exit_code > 128 else None


def _exit_code_text(exit_code: int) -> str:
    signal = signal_name(exit_code)
    return f"exit code {exit_code} ({signal})" if signal else f"exit code {exit_code}"


# --- matching one piece of evidence -----------------------------------------------------------


class _Match(NamedTuple):
    category: FailureCategory
    text: str  # the normalised evidence (for a JobStateTimeLimit cancel: the embedded reason)
    time_limit: bool = False  # ended by the job queue's jobStateTimeLimitActions


def _match(text: str, field: EvidenceField | None) -> _Match | None:
    """The first rule of `_RULES` (for that field) matching normalised text, or None."""
    if not text:
        return None
    if field is not EvidenceField.CONTAINER_REASON:
        limit = _TIME_LIMIT.match(text)
        if limit:
            embedded = (limit.group("reason") or "").strip()
            inner = _match(embedded, field)
            if inner is None:
                return _Match(FailureCategory.CANCELLED, embedded or text, time_limit=True)
            return inner._replace(time_limit=True)
    for rule in _RULES:
        if (field is None or field in rule.fields) and rule.pattern.search(text):
            return _Match(rule.category, text)
    return None


def categorize(reason_text: str | None, field: EvidenceField | None = None) -> FailureCategory:
    """The category one piece of evidence points at, UNKNOWN when no pattern matches.

    `field` restricts the table to the rules for that field (None tries every rule).
    """
    found = _match(_normalise(reason_text), field)
    return found.category if found else FailureCategory.UNKNOWN


# --- reading the facts ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Evidence:
    """The latest attempt's evidence, job-level values filling what the attempt lacks."""

    container_reason: str | None
    attempt_status_reason: str | None
    job_status_reason: str | None
    exit_code: int | None
    instance_id: str | None
    attempt_number: int | None  # 1-based, None when no attempt was recorded
    attempts_allowed: int

    @property
    def attempt_label(self) -> str | None:
        if self.attempt_number is None:
            return None
        return f"attempt {self.attempt_number}/{self.attempts_allowed}"

    @property
    def status_reason(self) -> str | None:
        """The status reason evaluateOnExit sees: the attempt's, else the job's."""
        return self.attempt_status_reason or self.job_status_reason


def _attempts_allowed(facts: JobFacts) -> int:
    attempts = facts.retry_strategy.attempts if facts.retry_strategy else None
    return max(attempts or 1, 1)


def _evidence(facts: JobFacts) -> _Evidence:
    if _is_blocked(facts):
        # A blocked job waits to start: its statusReason says why. The container and attempts of
        # a retried job are history (a host terminated under attempt 1 blocks nothing).
        return _Evidence(
            container_reason=None,
            attempt_status_reason=None,
            job_status_reason=facts.status_reason,
            exit_code=None,
            instance_id=None,
            attempt_number=len(facts.attempts) or None,
            attempts_allowed=_attempts_allowed(facts),
        )
    latest = facts.attempts[-1] if facts.attempts else AttemptFacts()
    # A job queued again after an attempt: its statusReason says why it waits now (e.g. for
    # capacity), not why the attempt ended.
    requeued = (facts.status or "").upper() in _WAITING_STATUSES and bool(facts.attempts)
    return _Evidence(
        container_reason=latest.container_reason or facts.container_reason,
        attempt_status_reason=latest.status_reason,
        job_status_reason=None if requeued else facts.status_reason,
        exit_code=latest.exit_code if latest.exit_code is not None else facts.exit_code,
        instance_id=latest.instance_id,
        attempt_number=len(facts.attempts) or None,
        attempts_allowed=_attempts_allowed(facts),
    )


def _texts(facts: JobFacts, evidence: _Evidence) -> Iterator[tuple[EvidenceField, str]]:
    """(field, normalised text) of the evidence present, most specific first."""
    status_field = (
        EvidenceField.SERVICE_STATUS_REASON if facts.is_service_job else EvidenceField.STATUS_REASON
    )
    for field, raw in (
        (EvidenceField.CONTAINER_REASON, evidence.container_reason),
        (status_field, evidence.attempt_status_reason),
        (status_field, evidence.job_status_reason),
    ):
        text = _normalise(raw)
        if text:
            yield field, text


def _decide(facts: JobFacts, evidence: _Evidence) -> _Match | None:
    """The evidence that decides the category; None leaves it to the exit code."""
    matches = [found for field, text in _texts(facts, evidence) if (found := _match(text, field))]
    first = matches[0] if matches else None
    never_ran = not facts.attempts
    cancelled = facts.is_cancelled or facts.is_terminated
    if not cancelled and (first is None or first.category is not FailureCategory.CANCELLED):
        if first is None and never_ran and facts.dependency_job_id:
            return _Match(FailureCategory.DEPENDENCY_FAILED, _normalise(facts.status_reason))
        return first
    # A cancel: what the user must fix outranks it (the queue's time limit, a failed
    # dependency, or Batch's own timeout).
    for candidate in matches:
        if candidate.time_limit or candidate.category in (
            FailureCategory.DEPENDENCY_FAILED,
            FailureCategory.TIMEOUT,
        ):
            return candidate
    if never_ran and facts.dependency_job_id:
        return _Match(FailureCategory.DEPENDENCY_FAILED, _normalise(facts.status_reason))
    # The reason given to CancelJob/TerminateJob lands in the job's statusReason.
    reason = _normalise(evidence.job_status_reason) or _normalise(evidence.attempt_status_reason)
    return _Match(FailureCategory.CANCELLED, reason)


@dataclass(frozen=True, slots=True)
class _Assessment:
    category: FailureCategory
    match: _Match | None
    evidence: _Evidence


#: Reasons that only say "the container exited": the exit code tells why.
_GENERIC_REASON = _Pattern(
    r"^(?:Essential container in (?:task|pod) exited|Error|Completed)$", re.IGNORECASE
)


def _unexplained(facts: JobFacts, evidence: _Evidence) -> bool:
    """A reason no pattern knows, other than a generic one: the exit code alone must not decide."""
    return any(not _GENERIC_REASON.match(text) for _, text in _texts(facts, evidence))


def _assess(facts: JobFacts) -> _Assessment:
    evidence = _evidence(facts)
    match = _decide(facts, evidence)
    if match is not None:
        category = match.category
    elif evidence.exit_code not in (None, 0) and not _unexplained(facts, evidence):
        category = FailureCategory.APPLICATION_ERROR
    else:
        category = FailureCategory.UNKNOWN
    return _Assessment(category, match, evidence)


def _is_blocked(facts: JobFacts) -> bool:
    return _is_blocked_event(facts.event_type)


def _is_blocked_event(event_type: str | None) -> bool:
    return (event_type or "").upper().endswith("QUEUE_BLOCKED")


# --- will Batch retry? ------------------------------------------------------------------------


def _glob_matches(pattern: str, value: str | None) -> bool:
    """evaluateOnExit matching: case-insensitive, only a trailing `*` is a wildcard."""
    pattern, value = pattern.lower(), (value or "").lower()
    if pattern.endswith("*"):
        return value.startswith(pattern[:-1])
    return value == pattern


def _rule_text(rule: ExitRule, service_job: bool) -> str:
    conditions = [("onStatusReason", rule.on_status_reason)]
    if not service_job:
        conditions += [("onReason", rule.on_reason), ("onExitCode", rule.on_exit_code)]
    return ", ".join(f"{name} {value}" for name, value in conditions if value is not None)


def _matching_rule(facts: JobFacts, evidence: _Evidence) -> ExitRule | None:
    """The first evaluateOnExit rule whose every given condition matches the latest attempt."""
    rules = facts.retry_strategy.evaluate_on_exit if facts.retry_strategy else ()
    exit_code = "" if evidence.exit_code is None else str(evidence.exit_code)
    for rule in rules:
        if (rule.action or "").upper() not in ("RETRY", "EXIT"):
            continue
        if facts.is_service_job:
            # Service jobs support only onStatusReason, against the SageMaker-prefixed text.
            checks = [(rule.on_status_reason, evidence.status_reason)]
        else:
            checks = [
                (rule.on_status_reason, evidence.status_reason),
                (rule.on_reason, evidence.container_reason),
                (rule.on_exit_code, exit_code),
            ]
        given = [(pattern, value) for pattern, value in checks if pattern is not None]
        if facts.is_service_job and not given:
            continue
        if all(_glob_matches(pattern, value) for pattern, value in given):
            return rule
    return None


def _rule_outcome(rule: ExitRule, service_job: bool) -> tuple[bool, str]:
    action = rule.action.upper()
    return action == "RETRY", f"exit rule `{_rule_text(rule, service_job)}` matched ({action})"


def _retry_outlook(facts: JobFacts, assessment: _Assessment) -> tuple[bool, str]:
    if _is_blocked(facts):
        return False, "the job has not started; it is blocked in the queue"
    evidence, category = assessment.evidence, assessment.category
    used, allowed = len(facts.attempts), evidence.attempts_allowed
    if assessment.match is not None and assessment.match.time_limit:
        return False, "the job queue's jobStateTimeLimitActions ended the job"
    if category is FailureCategory.DEPENDENCY_FAILED:
        return False, "a job it depends on failed, so it never ran"
    if category is FailureCategory.TIMEOUT:
        return False, "timeouts are never retried"
    if facts.is_cancelled or facts.is_terminated or category is FailureCategory.CANCELLED:
        return False, "cancelled jobs are never retried"
    rule = _matching_rule(facts, evidence)
    if (facts.status or "").upper() == "FAILED":
        if rule is not None and rule.action.upper() == "EXIT":
            return _rule_outcome(rule, facts.is_service_job)
        if used >= allowed:
            return False, f"attempts exhausted {used}/{allowed}"
        if used == 0:
            return False, "the job failed before an attempt was recorded"
        return False, f"the job is FAILED after attempt {used}/{allowed}"
    if facts.is_service_job and category is FailureCategory.CAPACITY:
        return True, "Batch retries SageMaker capacity errors without spending an attempt"
    if used >= allowed:
        return False, f"attempts exhausted {used}/{allowed}"
    if rule is not None:
        return _rule_outcome(rule, facts.is_service_job)
    label = f" ({evidence.attempt_label})" if evidence.attempt_label else ""
    return True, f"no evaluateOnExit rule matched{label}"


def will_batch_retry(facts: JobFacts) -> tuple[bool, str]:
    """Whether Batch will start another attempt after the latest one, and why, in words."""
    return _retry_outlook(facts, _assess(facts))


# --- retryable --------------------------------------------------------------------------------


def _retryable(category: FailureCategory, text: str) -> bool:
    """Would a retry plausibly help? The taxonomy's "retry helps?" column."""
    if category is FailureCategory.IMAGE_PULL:
        return not _PULL_PERMANENT.search(text) and bool(_PULL_TRANSIENT.search(text))
    if category is FailureCategory.RESOURCE_INITIALIZATION:
        return bool(_TIMEOUT_WORDS.search(text))
    return category in (
        FailureCategory.HOST_TERMINATED,
        FailureCategory.INFRASTRUCTURE,
        FailureCategory.CAPACITY,
    )


# --- words for people -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Words:
    core: str  # the summary without the retry framing
    next_step: str


def _on(attempt: str | None) -> str:
    return f" on {attempt}" if attempt else ""


def _strip_error_name(text: str) -> str:
    text = re.sub(r"^\w+(?:Error|Exception)\s*:\s*", "", text)
    return re.sub(r"^Error response from daemon\s*:\s*", "", text, flags=re.IGNORECASE)


def _image_from(text: str, facts: JobFacts) -> str | None:
    for pattern in _IMAGE_IN_REASON:
        found = pattern.search(text)
        if found:
            return found.group(1).rstrip(".:")
    return _one_line(facts.image) or None


def _image_pull_words(text: str, facts: JobFacts, attempt: str | None) -> _Words:
    lowered = text.lower()
    # Batch on EKS has no execution role: the kubelet pulls with the node's IAM role.
    puller = "the node IAM role" if _EKS_PULL.match(text) else "the execution role"
    if re.search(r"not found|manifest unknown|repository does not exist", lowered):
        problem, step = (
            "not found",
            f"Check the image name and tag exist and {puller} can pull from ECR",
        )
    elif _PULL_PERMANENT.search(text):
        problem = "access denied"
        step = (
            f"Check {puller} (or registry credentials) can pull the image and the "
            "repository policy allows it"
        )
    elif re.search(r"toomanyrequests|too many requests|rate limit", lowered):
        problem = "rate limited (toomanyrequests)"
        step = (
            "Authenticate to the registry or mirror the image into ECR (pull-through cache), "
            "then retry"
        )
    elif "no space left on device" in lowered:
        problem = "no space left on device"
        step = "Give the instances more Docker storage or clean up images, then retry"
    elif _TIMEOUT_WORDS.search(text):
        problem = "timed out"
        step = "Check the network path to the registry (NAT route or ECR VPC endpoints), then retry"
    else:
        problem = "failed"
        step = f"Check the image name and tag exist and {puller} can pull from ECR"
    image = _image_from(text, facts)
    what = f"{_clip(image, 110)} {problem}" if image else problem
    return _Words(f"Image pull failed: {what}{_on(attempt)}", step)


def _host_words(text: str, facts: JobFacts, evidence: _Evidence, attempt: str | None) -> _Words:
    during = f" during {attempt}" if attempt else ""
    found = _INSTANCE_ID.search(text)
    instance = found.group(0) if found else evidence.instance_id
    if text.lower().startswith("your spot task was interrupted"):
        what, pattern = "the Spot task was interrupted", "Your Spot Task was interrupted*"
    elif text.lower().startswith("container instance deregistration"):
        what, pattern = "the container instance was deregistered", "Container instance*"
    else:
        verb = "stopped" if re.search(r"\bstopped\b", text, re.IGNORECASE) else "terminated"
        what = f"instance {_clip(instance, 40)} was {verb}" if instance else f"the host was {verb}"
        pattern = "Host EC2*"
    # Batch retries when no evaluateOnExit rule matches: a RETRY rule helps only past an EXIT rule
    # that caught the termination; otherwise the job already retries it, as often as attempts say.
    rule = _matching_rule(facts, evidence)
    allowed = evidence.attempts_allowed
    if rule is not None and rule.action.upper() == "EXIT":
        step = (
            f"Put a retryStrategy.evaluateOnExit rule {{onStatusReason: '{pattern}', action: "
            "RETRY} before the EXIT rule that caught it, or run on On-Demand capacity"
        )
    elif allowed > 1:
        step = f"Raise retryStrategy.attempts (now {allowed}), or run on On-Demand capacity"
    else:
        step = (
            f"Set retryStrategy.attempts above 1 with a rule {{onStatusReason: '{pattern}', "
            "action: RETRY} (then one EXIT for the rest, so only this retries), or run on "
            "On-Demand capacity"
        )
    return _Words(f"Spot/host terminated: {what}{during}", step)


class _Fetched(NamedTuple):
    """What a ResourceInitializationError was fetching, and what the task needs to fetch it."""

    what: str  # as the summary names it
    endpoint: str  # the VPC endpoint(s) a private subnet needs to reach it
    permissions: str  # what the execution role needs on it


#: By a word in the error's text.
_INITIALIZING: tuple[tuple[_Pattern, _Fetched], ...] = (
    (
        _Pattern(r"\basm\b|secrets ?manager", re.I),
        _Fetched(
            "the Secrets Manager secret",
            "Secrets Manager",
            "secretsmanager:GetSecretValue, kms:Decrypt as needed",
        ),
    ),
    (
        _Pattern(r"\bssm\b|parameter store", re.I),
        _Fetched(
            "the SSM parameter", "Systems Manager (ssm)", "ssm:GetParameters, kms:Decrypt as needed"
        ),
    ),
    (
        _Pattern(r"registry auth|\becr\b", re.I),
        _Fetched(
            "the ECR registry auth",
            "ECR (api, dkr) and S3",
            "ecr:GetAuthorizationToken, ecr:BatchGetImage",
        ),
    ),
    (
        _Pattern(r"logger|log stream|log group", re.I),
        _Fetched(
            "the CloudWatch Logs stream",
            "CloudWatch Logs",
            "logs:CreateLogStream, logs:PutLogEvents",
        ),
    ),
)
#: When the text names none of them.
_ANY_FETCHED = _Fetched(
    "",
    "Secrets Manager / Systems Manager / ECR",
    "secretsmanager:GetSecretValue, ssm:GetParameters, kms:Decrypt, ecr:GetAuthorizationToken, "
    "logs:CreateLogStream as needed",
)


def _resource_initialization_words(text: str, shown: str, attempt: str | None) -> _Words:
    # The last subsystem named is the one that failed ("registry auth: … from asm: …").
    named = [
        (found.start(), fetched)
        for pattern, fetched in _INITIALIZING
        for found in pattern.finditer(text)
    ]
    fetched = max(named, key=lambda found: found[0])[1] if named else _ANY_FETCHED
    what = fetched.what
    network_step = (
        f"Add VPC endpoints (or a NAT route) for {fetched.endpoint} and check the execution role "
        f"has {fetched.permissions}"
    )
    if _TIMEOUT_WORDS.search(text):
        problem = "timed out"
        step = network_step
    elif re.search(r"access ?denied|not authorized|forbidden", text, re.IGNORECASE):
        problem = "access denied"
        step = f"Let the execution role use it ({fetched.permissions})"
    elif re.search(r"does not exist|not found", text, re.IGNORECASE):
        problem = "not found"
        step = (
            "Create what the job definition refers to (secret, parameter or log group) or fix "
            "its name"
        )
    else:
        problem = "failed"
        step = network_step
    if what:
        return _Words(f"Resource initialization failed: {what} — {problem}{_on(attempt)}", step)
    return _Words(
        f"Resource initialization failed ({problem}): {_clip(shown, 100)}{_on(attempt)}", step
    )


def _log_driver_words(text: str, attempt: str | None) -> _Words:
    """Docker's log driver could not start: the container never ran, whatever its command."""
    if not _CLOUDWATCH_LOGS.search(text):
        # Another driver (syslog, splunk, fluentd …): its destination, not CloudWatch.
        return _Words(
            f"Container failed to start: its log driver could not start{_on(attempt)}",
            "Fix the job definition's logConfiguration (driver and options) or make its "
            "destination reachable from the instances",
        )
    # On EC2 the Docker daemon writes the logs with the container instance's credentials.
    role = "the container instance role (the execution role on Fargate)"
    if re.search(r"does not exist|not found", text, re.IGNORECASE):
        problem = "log group not found"
        step = (
            "Create the log group the job definition's logConfiguration names (awslogs-group), "
            f"or set awslogs-create-group and let {role} use logs:CreateLogGroup"
        )
    elif re.search(r"access ?denied|not authorized|forbidden", text, re.IGNORECASE):
        problem = "access denied"
        step = f"Let {role} use logs:CreateLogStream and logs:PutLogEvents on the log group"
    else:
        problem = "timed out" if _TIMEOUT_WORDS.search(text) else "failed"
        step = (
            "Give the instances a route to CloudWatch Logs (NAT or a logs VPC endpoint) and "
            f"check {role} has logs:CreateLogStream and logs:PutLogEvents"
        )
    return _Words(
        f"Container failed to start: the CloudWatch Logs driver — {problem}{_on(attempt)}", step
    )


def _misconfiguration_words(text: str, facts: JobFacts, attempt: str | None) -> _Words:
    unassumed = _UNASSUMED_ROLE.match(text)
    if unassumed:
        return _Words(
            f"Misconfiguration: ECS could not assume the role {_clip(unassumed.group(1), 100)}"
            f"{_on(attempt)}",
            "Let ecs-tasks.amazonaws.com assume that role (its trust policy), check it exists, "
            "and let whoever submits the job pass it (iam:PassRole)",
        )
    found = _MISCONFIGURATION_CODE.match(text)
    code = (found.group(1) or found.group(2)).upper() if found else ""
    if code in _MISCONFIGURATIONS:
        meaning, step = _MISCONFIGURATIONS[code]
        return _Words(f"Misconfiguration ({code}): {meaning}{_on(attempt)}", step)
    if facts.is_service_job:
        return _Words(
            f"Misconfiguration: SageMaker rejected the training job{_on(attempt)}: "
            f"{_clip(text, 120)}",
            "Fix the training job request: the SageMaker error names the bad parameter, "
            "S3 location or permission",
        )
    return _Words(
        f"Misconfiguration{_on(attempt)}: {_clip(text, 150)}",
        "Fix the job queue, compute environment or job definition setting the reason names",
    )


def _dependency_words(facts: JobFacts) -> _Words:
    job_id = _one_line(facts.dependency_job_id)
    category = f" ({facts.dependency_category})" if facts.dependency_category else ""
    if job_id:
        return _Words(
            f"Dependency failed: job {_clip(job_id, 80)}{category} failed, so this job never ran",
            f"Look at dependency job {job_id}{category}",
        )
    if facts.depends_on:
        listed = ", ".join(facts.depends_on[:5]) + (", …" if len(facts.depends_on) > 5 else "")
        return _Words(
            "Dependency failed: a job it depends on failed, so this job never ran",
            f"Look at the dependency jobs ({listed}) to find the one that failed",
        )
    return _Words(
        "Dependency failed: a job it depends on failed, so this job never ran",
        "Look at the jobs in this job's dependsOn to find the one that failed",
    )


def _exit_words(exit_code: int | None, attempt: str | None) -> _Words:
    if exit_code is None or exit_code == 0:
        return _Words(
            f"Failed with no recognised reason{_on(attempt)}",
            "Read the job's log and its status reason; no known failure pattern matched",
        )
    signal = signal_name(exit_code)
    core = f"Exited with code {exit_code}" + (f" ({signal})" if signal else "") + _on(attempt)
    if signal == "SIGKILL":
        step = (
            "Read the job's log: exit 137 (SIGKILL) without an out-of-memory reason means the "
            "process was killed, often for memory, else fix the code or its input"
        )
    elif signal == "SIGSEGV":
        step = (
            "The process crashed (SIGSEGV): read the job's log and fix the code or its native "
            "libraries"
        )
    else:
        step = (
            f"Read the job's log for the error behind exit code {exit_code} and fix the code "
            "or its input"
        )
    return _Words(core, step)


def _words(facts: JobFacts, assessment: _Assessment, attempt: str | None) -> _Words:
    category, found, evidence = assessment.category, assessment.match, assessment.evidence
    text = found.text if found else ""
    shown = _clip(_strip_error_name(text), 130)
    match category:
        case FailureCategory.OUT_OF_MEMORY:
            if facts.memory_mib and facts.memory_mib > 0:
                return _Words(
                    f"Out of memory: the container used more than its {facts.memory_mib} MiB"
                    f"{_on(attempt)}",
                    f"Raise memory in the job definition (now {facts.memory_mib} MiB) "
                    "or fix the leak",
                )
            return _Words(
                f"Out of memory: the container was killed for using too much memory{_on(attempt)}",
                "Raise memory in the job definition or fix the leak",
            )
        case FailureCategory.HOST_TERMINATED:
            return _host_words(text, facts, evidence, attempt)
        case FailureCategory.TIMEOUT:
            seconds = (
                facts.timeout_seconds
                if facts.timeout_seconds and facts.timeout_seconds > 0
                else None
            )
            limit = f"the {seconds} s job timeout" if seconds else "the job timeout"
            now = f" (now {seconds} s)" if seconds else ""
            return _Words(
                f"Timed out: {attempt or 'the attempt'} ran longer than {limit}",
                f"Raise the job timeout{now} or make the job faster",
            )
        case FailureCategory.IMAGE_PULL:
            return _image_pull_words(text, facts, attempt)
        case FailureCategory.CONTAINER_START:
            missing = _EXEC_NOT_FOUND.search(text)
            if missing:
                return _Words(
                    f'Container failed to start: "{_clip(missing.group(1), 60)}" not found in '
                    f"$PATH{_on(attempt)}",
                    "Fix the command/entrypoint in the job definition or install the executable "
                    "in the image",
                )
            if _LOG_DRIVER.search(text):
                return _log_driver_words(text, attempt)
            if text.lower().startswith("task failed to start"):
                shown = "the task failed to start (no container reason recorded)"
            return _Words(
                f"Container failed to start: {shown}{_on(attempt)}",
                "Check the command, entrypoint, user and mounts in the job definition against "
                "the image",
            )
        case FailureCategory.RESOURCE_INITIALIZATION:
            return _resource_initialization_words(text, shown, attempt)
        case FailureCategory.INFRASTRUCTURE:
            step = (
                "Retry the job; if it recurs, check the container instance's Docker/ECS agent "
                "health and disk"
            )
            if facts.is_service_job:
                step = "Retry the job: SageMaker reported an internal error"
            return _Words(f"Infrastructure error: {_clip(text, 130)}{_on(attempt)}", step)
        case FailureCategory.APPLICATION_ERROR:
            if found is not None:
                return _Words(
                    f"Training algorithm error: {shown}{_on(attempt)}",
                    "Read the training job's log and fix the training script or its input",
                )
            return _exit_words(evidence.exit_code, attempt)
        case FailureCategory.CANCELLED:
            verb = "Terminated" if facts.is_terminated and not facts.is_cancelled else "Cancelled"
            return _Words(
                f"{verb}{_on(attempt)}: {_clip(text, 150)}"
                if text
                else f"{verb} by a CancelJob/TerminateJob call{_on(attempt)}",
                "Nothing to fix if it was meant; otherwise find who stopped it "
                "(CloudTrail CancelJob/TerminateJob) and resubmit",
            )
        case FailureCategory.DEPENDENCY_FAILED:
            return _dependency_words(facts)
        case FailureCategory.CAPACITY:
            if facts.is_service_job and re.search(r"ResourceLimitExceeded", text, re.IGNORECASE):
                step = (
                    "Request a SageMaker service-quota increase for the instance type or use "
                    "another one"
                )
            elif facts.is_service_job:
                step = "Use another ML instance type or wait: SageMaker has no capacity for it now"
            else:
                step = "Allow more instance types / AZs in the compute environment or wait"
            return _Words(f"Not enough capacity: {_clip(text, 150)}{_on(attempt)}", step)
        case FailureCategory.MISCONFIGURATION:
            return _misconfiguration_words(text, facts, attempt)
        case _:
            seen = next((text for _, text in _texts(facts, evidence)), "")
            if _is_blocked(facts):
                # It never started: there is no log to read (e.g. "UNDETERMINED - Batch job is
                # blocked, root cause is undetermined.").
                where = (
                    "the service environment of its queue (state, capacity limits)"
                    if facts.is_service_job
                    else "the compute environment(s) of its queue (state, instance types, "
                    "subnets, service role) and their scaling activity"
                )
                return _Words(
                    f"Unrecognised reason: {_clip(seen, 130)}" if seen else "No reason recorded",
                    f"The job has not started, so it has no log: check {where}, or cancel the "
                    "job to unblock the queue",
                )
            if not seen:
                return _exit_words(evidence.exit_code, attempt)
            code = "" if evidence.exit_code is None else f" ({_exit_code_text(evidence.exit_code)})"
            return _Words(
                f"Unrecognised failure: {_clip(seen, 130)}{code}{_on(attempt)}",
                "Read the job's log and status reason; no known failure pattern matched",
            )


def _evidence_text(facts: JobFacts, assessment: _Assessment) -> str:
    evidence, parts = assessment.evidence, []
    for name, value in (
        ("container reason", evidence.container_reason),
        ("attempt status reason", evidence.attempt_status_reason),
        ("status reason", evidence.job_status_reason),
    ):
        text = _one_line(value)
        if text and not (
            name == "status reason" and text == _one_line(evidence.attempt_status_reason)
        ):
            parts.append(f"{name}: {_clip(text, _DETAIL_EVIDENCE_LIMIT)}")
    if evidence.exit_code is not None:
        parts.append(_exit_code_text(evidence.exit_code))
    if assessment.match is not None and assessment.match.time_limit:
        parts.append("cancelled by the job queue's jobStateTimeLimitActions")
    if assessment.category is FailureCategory.DEPENDENCY_FAILED and facts.dependency_job_id:
        category = f" ({facts.dependency_category})" if facts.dependency_category else ""
        parts.append(f"dependency job {_one_line(facts.dependency_job_id)}{category} failed")
    if facts.is_cancelled:
        parts.append("isCancelled")
    if facts.is_terminated:
        parts.append("isTerminated")
    return "; ".join(parts) if parts else "no reason or exit code recorded"


# --- classify ---------------------------------------------------------------------------------


def is_failure(event_type: str | None, status: str | None, *, attempted: bool) -> bool:
    """Does `classify` find a failure in a job with this event type and status (`attempted`: it
    has finished an attempt)? Answered without the rest of the facts, which a caller can then
    leave ungathered for the many events that report none.

    A failure is: a FAILED job; a job blocked in its queue; or a job back in RUNNABLE (or
    SUBMITTED/PENDING) after a finished attempt, i.e. an attempt failed and Batch is retrying.
    """
    status = (status or "").upper()
    waiting = status in _WAITING_STATUSES and attempted
    return _is_blocked_event(event_type) or waiting or status == "FAILED"


def classify(facts: JobFacts) -> Failure | None:
    """The JobRecord `failure` for these facts, or None when nothing is wrong (see `is_failure`)."""
    if not is_failure(facts.event_type, facts.status, attempted=bool(facts.attempts)):
        return None
    status = (facts.status or "").upper()
    blocked = _is_blocked(facts)
    retrying = not blocked and status in _WAITING_STATUSES and bool(facts.attempts)

    assessment = _assess(facts)
    if retrying:
        predicted, why = _retry_outlook(facts, assessment)
        # The job is RUNNABLE again: Batch has already decided to retry.
        will_retry = True
        if not predicted:
            why = f"the job is back in {status} after {assessment.evidence.attempt_label}"
    else:
        will_retry, why = _retry_outlook(facts, assessment)

    attempt = assessment.evidence.attempt_label
    words = _words(facts, assessment, attempt if status == "FAILED" and not blocked else None)
    core = words.core
    if assessment.match is not None and assessment.match.time_limit:
        core = f"{core} — the job queue's JobStateTimeLimit action ended the job"
    if retrying:
        summary = _one_line(f"Job {attempt} failed — {core}").rstrip(".")
        summary = _clip(summary, _SUMMARY_LIMIT - 20) + "; Batch is retrying"
    elif blocked:
        summary = _clip(_one_line(f"Queue blocked — {core}"), _SUMMARY_LIMIT)
    else:
        summary = _clip(_one_line(core), _SUMMARY_LIMIT)
    outlook = "Batch will retry" if will_retry else "Batch will not retry"
    text = assessment.match.text if assessment.match else ""
    return Failure(
        category=assessment.category,
        summary=summary,
        detail=f"{_sentence(_evidence_text(facts, assessment))} {outlook}: {why}",
        retryable=_retryable(assessment.category, text),
        batch_will_retry=will_retry,
        next_step=_one_line(words.next_step),
    )
