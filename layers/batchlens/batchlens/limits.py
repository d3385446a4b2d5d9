"""Size limits: every record fits a DynamoDB item (400 KB) and every alert an SNS message (256 KiB).

Pure code. A record too large for where it goes is cut by one rule, applied in steps until it fits
(each step keeps the cuts of the steps before it):

1. free text (status reasons, attempt reasons, failure texts, log lines) cut to 8,192 characters a
   value; attempts beyond the first and the latest 9 dropped (Batch allows 10 attempts, so a real
   job loses none);
2. free text cut to 2,048 characters; the first and the latest 4 attempts;
3. free text cut to 512 characters; the first and the latest attempt only; container detail dropped
   (each attempt's log group, stream, log link and task ARN, the log excerpt, unknown keys of the
   array status summary);
4. every other text (names, ARNs, links) cut to 128 characters, free text too.

A cut record says so with `truncated: true`. `attemptsUsed` keeps the real count and each kept
attempt its real `number`, so a reader can tell what is missing; the job id, event id and times are
never cut. Most records are far below either limit: a cheap upper bound on the JSON size skips the
exact measure for them.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol, TypeVar

from batchlens.records import JobRecord

#: DynamoDB's item limit (attribute names and values, UTF-8), and SNS's message limit (the message,
#: its subject and every message attribute's name, type and value).
DYNAMODB_ITEM_MAX_BYTES = 400 * 1024
SNS_MESSAGE_MAX_BYTES = 262_144
#: Room in the history's latest item for everything but the record JSON: keys, index keys (whose
#: names are at most 128 characters, Batch's own limit), version, status, category, TTL.
ITEM_ROOM_BYTES = 8 * 1024
RECORD_MAX_BYTES = DYNAMODB_ITEM_MAX_BYTES - ITEM_ROOM_BYTES

#: Batch's limit for job, queue and definition names; step 4 cuts every other text to it.
NAME_MAX = 128
#: Statuses an array summary may count (step 3 drops any other key).
_SUMMARY_KEYS = frozenset(
    {"SUBMITTED", "PENDING", "RUNNABLE", "SCHEDULED", "STARTING", "RUNNING", "SUCCEEDED", "FAILED"}
)
#: Never cut: they identify the job and the event, or are short by construction.
_KEEP = frozenset({"jobId", "eventId", "eventTime", "createdAt", "startedAt", "stoppedAt"})
_CONTAINER_DETAIL = ("logGroup", "logStreamName", "logUrl", "resourceArn")


@dataclass(frozen=True, slots=True)
class Step:
    """One step of the rule."""

    text: int  # longest free-text value kept
    latest_attempts: int  # attempts kept besides the first
    container_detail: bool  # keep each attempt's log/task detail and the log excerpt
    cut_names: bool  # cut every other text to NAME_MAX too


STEPS: tuple[Step, ...] = (
    Step(text=8_192, latest_attempts=9, container_detail=True, cut_names=False),
    Step(text=2_048, latest_attempts=4, container_detail=True, cut_names=False),
    Step(text=512, latest_attempts=1, container_detail=False, cut_names=False),
    Step(text=NAME_MAX, latest_attempts=1, container_detail=False, cut_names=True),
)


def clip(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, marked with an ellipsis when cut."""
    if len(text) <= limit:
        return text
    return text[: max(limit - 1, 0)] + "…"


def record_bytes(record: JobRecord) -> int:
    """The size of the record's JSON as the history stores it (`json.dumps`, ASCII)."""
    return len(json.dumps(record.to_json_dict()).encode())


def _upper_bound(record: JobRecord) -> int:
    """A cheap bound on `record_bytes`: fixed fields, plus 12 bytes a character of free text
    (json.dumps writes a non-BMP character as two `\\uXXXX` escapes)."""
    texts = [record.status_reason, record.job_name, record.job_arn, record.service_job_type]
    texts += [record.job_queue.name, record.job_queue.arn, record.parent_job_id]
    texts += [record.links.console, record.links.logs, record.links.training_job]
    if record.job_definition is not None:
        texts += [record.job_definition.name, record.job_definition.arn]
    if record.failure is not None:
        texts += [record.failure.summary, record.failure.detail, record.failure.next_step]
    for attempt in record.attempts:
        texts += [attempt.reason, attempt.status_reason, attempt.log_group]
        texts += [attempt.log_stream_name, attempt.log_url, attempt.resource_arn]
    texts += record.log_excerpt or []
    summary = record.array_status_summary or {}
    # `map` and `filter` rather than generator expressions: this runs for every record.
    chars = sum(map(len, filter(None, texts))) + sum(map(len, summary))
    chars += len(record.event_id) + len(record.job_id) + len(record.account) + len(record.status)
    chars += len(record.region)
    # Integers from the input can be long too (JSON allows 4,300 digits).
    numbers = [record.array_size, record.array_index, record.attempts_allowed, record.attempts_used]
    numbers += [attempt.exit_code for attempt in record.attempts]
    numbers += list(summary.values())
    digits = sum(_digits(number) for number in numbers if number is not None)
    fixed = 2_048 + 512 * len(record.attempts) + 8 * (len(summary) + len(record.log_excerpt or []))
    return fixed + digits + 12 * chars


def _digits(number: int) -> int:
    return number.bit_length() // 3 + 2  # at least the decimal digits and a sign


def _cut_attempts(attempts: list[dict[str, Any]], step: Step) -> list[dict[str, Any]]:
    if len(attempts) <= 1 + step.latest_attempts:
        kept = attempts
    else:
        kept = [attempts[0], *attempts[-step.latest_attempts :]]
    result = []
    for attempt in kept:
        cut = dict(attempt)
        for key in ("reason", "statusReason"):
            if isinstance(cut.get(key), str):
                cut[key] = clip(cut[key], step.text)
        if not step.container_detail:
            cut.update(dict.fromkeys(_CONTAINER_DETAIL))
        result.append(cut)
    return result


def _cut_names(value: Any, key: str | None = None) -> Any:
    if key in _KEEP:
        return value
    if isinstance(value, str):
        return clip(value, NAME_MAX)
    if isinstance(value, dict):
        return {k: _cut_names(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_cut_names(item) for item in value]
    return value


def cut(record: JobRecord, step: Step) -> JobRecord:
    """The record cut by one step of the rule (and marked `truncated`)."""
    data = record.to_json_dict()
    data["attempts"] = _cut_attempts(data["attempts"], step)
    if isinstance(data.get("statusReason"), str):
        data["statusReason"] = clip(data["statusReason"], step.text)
    failure = data.get("failure")
    if isinstance(failure, dict):
        for key in ("summary", "detail", "nextStep"):
            failure[key] = clip(failure[key], step.text)
    excerpt = data.get("logExcerpt")
    if excerpt:
        data["logExcerpt"] = [clip(line, step.text) for line in excerpt]
    if not step.container_detail:
        data["logExcerpt"] = None
        summary = data.get("arrayStatusSummary")
        if isinstance(summary, dict):
            data["arrayStatusSummary"] = {k: v for k, v in summary.items() if k in _SUMMARY_KEYS}
    if step.cut_names:
        data = _cut_names(data)
    data["truncated"] = True
    return JobRecord.model_validate(data)


def fit_record(
    record: JobRecord, max_bytes: int, size: Callable[[JobRecord], int] = record_bytes
) -> JobRecord:
    """The record itself when its JSON fits `max_bytes`, else the first step of the rule that fits.

    Returns the last step's record when even that does not fit (only a job id or event id of
    absurd length can do that; the parser refuses those).
    """
    if size is record_bytes and _upper_bound(record) <= max_bytes:
        return record
    if size(record) <= max_bytes:
        return record
    candidate = record
    for step in STEPS:
        candidate = cut(record, step)
        if size(candidate) <= max_bytes:
            return candidate
    return candidate


def fit_for_store(record: JobRecord) -> JobRecord:
    """The record as the history may store it: its item stays under DynamoDB's 400 KB."""
    return fit_record(record, RECORD_MAX_BYTES)


# --- SNS -------------------------------------------------------------------------------------


class AlertLike(Protocol):
    @property
    def message(self) -> str: ...
    @property
    def subject(self) -> str: ...
    @property
    def attributes(self) -> Mapping[str, str]: ...


A = TypeVar("A", bound=AlertLike)


def sns_message_bytes(message: str, subject: str, attributes: Mapping[str, str]) -> int:
    """What SNS counts against its 256 KiB: the message, the subject and every attribute's name,
    data type (`String`) and value."""
    size = len(message.encode()) + len(subject.encode())
    for name, value in attributes.items():
        size += len(name.encode()) + len(b"String") + len(value.encode())
    return size


def _machine_body_is(alert: AlertLike, record: JobRecord) -> bool:
    """Does the alert carry the record whole (not shortened by the alert builder)?"""
    try:
        body = json.loads(alert.message).get("default")
    except (ValueError, AttributeError):
        return False
    return isinstance(body, str) and json.loads(body) == record.to_json_dict()


def fit_alert(record: JobRecord, build: Callable[[JobRecord], A]) -> A:
    """The alert for the record, cut by the rule until the whole SNS message fits 256 KiB.

    The alert builder shortens free text on its own as a last resort; a record this rule must cut
    is cut here instead, so the published record says `truncated: true`.
    """
    candidates = itertools.chain([record], (cut(record, step) for step in STEPS))  # lazy
    alert: A | None = None
    for candidate in candidates:
        alert = build(candidate)
        size = sns_message_bytes(alert.message, alert.subject, alert.attributes)
        # Alerts are few (failures): one parse each to tell a whole record from a shortened one.
        if size <= SNS_MESSAGE_MAX_BYTES and _machine_body_is(alert, candidate):
            return alert
    assert alert is not None
    return alert


# --- DynamoDB --------------------------------------------------------------------------------


def _number_bytes(text: str) -> int:
    # DynamoDB: about one byte per two significant digits, plus one.
    try:
        digits = Decimal(text).normalize().as_tuple().digits
    except InvalidOperation:
        return len(text)
    return (len(digits) + 1) // 2 + 1


def attribute_value_bytes(value: Mapping[str, Any]) -> int:
    """The size DynamoDB counts for one AttributeValue (low-level `{"S": …}` form)."""
    (kind, inner), *_ = value.items()
    if kind == "S":
        return len(str(inner).encode())
    if kind == "N":
        return _number_bytes(str(inner))
    if kind == "B":
        return len(inner)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(str(item).encode()) for item in inner)
    if kind == "NS":
        return sum(_number_bytes(str(item)) for item in inner)
    if kind == "BS":
        return sum(len(item) for item in inner)
    if kind == "L":
        return 3 + sum(1 + attribute_value_bytes(item) for item in inner)
    if kind == "M":
        return 3 + sum(
            1 + len(name.encode()) + attribute_value_bytes(item) for name, item in inner.items()
        )
    raise ValueError(f"unknown DynamoDB type {kind!r}")


def dynamodb_item_bytes(item: Mapping[str, Mapping[str, Any]]) -> int:
    """The size DynamoDB counts for an item: every attribute's name and value (UTF-8)."""
    return sum(len(name.encode()) + attribute_value_bytes(value) for name, value in item.items())


def fits_dynamodb(item: Mapping[str, Mapping[str, Any]]) -> bool:
    return dynamodb_item_bytes(item) <= DYNAMODB_ITEM_MAX_BYTES
