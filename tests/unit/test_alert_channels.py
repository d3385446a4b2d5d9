"""Every alert channel reads well and fits its limits: the email (golden files), the Amazon Q chat
notification (validated against the documented schema), the Slack card (Block Kit limits), and
the whole SNS message (262,144 bytes) even for a job with ten attempts and huge reasons.

Regenerate the golden emails after an intended wording change with `UPDATE_GOLDEN=1 pytest …`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from batchlens import alerts, slack
from batchlens.alerts import build_alert, chatbot_body, email_text, subject
from batchlens.events import parse_event
from batchlens.publish import PUBLISH_BATCH_MAX, publish_alerts
from batchlens.records import JobRecord, normalise
from batchlens.redact import MASK
from tests.conftest import Json, read_event, read_log, sample_event_names, variant
from tests.limits import (
    SNS_MAX_BYTES,
    block_kit_problems,
    chat_problems,
    sns_batch_bytes,
    subject_problems,
)

GOLDEN = Path(__file__).resolve().parents[1] / "golden"

#: What the OOM and application-error jobs wrote (as in the demo), quoted in their golden emails.
OOM_LOG = read_log("job-failed-oom")
APP_LOG = read_log("job-failed-app-error")


def record_of(event: str | Json, log: Sequence[str] | None = None) -> JobRecord:
    from batchlens.preview import with_log
    from batchlens.redact import Redactor

    record = normalise(parse_event(read_event(event) if isinstance(event, str) else event))
    return with_log(record, "\n".join(log), 20, Redactor()) if log else record


def bodies(record: JobRecord) -> dict[str, str]:
    decoded: dict[str, str] = json.loads(build_alert(record).message)
    return decoded


def huge_record() -> JobRecord:
    """Ten attempts, each with reasons of ~100 KB (some multi-byte), and a long log excerpt."""
    event = read_event("job-failed-oom")
    attempt = event["detail"]["attempts"][0]
    attempts = []
    for number in range(10):
        copy = json.loads(json.dumps(attempt))
        copy["statusReason"] = f"Essential container in task exited {number} " + "é" * 50_000
        copy["container"]["reason"] = "OutOfMemoryError: Container killed " + "z\n" * 50_000
        attempts.append(copy)
    detail: dict[str, Any] = {
        "attempts": attempts,
        "retryStrategy": {"attempts": 10},
        "statusReason": "Essential container in task exited " + "ü<&>" * 30_000,
    }
    log = [f"line {i}: " + "x" * 2_000 for i in range(200)]
    return record_of(variant(event, **detail), log)


# --- email ---------------------------------------------------------------------------------------

GOLDEN_CASES = {
    "oom": ("job-failed-oom", OOM_LOG),
    "spot": ("job-failed-spot", None),
    "image-pull": ("job-failed-image-pull", None),
    "app-error": ("job-failed-app-error", APP_LOG),
    "queue-blocked": ("job-queue-blocked-capacity", None),
    "service-job": ("service-job-failed", None),
}


@pytest.mark.parametrize("case", sorted(GOLDEN_CASES))
def test_email_text_matches_its_golden_file(case: str) -> None:
    # Given a sample of one of the main failure categories (with a log excerpt where it ran)
    event, log = GOLDEN_CASES[case]
    record = record_of(event, log)

    # When the alert is built, the email is what SNS sends to email subscribers
    alert = build_alert(record)
    text = f"Subject: {alert.subject}\n\n{json.loads(alert.message)['email']}\n"

    # Then it reads exactly as reviewed
    golden = GOLDEN / f"email-{case}.txt"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(text, encoding="utf-8")
    assert text == golden.read_text(encoding="utf-8")


def test_email_says_what_why_next_step_attempts_timings_log_and_links() -> None:
    record = record_of("job-failed-app-error", APP_LOG)
    assert record.failure is not None
    assert record.log_excerpt is not None
    email = email_text(record)
    for label in ("What happened:", "Why:", "Next step:", "Attempts:", "Queue wait:", "Run time:"):
        assert label in email
    assert record.failure.detail in email
    assert "ValueError: invoice INV-2025-02-0042 has no customer" in email
    assert record.links.console is not None
    assert record.links.console in email
    assert record.links.logs is not None
    assert record.links.logs in email


def test_the_log_excerpt_is_masked_in_every_body() -> None:
    # Given a job log that prints a password
    record = record_of("job-failed-app-error", APP_LOG)

    # When its alert is built, then no body carries the password, and the mask is counted
    message = build_alert(record).message
    assert "hunter2-prod-Zx9" not in message
    assert f"DB_PASSWORD={MASK}" in message
    assert record.redacted >= 1
    assert json.loads(bodies(record)["default"])["logExcerpt"][1].endswith(f"DB_PASSWORD={MASK}")


@pytest.mark.parametrize(
    "name",
    [
        "Jörg's nightly résumé",
        "line\nbreak\tand\x07bell",
        "作业-失败",
        "?" * 300,
        "",
    ],
)
def test_subject_follows_the_sns_rules_for_any_job_name(name: str) -> None:
    event = variant(read_event("job-failed-oom"), jobName=name)
    line = subject(record_of(event))
    assert subject_problems(line) == []
    assert line.startswith("[batchlens] FAILED: ")


def test_subject_keeps_accents_readable_and_real_question_marks() -> None:
    line = subject(record_of(variant(read_event("job-failed-oom"), jobName="Jörg-résumé?")))
    assert "Jorg-resume?" in line


# --- Amazon Q Developer in chat applications ----------------------------------------------------


@pytest.mark.parametrize("name", sample_event_names())
def test_chat_notification_validates_against_the_documented_schema(name: str) -> None:
    # Given any sample event, whether or not it alerts by default
    record = record_of(name)

    # When its https body is built
    chat = json.loads(bodies(record)["https"])

    # Then it is a custom notification Amazon Q accepts, threaded by job
    assert chat_problems(chat) == []
    assert chat["metadata"]["threadId"] == record.job_id
    assert chat["content"]["textType"] == "client-markdown"
    assert chat == chatbot_body(record)


def test_chat_notification_carries_next_step_links_and_the_log_excerpt() -> None:
    record = record_of("job-failed-oom", OOM_LOG)
    assert record.failure is not None
    chat = chatbot_body(record)
    content, metadata = chat["content"], chat["metadata"]
    assert content["nextSteps"] == [record.failure.next_step]
    assert "OUT_OF_MEMORY" in content["keywords"]
    assert record.failure.summary in content["description"]
    assert "```\n" + "\n".join(OOM_LOG) + "\n```" in content["description"]
    assert f"<{record.links.logs}|Logs>" in content["description"]
    assert metadata["summary"] == subject(record)
    assert metadata["eventType"] == "batchlens-job-state-change"
    assert record.job_arn in metadata["relatedResources"]
    assert metadata["additionalContext"]["category"] == "OUT_OF_MEMORY"


def test_chat_notification_of_a_huge_record_still_validates() -> None:
    chat = chatbot_body(huge_record())
    assert chat_problems(chat) == []
    assert chat["content"]["description"].count("```") in (0, 2)  # never a half-open code block


def test_a_fence_in_a_reason_cannot_swallow_the_chat_description_into_a_code_block() -> None:
    # Given a failed job whose status reason (the words of whoever terminated it) quotes a code
    # fence, and a log excerpt
    event = variant(read_event("job-failed-app-error"), statusReason="Killed: ```rm -rf``` oops")
    record = record_of(event, APP_LOG)

    # When its chat notification is built
    description = chatbot_body(record)["content"]["description"]

    # Then the only fences are the log excerpt's, and the links come after it
    assert description.count("```") == 2
    assert record.log_excerpt
    assert "```\n" + "\n".join(record.log_excerpt) + "\n```" in description
    assert description.endswith(f"<{record.links.logs}|Logs>")


def test_a_long_failure_detail_gives_way_before_the_chat_facts_and_links() -> None:
    # Given a failure whose reasons make its detail longer than the description may be
    event = read_event("job-failed-app-error")
    attempt = event["detail"]["attempts"][-1]
    attempt["container"]["reason"] = "RuntimeError: " + "b" * 1_200
    attempt["statusReason"] = "Essential container in task exited " + "a" * 1_200
    record = record_of(
        variant(
            event,
            attempts=[attempt],
            statusReason="Essential container in task exited " + "c" * 700,
        )
    )
    assert record.failure is not None
    assert len(record.failure.detail) > 2_000

    # When its chat notification is built
    description = chatbot_body(record)["content"]["description"]

    # Then it fits, its why line is cut, and its facts and both links are whole
    assert chat_problems(chatbot_body(record)) == []
    assert len(description) == alerts.CHAT_DESCRIPTION_MAX
    why = next(line for line in description.split("\n") if line.startswith("*Why:*"))
    assert why.endswith("…")
    assert "*Run time:*" in description
    assert description.endswith(
        f"<{record.links.console}|Job in the Batch console> | <{record.links.logs}|Logs>"
    )


# --- Slack ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sample_event_names())
def test_slack_card_honours_block_kit_limits(name: str) -> None:
    assert block_kit_problems(slack.render(record_of(name))) == []


def test_slack_card_of_a_huge_record_honours_block_kit_limits() -> None:
    payload = slack.render(huge_record())
    assert block_kit_problems(payload) == []
    # The newest log line survives the cut; the oldest give way
    text = json.dumps(payload)
    assert "line 199:" in text
    assert "line 0:" not in text


def test_slack_card_has_header_fields_summary_next_step_log_and_buttons() -> None:
    record = record_of("job-failed-oom", OOM_LOG)
    assert record.failure is not None
    payload = slack.render(record)
    (header,) = payload["blocks"]
    (card,) = payload["attachments"]
    kinds = [block["type"] for block in card["blocks"]]

    assert header["type"] == "header"
    assert header["text"]["text"].startswith(":rotating_light: FAILED: align-NA12878-chr1")
    assert card["color"] == "#D40E0D"
    assert kinds == ["section", "section", "section", "section", "actions", "context"]
    cause, facts, history, log = card["blocks"][:4]
    assert record.failure.summary in cause["text"]["text"]
    assert record.failure.next_step in cause["text"]["text"]
    labels = [field["text"].split("\n")[0] for field in facts["fields"]]
    assert labels[:8] == [
        "*Job*",
        "*Queue*",
        "*Status*",
        "*Category*",
        "*Attempts*",
        "*Exit code*",
        "*Queue wait*",
        "*Run time*",
    ]
    assert history["text"]["text"].count("`#") == 3
    assert log["text"]["text"].endswith("```\n" + "\n".join(OOM_LOG) + "\n```")
    buttons = {b["action_id"]: b["url"] for b in card["blocks"][4]["elements"]}
    assert buttons == {
        "batchlens-logs": record.links.logs,
        "batchlens-console": record.links.console,
    }


@pytest.mark.parametrize(
    ("name", "colour", "emoji"),
    [
        ("job-failed-oom", "#D40E0D", ":rotating_light:"),  # critical: red
        ("job-queue-blocked-capacity", "#DAA038", ":warning:"),  # warning: amber
        ("job-retried-runnable", "#DAA038", ":warning:"),
        ("job-succeeded", "#2EB886", ":white_check_mark:"),  # ok: green
        ("job-running", "#439FE0", ":information_source:"),  # info: blue
    ],
)
def test_slack_colour_and_emoji_follow_severity(name: str, colour: str, emoji: str) -> None:
    payload = slack.render(record_of(name))
    assert payload["attachments"][0]["color"] == colour
    assert payload["blocks"][0]["text"]["text"].startswith(emoji + " ")


def test_slack_text_is_escaped_for_mrkdwn() -> None:
    event = variant(read_event("job-failed-app-error"), statusReason="a <b> & c")
    record = record_of(event, ["if a < b && c > d: fail()", "``` not a fence"])
    text = json.dumps(slack.render(record))
    assert "if a &lt; b &amp;&amp; c &gt; d: fail()" in text
    assert "``` not a fence" not in text
    assert block_kit_problems(slack.render(record)) == []


# --- the whole SNS message -------------------------------------------------------------------


def test_message_fits_sns_for_ten_attempts_with_huge_reasons() -> None:
    # Given a record with ten attempts of ~100 KB reasons each and 200 long log lines
    record = huge_record()
    assert len(record.attempts) == 10

    # When its alert is built
    alert = build_alert(record)
    entry_bytes = len(alert.message.encode()) + len(alert.subject.encode())
    entry_bytes += sum(
        len(k) + len("String") + len(v.encode()) for k, v in alert.attributes.items()
    )

    # Then the whole publish fits SNS, every body still parses, and the email says it was cut
    assert entry_bytes <= SNS_MAX_BYTES
    decoded = json.loads(alert.message)
    machine = JobRecord.model_validate_json(decoded["lambda"])
    assert len(machine.attempts) == 10
    assert machine.job_id == record.job_id
    assert "shortened to fit" in decoded["email"]
    assert chat_problems(json.loads(decoded["https"])) == []
    assert subject_problems(alert.subject) == []


@pytest.mark.parametrize("name", sample_event_names())
def test_a_normal_record_is_published_whole(name: str) -> None:
    record = record_of(name)
    decoded = bodies(record)
    assert json.loads(decoded["default"]) == record.to_json_dict()
    assert "shortened to fit" not in decoded["email"]


def test_publish_batch_groups_stay_under_the_aggregate_limit() -> None:
    # Given 25 alerts: huge ones (near the limit each) mixed with ordinary ones
    ordinary = [build_alert(record_of(n)) for n in ("job-failed-spot", "job-failed-app-error")]
    huge = build_alert(huge_record())
    batch = [huge, *ordinary * 4, huge, huge, *ordinary * 7]

    # When they are published (moto does not check the aggregate size: the calls are kept)
    calls: list[list[Json]] = []
    with mock_aws():
        sns = boto3.client("sns", region_name="us-east-1")
        topic = sns.create_topic(Name="alerts")["TopicArn"]
        sns.meta.events.register(
            "before-parameter-build.sns.PublishBatch",
            lambda params, **_: calls.append(params["PublishBatchRequestEntries"]),
        )
        result = publish_alerts(sns, topic, batch)

    # Then every alert went out, in calls of at most 10 entries and 262,144 bytes together
    assert len(result.published) == len(batch)
    assert result.calls == len(calls)
    sizes = [sns_batch_bytes(call) for call in calls]
    assert max(sizes) > SNS_MAX_BYTES // 2  # the huge alerts had to be grouped apart
    for call, size in zip(calls, sizes, strict=True):
        assert len(call) <= PUBLISH_BATCH_MAX
        assert size <= SNS_MAX_BYTES
