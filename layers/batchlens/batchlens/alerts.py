"""Alerts: which records alert, and the SNS message that serves every subscriber.

Pure code. One publish carries a body per protocol (`MessageStructure=json`): the JobRecord JSON for
machines (`default`, `sqs`, `lambda`), readable text for `email`, and the Amazon Q Developer
custom-notification JSON for `https` (chat channels). Message attributes let every subscription
filter without code.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from batchlens.failures import FailureCategory
from batchlens.records import JobKind, JobRecord
from batchlens.settings import Settings

SNS_MAX_BYTES = 262_144
SUBJECT_MAX = 99  # SNS: under 100 characters, ASCII, no line breaks

#: Kinds whose jobs alert one by one; array children and multi-node nodes alert via their parent.
_SILENT_KINDS = frozenset({JobKind.ARRAY_CHILD, JobKind.MULTINODE_NODE})

_STATUS_WORDS = {
    "FAILED": "failed",
    "SUCCEEDED": "succeeded",
    "RUNNABLE": "is waiting",
    "RUNNING": "is running",
    "STARTING": "is starting",
}


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert ready to publish: its dedupe key, subject, per-protocol message and attributes."""

    key: Mapping[str, Any]
    subject: str
    message: str
    attributes: Mapping[str, str]
    record: JobRecord


def alert_status(record: JobRecord) -> str:
    """The status an alert is about: the job status, or QUEUE_BLOCKED for a blocked queue."""
    return "QUEUE_BLOCKED" if record.event_type.is_queue_blocked else record.status


def is_retried_attempt(record: JobRecord) -> bool:
    return (
        not record.is_terminal
        and record.failure is not None
        and record.failure.batch_will_retry
        and not record.event_type.is_queue_blocked
    )


def should_alert(record: JobRecord, settings: Settings) -> bool:
    """Does this record's transition alert, under the stack's configuration?"""
    if record.job_kind in _SILENT_KINDS:
        return False
    if is_retried_attempt(record):
        return settings.alert_on_retried_attempts
    if (
        record.failure is not None
        and record.failure.category is FailureCategory.DEPENDENCY_FAILED
        and not settings.alert_on_dependency_failures
    ):
        return False
    return alert_status(record) in settings.alert_on


def alert_key(record: JobRecord) -> dict[str, Any]:
    """One alert per (job, status, attempt), however often and concurrently it is delivered."""
    return {
        "jobId": record.job_id,
        "status": alert_status(record),
        "attempt": len(record.attempts),
    }


def message_attributes(record: JobRecord) -> dict[str, str]:
    """SNS message attributes: what subscriptions filter on."""
    return {
        "alert": "true",
        "status": alert_status(record),
        "category": record.failure.category.value if record.failure else "NONE",
        "jobQueue": record.job_queue.name,
        "jobKind": record.job_kind.value,
        "eventType": record.event_type.value,
    }


# --- text --------------------------------------------------------------------------------


def _ascii_line(text: str) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    return text.encode("ascii", "replace").decode("ascii").replace("?", "_") if text else text


def subject(record: JobRecord) -> str:
    """Email subject: status, job name, category; ASCII, one line, under 100 characters."""
    status = alert_status(record)
    category = f" ({record.failure.category.value})" if record.failure else ""
    head = "[batchlens] "
    tail = f"{status}: "
    room = SUBJECT_MAX - len(head) - len(tail) - len(category)
    name = _ascii_line(record.job_name)
    if len(name) > room:
        name = name[: max(room - 3, 1)] + "..."
    return (head + tail + name + category)[:SUBJECT_MAX]


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "n/a"
    total = int(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m {secs:02d}s"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{seconds:.1f}s" if seconds < 10 else f"{secs}s"


def headline(record: JobRecord) -> str:
    status = alert_status(record)
    if status == "QUEUE_BLOCKED":
        return f"Job {record.job_name} is blocked in queue {record.job_queue.name}"
    words = _STATUS_WORDS.get(status, f"is {status}")
    return f"Job {record.job_name} {words} in queue {record.job_queue.name}"


def email_text(record: JobRecord) -> str:
    """The plain-text email: what happened, why, what to do, attempts, timings, links."""
    lines = [headline(record), ""]
    failure = record.failure
    if failure is not None:
        lines += [
            f"What happened: {failure.summary}",
            f"Category:     {failure.category.value}",
            f"Will Batch retry: {'yes' if failure.batch_will_retry else 'no'}",
            f"Next step:    {failure.next_step}",
            "",
            f"Detail: {failure.detail}",
            "",
        ]
    elif record.status_reason:
        lines += [f"Status reason: {record.status_reason}", ""]
    lines += [
        f"Job:        {record.job_name} ({record.job_id})",
        f"Queue:      {record.job_queue.name}",
    ]
    if record.job_definition is not None:
        revision = f":{record.job_definition.revision}" if record.job_definition.revision else ""
        lines.append(f"Definition: {record.job_definition.name}{revision}")
    if record.service_job_type:
        lines.append(f"Service:    {record.service_job_type}")
    lines += [
        f"Status:     {record.status}",
        f"Attempts:   {record.attempts_used}/{record.attempts_allowed}",
        f"Queue wait: {_duration(record.queued_seconds)}   Run time: "
        f"{_duration(record.run_seconds)}   Total: {_duration(record.total_seconds)}",
    ]
    if record.array_status_summary:
        counts = ", ".join(f"{k} {v}" for k, v in sorted(record.array_status_summary.items()) if v)
        lines.append(f"Children:   {counts} (of {record.array_size})")
    if record.attempts:
        lines += ["", "Attempts:"]
        for attempt in record.attempts:
            exit_code = "-" if attempt.exit_code is None else str(attempt.exit_code)
            reason = " ".join((attempt.reason or attempt.status_reason or "").split())
            lines.append(
                f"  #{attempt.number}  {_duration(attempt.duration_seconds):>10}  "
                f"exit {exit_code:>4}  {reason}"
            )
    lines += ["", "Links:", f"  Job:  {record.links.console}"]
    if record.links.logs:
        lines.append(f"  Logs: {record.links.logs}")
    if record.links.training_job:
        lines.append(f"  Training job: {record.links.training_job}")
    lines += [
        "",
        f"Event {record.event_id} at {record.event_time.isoformat()} ({record.account}, "
        f"{record.region}) - sent by batchlens",
    ]
    return "\n".join(lines)


def chatbot_body(record: JobRecord) -> dict[str, Any]:
    """Amazon Q Developer in chat applications: custom notification (version 1.0)."""
    failure = record.failure
    description_lines = [f"*Queue:* {record.job_queue.name}  *Status:* {record.status}"]
    if failure is not None:
        description_lines.insert(0, failure.summary)
    description_lines.append(
        f"*Attempts:* {record.attempts_used}/{record.attempts_allowed}  "
        f"*Queue wait:* {_duration(record.queued_seconds)}  "
        f"*Run time:* {_duration(record.run_seconds)}"
    )
    links = [f"<{record.links.console}|Job in the Batch console>"]
    if record.links.logs:
        links.append(f"<{record.links.logs}|Logs>")
    description_lines.append(" | ".join(links))
    keywords = [alert_status(record), record.job_queue.name, record.job_kind.value]
    if failure is not None:
        keywords.insert(1, failure.category.value)
    content: dict[str, Any] = {
        "textType": "client-markdown",
        "title": headline(record),
        "description": "\n".join(description_lines),
        "keywords": keywords,
    }
    if failure is not None:
        content["nextSteps"] = [failure.next_step]
    resources = [arn for arn in (record.job_arn, record.job_queue.arn) if arn]
    return {
        "version": "1.0",
        "source": "custom",
        "id": record.event_id,
        "content": content,
        "metadata": {
            "threadId": record.job_id,
            "summary": subject(record),
            "eventType": f"batchlens.{record.event_type.value}",
            "relatedResources": resources,
            "additionalContext": {
                "jobId": record.job_id,
                "category": failure.category.value if failure else "NONE",
            },
        },
    }


def build_alert(record: JobRecord, record_json: str | None = None) -> Alert:
    """The SNS message for a record: one body per protocol, and the filterable attributes."""
    machine = record_json if record_json is not None else json.dumps(record.to_json_dict())
    message = json.dumps(
        {
            "default": machine,
            "sqs": machine,
            "lambda": machine,
            "email": email_text(record),
            "https": json.dumps(chatbot_body(record)),
        }
    )
    return Alert(
        key=alert_key(record),
        subject=subject(record),
        message=message,
        attributes=message_attributes(record),
        record=record,
    )
