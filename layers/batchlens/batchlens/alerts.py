"""Alerts: which records alert, and the SNS message that serves every subscriber.

Pure code. One publish carries a body per protocol (`MessageStructure=json`): the JobRecord JSON for
machines (`default`, `sqs`, `lambda`), readable text for `email`, and the Amazon Q Developer
custom-notification JSON for `https` (chat channels). Message attributes let every subscription
filter without code. Whatever a job carries (ten attempts, megabytes of reasons), the message stays
under SNS's 262,144 bytes: free text is shortened step by step until it fits.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from batchlens.failures import FailureCategory, signal_name
from batchlens.records import Attempt, JobKind, JobRecord, training_job_name
from batchlens.settings import Settings
from batchlens.text import printable

SNS_MAX_BYTES = 262_144
SUBJECT_MAX = 99  # SNS: under 100 characters, ASCII, no line breaks or control characters
#: Room kept for the subject and the message attributes, which count towards the same limit.
ENVELOPE_ROOM = 2_048
MESSAGE_BUDGET = SNS_MAX_BYTES - ENVELOPE_ROOM
#: Longest free-text value kept, tried in order until the whole message fits (None: as it is).
_TEXT_LIMITS: tuple[int | None, ...] = (None, 8_192, 2_048, 512, 128)

#: Amazon Q Developer custom notifications (docs: "Custom notifications using Amazon Q Developer in
#: chat applications"): version and source are fixed, client-markdown is the only text type.
CHAT_VERSION = "1.0"
CHAT_SOURCE = "custom"
CHAT_TEXT_TYPE = "client-markdown"
#: batchlens's own caps for the chat card (a card renders in Slack/Teams blocks of ~3000 chars).
CHAT_TITLE_MAX = 250
CHAT_DESCRIPTION_MAX = 3_000
CHAT_SUMMARY_MAX = 250
CHAT_KEYWORDS_MAX = 6

#: Longest attempt reason on one line of the email; the record keeps the whole text.
EMAIL_REASON_MAX = 300

_STATUS_WORDS = {
    "FAILED": "failed",
    "SUCCEEDED": "succeeded",
    "RUNNABLE": "is waiting",
    "RUNNING": "is running",
    "STARTING": "is starting",
}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class Severity(StrEnum):
    """How loud an alert is: drives the chat emoji and the Slack colour."""

    CRITICAL = "CRITICAL"  # the job failed for good
    WARNING = "WARNING"  # blocked in its queue, or an attempt failed and Batch retries
    OK = "OK"  # succeeded (only when the stack alerts on successes)
    INFO = "INFO"  # any other configured transition


SEVERITY_EMOJI = {
    Severity.CRITICAL: "\N{POLICE CARS REVOLVING LIGHT}",
    Severity.WARNING: "\N{WARNING SIGN}\N{VARIATION SELECTOR-16}",
    Severity.OK: "\N{WHITE HEAVY CHECK MARK}",
    Severity.INFO: "\N{INFORMATION SOURCE}\N{VARIATION SELECTOR-16}",
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
    return silence_reason(record, settings) is None


def silence_reason(record: JobRecord, settings: Settings) -> str | None:
    """Why this record's transition does not alert under the stack's configuration, in the words
    of the setting that decides it; None when it alerts."""
    # No alert storms: an array's children and a multi-node job's nodes alert via their parent.
    if record.job_kind is JobKind.ARRAY_CHILD:
        return "an array child never alerts on its own (its array job does)"
    if record.job_kind is JobKind.MULTINODE_NODE:
        return "a multi-node node never alerts on its own (its main job does)"
    if is_retried_attempt(record):
        if settings.alert_on_retried_attempts:
            return None
        return "an attempt Batch retries does not alert with ALERT_ON_RETRIED_ATTEMPTS=false"
    if (
        record.failure is not None
        and record.failure.category is FailureCategory.DEPENDENCY_FAILED
        and not settings.alert_on_dependency_failures
    ):
        return (
            "a job that failed only because a job it depends on failed does not alert with "
            "ALERT_ON_DEPENDENCY_FAILURES=false"
        )
    if alert_status(record) not in settings.alert_on:
        return f"does not alert with ALERT_ON={','.join(settings.alert_on)}"
    return None


def severity(record: JobRecord) -> Severity:
    status = alert_status(record)
    if status == "QUEUE_BLOCKED" or is_retried_attempt(record):
        return Severity.WARNING
    if status == "FAILED":
        return Severity.CRITICAL
    if status == "SUCCEEDED":
        return Severity.OK
    return Severity.INFO


def alert_key(record: JobRecord) -> dict[str, Any]:
    """One alert per (job, status, attempt), however often and concurrently it is delivered."""
    return {
        "jobId": record.job_id,
        "status": alert_status(record),
        "attempt": record.attempts_finished,
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


# --- text helpers --------------------------------------------------------------------------------

_FENCE = re.compile(r"`(?=``)")
#: The start of an entity `mrkdwn_escape` wrote, left open by a cut.
_PARTIAL_ENTITY = re.compile(r"&[a-z]{0,3}$")


def one_line(text: str | None) -> str:
    """Text on one line, printable: whitespace runs (line breaks included) become one space."""
    return " ".join(printable(text or "").split())


def unfenced(text: str) -> str:
    """`text` that can neither open nor close a markdown code block: a zero-width space after
    every backtick that two more follow, so runs of any length (four, five…) are broken too."""
    return _FENCE.sub("`\u200b", text)


def mrkdwn_escape(text: str) -> str:
    """Text for Slack's mrkdwn, which reads `&`, `<` and `>` as control characters: a raw
    `<!channel>` would notify a channel, and `<https://…|Logs>` would forge a link. Terminal
    escapes and control characters in the job's words go too (`printable`)."""
    return printable(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def mrkdwn_clip(text: str, limit: int) -> str:
    """Already-escaped mrkdwn cut to `limit` characters without breaking an entity."""
    if len(text) <= limit:
        return text
    if limit < 1:  # no room even for the ellipsis
        return ""
    cut = _PARTIAL_ENTITY.sub("", text[: limit - 1])
    return cut + "…"


def clip(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, marked with an ellipsis when cut."""
    if len(text) <= limit:
        return text
    return text[: max(limit - 1, 0)].rstrip() + "…"


def _ascii_line(text: str) -> str:
    """One line of printable ASCII: accents dropped, other characters replaced by `_`."""
    text = one_line(_CONTROL.sub(" ", text))
    decomposed = unicodedata.normalize("NFKD", text)
    kept = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return "".join(ch if ch.isascii() and ch.isprintable() else "_" for ch in kept)


def subject(record: JobRecord) -> str:
    """Email subject: status, job name, category; ASCII, one line, under 100 characters."""
    status = alert_status(record)
    category = f" ({record.failure.category.value})" if record.failure else ""
    head = "[batchlens] "
    tail = f"{status}: "
    room = SUBJECT_MAX - len(head) - len(tail) - len(category)
    name = _ascii_line(record.job_name) or _ascii_line(record.job_id)
    if len(name) > room:
        name = name[: max(room - 3, 1)] + "..."
    return (head + tail + name + category)[:SUBJECT_MAX]


def duration(seconds: float | None) -> str:
    """A duration for people: `4.2s`, `16m 28s`, `2h 05m 00s`, or `n/a`."""
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


def exit_code_text(exit_code: int | None) -> str:
    if exit_code is None:
        return "-"
    signal = signal_name(exit_code)
    return f"{exit_code} ({signal})" if signal else str(exit_code)


def attempt_reason(attempt: Attempt) -> str:
    return one_line(attempt.reason or attempt.status_reason)


def headline(record: JobRecord) -> str:
    status = alert_status(record)
    if status == "QUEUE_BLOCKED":
        return f"Job {record.job_name} is blocked in queue {record.job_queue.name}"
    if is_retried_attempt(record):
        return (
            f"Job {record.job_name} failed attempt {record.attempts_finished} of "
            f"{record.attempts_allowed} in queue {record.job_queue.name}; Batch retries it"
        )
    words = _STATUS_WORDS.get(status, f"is {status}")
    return f"Job {record.job_name} {words} in queue {record.job_queue.name}"


def log_heading(record: JobRecord, count: int | None = None) -> str | None:
    """`Last 20 log lines of attempt 3 (group, stream)`, for a record that carries an excerpt;
    `count` is how many of its lines are shown (default: all)."""
    if not record.log_excerpt:
        return None
    # The attempt `logtail.log_source` reads: a stream in a log group, or a training job's.
    attempt = next(
        (
            a
            for a in reversed(record.attempts)
            if (a.log_group and a.log_stream_name) or training_job_name(a)
        ),
        None,
    )
    count = len(record.log_excerpt) if count is None else count
    lines = "line" if count == 1 else "lines"
    if attempt is None:
        return f"Last {count} log {lines}"
    # The enricher names the training job's stream it quoted; a preview cannot know it.
    where = attempt.log_stream_name or f"training job {training_job_name(attempt)}"
    return f"Last {count} log {lines} of attempt {attempt.number} ({attempt.log_group} {where})"


def retry_words(record: JobRecord) -> str:
    if record.failure is None:
        return "n/a"
    return "yes" if record.failure.batch_will_retry else "no"


# --- email ---------------------------------------------------------------------------------------


def email_text(record: JobRecord, *, shortened: bool = False) -> str:
    """The plain-text email: what happened, why, what to do, attempts, timings, logs, links."""
    lines = [headline(record), ""]
    failure = record.failure
    if failure is not None:
        lines += [
            f"What happened:    {failure.summary}",
            f"Why:              {failure.detail}",
            f"Next step:        {failure.next_step}",
            f"Category:         {failure.category.value}",
            f"Will Batch retry: {retry_words(record)}",
            "",
        ]
    elif record.status_reason:
        lines += [f"Status reason:    {one_line(record.status_reason)}", ""]
    lines += [
        f"Job:              {record.job_name} ({record.job_id})",
        f"Queue:            {record.job_queue.name}",
    ]
    if record.job_definition is not None:
        revision = f":{record.job_definition.revision}" if record.job_definition.revision else ""
        lines.append(f"Definition:       {record.job_definition.name}{revision}")
    if record.service_job_type:
        lines.append(f"Service:          {record.service_job_type}")
    lines += [
        f"Status:           {record.status}",
        f"Attempts:         {record.attempts_used} of {record.attempts_allowed} allowed",
        f"Queue wait:       {duration(record.queued_seconds)}",
        f"Run time:         {duration(record.run_seconds)}",
        f"Total:            {duration(record.total_seconds)}",
    ]
    if record.array_status_summary:
        counts = ", ".join(f"{k} {v}" for k, v in sorted(record.array_status_summary.items()) if v)
        lines.append(f"Children:         {counts} (of {record.array_size})")
    if record.attempts:
        lines += ["", "Attempt history:", "  #   duration     exit          reason"]
        for attempt in record.attempts:
            row = (
                f"  {attempt.number:<3} {duration(attempt.duration_seconds):>9}    "
                f"{exit_code_text(attempt.exit_code):<13} "
                f"{clip(attempt_reason(attempt), EMAIL_REASON_MAX)}"
            )
            lines.append(row.rstrip())
    heading = log_heading(record)
    if heading and record.log_excerpt:
        lines += ["", f"{heading}:"]
        lines += [f"  | {line}".rstrip() for line in record.log_excerpt]
    lines += ["", "Links:", f"  Job in the Batch console: {record.links.console}"]
    if record.links.logs:
        lines.append(f"  Logs:                     {record.links.logs}")
    if record.links.training_job:
        lines.append(f"  SageMaker training job:   {record.links.training_job}")
    lines.append("")
    if shortened or record.truncated:  # cut here, or by the size rule before (limits.py)
        lines.append(
            "Some text was shortened to fit AWS's size limits "
            "(SNS's 256 KB message, DynamoDB's 400 KB item)."
        )
    lines.append(
        f"Event {record.event_id} at {record.event_time.isoformat().replace('+00:00', 'Z')} "
        f"(account {record.account}, {record.region}). Sent by batchlens."
    )
    return printable("\n".join(lines))


# --- Amazon Q Developer in chat applications ------------------------------------------------------


def _chat_link(url: str, label: str) -> str:
    return f"<{url}|{label}>"


def chat_fence(lines: list[str]) -> str:
    """A code block whose lines cannot close it early."""
    body = "\n".join(unfenced(mrkdwn_escape(line)) for line in lines)
    return f"```\n{body}\n```"


def chatbot_body(record: JobRecord) -> dict[str, Any]:
    """Amazon Q Developer in chat applications: a custom notification (version 1.0).

    `threadId` is the job id, so every alert of one job lands in one chat thread.
    """
    failure = record.failure
    facts = [
        f"*Queue:* {record.job_queue.name}",
        f"*Status:* {record.status}",
        f"*Attempts:* {record.attempts_used}/{record.attempts_allowed}",
        f"*Queue wait:* {duration(record.queued_seconds)}",
        f"*Run time:* {duration(record.run_seconds)}",
    ]
    # Reasons are the job's own words (TerminateJob takes any): a fence in one would swallow
    # the rest of the description into a code block, and client-markdown reaches Slack as its
    # mrkdwn, where `<!channel>` in one would notify the channel.
    head: list[str] = []
    if failure is not None:
        head += [
            unfenced(mrkdwn_escape(failure.summary)),
            f"*Why:* {unfenced(mrkdwn_escape(failure.detail))}",
        ]
    elif record.status_reason:
        head.append(unfenced(mrkdwn_escape(one_line(record.status_reason))))
    links = [_chat_link(record.links.console or "", "Job in the Batch console")]
    if record.links.logs:
        links.append(_chat_link(record.links.logs, "Logs"))
    if record.links.training_job:
        links.append(_chat_link(record.links.training_job, "Training job"))
    tail = [" | ".join(links)]

    def describe(excerpt: list[str]) -> str:
        parts = [*head, "  ".join(facts)]
        heading = log_heading(record, len(excerpt))
        if excerpt and heading:
            parts += [f"*{mrkdwn_escape(heading)}:*", chat_fence(excerpt)]
        return "\n".join(parts + tail)

    # The log excerpt gives way first (oldest lines first), then the last reason line, so the
    # facts and links stay whole; only a summary too long on its own cuts the text's end.
    excerpt = list(record.log_excerpt or [])
    description = describe(excerpt)
    while excerpt and len(description) > CHAT_DESCRIPTION_MAX:
        excerpt.pop(0)
        description = describe(excerpt)
    over = len(description) - CHAT_DESCRIPTION_MAX
    if over > 0 and head:
        head[-1] = mrkdwn_clip(head[-1], max(len(head[-1]) - over, 0))
        description = describe([])
    if len(description) > CHAT_DESCRIPTION_MAX:
        description = mrkdwn_clip(description, CHAT_DESCRIPTION_MAX)

    keywords = [alert_status(record), record.job_queue.name, record.job_kind.value]
    if failure is not None:
        keywords.insert(1, failure.category.value)
    content: dict[str, Any] = {
        "textType": CHAT_TEXT_TYPE,
        "title": clip(f"{SEVERITY_EMOJI[severity(record)]} {headline(record)}", CHAT_TITLE_MAX),
        "description": description,
        "keywords": [clip(k, 100) for k in keywords[:CHAT_KEYWORDS_MAX]],
    }
    if failure is not None:
        content["nextSteps"] = [mrkdwn_clip(mrkdwn_escape(failure.next_step), CHAT_DESCRIPTION_MAX)]
    resources = [arn for arn in (record.job_arn, record.job_queue.arn) if arn]
    if record.links.training_job and record.attempts and record.attempts[-1].resource_arn:
        resources.append(record.attempts[-1].resource_arn)
    return {
        "version": CHAT_VERSION,
        "source": CHAT_SOURCE,
        "id": record.event_id,
        "content": content,
        "metadata": {
            "threadId": record.job_id,
            "summary": clip(subject(record), CHAT_SUMMARY_MAX),
            "eventType": "batchlens-" + record.event_type.value.lower().replace("_", "-"),
            "relatedResources": resources,
            "additionalContext": {
                "jobId": record.job_id,
                "jobName": record.job_name,
                "jobQueue": record.job_queue.name,
                "status": alert_status(record),
                "category": failure.category.value if failure else "NONE",
                "attempt": str(record.attempts_finished),
            },
        },
    }


# --- the SNS message -----------------------------------------------------------------------------


def shorten(record: JobRecord, limit: int) -> JobRecord:
    """The record with every free-text value cut to `limit` characters (log lines included)."""

    def cut(value: str | None) -> str | None:
        return clip(value, limit) if value else value

    update: dict[str, Any] = {
        "status_reason": cut(record.status_reason),
        "attempts": [
            attempt.model_copy(
                update={"reason": cut(attempt.reason), "status_reason": cut(attempt.status_reason)}
            )
            for attempt in record.attempts
        ],
    }
    if record.failure is not None:
        update["failure"] = record.failure.model_copy(
            update={
                "summary": clip(record.failure.summary, limit),
                "detail": clip(record.failure.detail, limit),
                "next_step": clip(record.failure.next_step, limit),
            }
        )
    if record.log_excerpt:
        update["log_excerpt"] = [clip(line, limit) for line in record.log_excerpt]
    return record.model_copy(update=update)


def _message(record: JobRecord, machine: str, *, shortened: bool) -> str:
    return json.dumps(
        {
            "default": machine,
            "sqs": machine,
            "lambda": machine,
            "email": email_text(record, shortened=shortened),
            "https": json.dumps(chatbot_body(record)),
        }
    )


def build_alert(record: JobRecord, record_json: str | None = None) -> Alert:
    """The SNS message for a record: one body per protocol, and the filterable attributes.

    When the message would not fit SNS's limit, free text is shortened (8 KiB, 2 KiB, 512, 128
    characters a value) until it does; every body then carries the shortened record.
    """
    message = ""
    for limit in _TEXT_LIMITS:
        shown = record if limit is None else shorten(record, limit)
        machine = record_json if limit is None and record_json is not None else shown.to_json()
        message = _message(shown, machine, shortened=limit is not None)
        if len(message.encode()) <= MESSAGE_BUDGET:
            break
    return Alert(
        key=alert_key(record),
        subject=subject(record),
        message=message,
        attributes=message_attributes(record),
        record=record,
    )
