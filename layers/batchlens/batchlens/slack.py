"""Slack: a JobRecord as a Block Kit message for an incoming webhook. Pure code, no I/O.

The card: a header (severity emoji, status, job name), then a block coloured by severity with what
happened, why and the next step, the facts as fields (job, queue, status, category, attempts, exit
code, durations), the attempt history, the log excerpt as a code block, buttons to the logs and the
job in the console, and a context line. Every text is escaped for mrkdwn and cut to Block Kit's
limits (50 blocks, 3000 characters a section text, 10 fields of 2000, header 150, button text 75,
button URL 3000), so Slack never rejects the payload for its size.
"""

from __future__ import annotations

from typing import Any

from batchlens.alerts import (
    Severity,
    alert_status,
    attempt_reason,
    clip,
    duration,
    exit_code_text,
    headline,
    log_heading,
    mrkdwn_clip,
    mrkdwn_escape,
    one_line,
    retry_words,
    severity,
    subject,
    unfenced,
)
from batchlens.records import JobRecord

# Block Kit limits (Slack reference: blocks, block elements, composition objects).
MAX_BLOCKS = 50
SECTION_TEXT_MAX = 3_000
FIELDS_MAX = 10
FIELD_TEXT_MAX = 2_000
HEADER_TEXT_MAX = 150
BUTTON_TEXT_MAX = 75
BUTTON_URL_MAX = 3_000
ACTIONS_ELEMENTS_MAX = 25
CONTEXT_ELEMENTS_MAX = 10
CONTEXT_TEXT_MAX = 3_000
#: The notification text (shown in pushes and where blocks cannot render).
FALLBACK_TEXT_MAX = 3_000
#: One attempt's reason in the attempt history.
ATTEMPT_REASON_MAX = 200

COLOURS = {
    Severity.CRITICAL: "#D40E0D",
    Severity.WARNING: "#DAA038",
    Severity.OK: "#2EB886",
    Severity.INFO: "#439FE0",
}
EMOJI = {
    Severity.CRITICAL: ":rotating_light:",
    Severity.WARNING: ":warning:",
    Severity.OK: ":white_check_mark:",
    Severity.INFO: ":information_source:",
}


def _mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text}


def _plain(text: str, limit: int) -> dict[str, Any]:
    return {"type": "plain_text", "text": clip(one_line(text), limit) or "-", "emoji": True}


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": _mrkdwn(mrkdwn_clip(text, SECTION_TEXT_MAX))}


def _field(label: str, value: str) -> dict[str, Any]:
    return _mrkdwn(mrkdwn_clip(f"*{label}*\n{mrkdwn_escape(value)}", FIELD_TEXT_MAX))


def _code_block(lines: list[str]) -> str:
    body = "\n".join(unfenced(mrkdwn_escape(line)) for line in lines)
    return f"```\n{body}\n```"


def _cause(record: JobRecord) -> dict[str, Any] | None:
    failure = record.failure
    if failure is not None:
        parts = [
            ("What happened", failure.summary),
            ("Next step", failure.next_step),
            ("Why", failure.detail),
        ]
        # Why gives way first: what happened and what to do must stay whole.
        budget = SECTION_TEXT_MAX - len(f"*Will Batch retry:* {retry_words(record)}") - 8
        texts: list[str] = []
        for label, value in parts:
            room = max(budget - sum(len(t) + 1 for t in texts), 0)
            # A reason's fence (TerminateJob takes any words) would open a code block that
            # swallows the lines after it, the next step included: broken as in the log block.
            shown = unfenced(mrkdwn_escape(one_line(value)))
            texts.append(mrkdwn_clip(f"*{label}:* {shown}", room))
        texts.append(f"*Will Batch retry:* {retry_words(record)}")
        return _section("\n".join(t for t in texts if t))
    if record.status_reason:
        reason = unfenced(mrkdwn_escape(one_line(record.status_reason)))
        return _section(f"*Status reason:* {reason}")
    return None


def _facts(record: JobRecord) -> dict[str, Any]:
    latest = record.attempts[-1] if record.attempts else None
    fields = [
        _field("Job", f"{record.job_name}\n{record.job_id}"),
        _field("Queue", record.job_queue.name),
        _field("Status", alert_status(record)),
        _field("Category", record.failure.category.value if record.failure else "-"),
        _field("Attempts", f"{record.attempts_used} of {record.attempts_allowed}"),
        _field("Exit code", exit_code_text(latest.exit_code) if latest else "-"),
        _field("Queue wait", duration(record.queued_seconds)),
        _field("Run time", duration(record.run_seconds)),
    ]
    if record.job_definition is not None:
        revision = f":{record.job_definition.revision}" if record.job_definition.revision else ""
        fields.append(_field("Definition", f"{record.job_definition.name}{revision}"))
    elif record.service_job_type:
        fields.append(_field("Service", record.service_job_type))
    fields.append(_field("Total", duration(record.total_seconds)))
    return {"type": "section", "fields": fields[:FIELDS_MAX]}


def _attempts(record: JobRecord) -> dict[str, Any] | None:
    if len(record.attempts) < 2:
        return None
    rows = [
        f"`#{a.number}` {duration(a.duration_seconds)} · exit {exit_code_text(a.exit_code)} · "
        # Unfenced: a fence in one reason would turn the rows after it into one code block.
        + unfenced(mrkdwn_escape(clip(attempt_reason(a), ATTEMPT_REASON_MAX)))
        for a in record.attempts
    ]
    title = "*Attempts*"
    while rows and len(title) + sum(len(r) + 1 for r in rows) > SECTION_TEXT_MAX:
        rows.pop(0)  # the latest attempts matter most
    return _section("\n".join([title, *rows]))


def _log_excerpt(record: JobRecord) -> dict[str, Any] | None:
    lines = list(record.log_excerpt or ())
    heading = log_heading(record, len(lines))
    while lines and heading is not None:
        title = f"*{mrkdwn_escape(heading)}*"  # it counts the lines shown
        if len(title) + 1 + len(_code_block(lines)) <= SECTION_TEXT_MAX:
            return _section(f"{title}\n{_code_block(lines)}")
        lines.pop(0)  # the newest lines matter most
        heading = log_heading(record, len(lines))
    return None


def _button(text: str, url: str | None, action_id: str, primary: bool = False) -> dict[str, Any]:
    button: dict[str, Any] = {
        "type": "button",
        "text": _plain(text, BUTTON_TEXT_MAX),
        "url": url,
        "action_id": action_id,
    }
    if primary:
        button["style"] = "primary"
    return button


def _buttons(record: JobRecord) -> dict[str, Any] | None:
    candidates = [
        ("View logs", record.links.logs, "batchlens-logs", True),
        ("Open job in console", record.links.console, "batchlens-console", False),
        ("Training job", record.links.training_job, "batchlens-training-job", False),
    ]
    elements = [
        _button(text, url, action_id, primary)
        for text, url, action_id, primary in candidates
        if url and len(url) <= BUTTON_URL_MAX
    ]
    if not elements:
        return None
    return {"type": "actions", "elements": elements[:ACTIONS_ELEMENTS_MAX]}


def _context(record: JobRecord) -> dict[str, Any]:
    when = record.event_time.isoformat().replace("+00:00", "Z")
    text = (
        f"{record.event_type.value} · {when} · {record.account} {record.region} · "
        f"{record.job_kind.value} · batchlens"
    )
    text = mrkdwn_clip(mrkdwn_escape(text), CONTEXT_TEXT_MAX)
    return {"type": "context", "elements": [_mrkdwn(text)]}


def render(record: JobRecord) -> dict[str, Any]:
    """The incoming-webhook payload for `record`: header, then a card coloured by severity."""
    level = severity(record)
    header = {
        "type": "header",
        "text": _plain(
            f"{EMOJI[level]} {alert_status(record)}: {record.job_name}", HEADER_TEXT_MAX
        ),
    }
    card = [
        block
        for block in (
            _cause(record),
            _facts(record),
            _attempts(record),
            _log_excerpt(record),
            _buttons(record),
            _context(record),
        )
        if block is not None
    ]
    return {
        "text": clip(f"{subject(record)} - {one_line(headline(record))}", FALLBACK_TEXT_MAX),
        "blocks": [header],
        "attachments": [
            {
                "color": COLOURS[level],
                "fallback": clip(headline(record), FALLBACK_TEXT_MAX),
                "blocks": card[: MAX_BLOCKS - 1],
            }
        ],
        "unfurl_links": False,
        "unfurl_media": False,
    }
