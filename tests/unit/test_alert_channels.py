"""Every alert channel reads well and fits its limits: the email (golden files), the Amazon Q chat
notification (validated against the documented schema), the Slack card (Block Kit limits), and
the whole SNS message (262,144 bytes) even for a job with ten attempts and huge reasons.

Regenerate the golden emails after an intended wording change with `UPDATE_GOLDEN=1 pytest …`.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from batchlens import alerts, logtail, slack
from batchlens.alerts import build_alert, chatbot_body, email_text, subject
from batchlens.events import parse_event
from batchlens.publish import publish_alerts
from batchlens.records import JobRecord, normalise
from batchlens.redact import MASK
from tests.conftest import Json, read_event, read_log, sample_event_names, variant
from tests.limits import (
    SNS_BATCH_MAX_ENTRIES,
    SNS_MAX_BYTES,
    block_kit_problems,
    chat_problems,
    sns_batch_bytes,
    subject_problems,
)

GOLDEN = Path(__file__).resolve().parents[1] / "golden"

#: What the OOM and application-error jobs and the service job's training job wrote (as in the
#: demo), quoted in their golden emails.
OOM_LOG = read_log("job-failed-oom")
APP_LOG = read_log("job-failed-app-error")
TRAINING_LOG = read_log("service-job-failed")


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
    "service-job": ("service-job-failed", TRAINING_LOG),
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


@pytest.mark.parametrize("fence", ["```", "````", "``````"])
def test_a_fence_in_a_reason_cannot_swallow_the_chat_description_into_a_code_block(
    fence: str,
) -> None:
    # Given a failed job whose status reason (the words of whoever terminated it) quotes a code
    # fence, of any length, and a log excerpt
    reason = f"Killed: {fence}rm -rf{fence} oops"
    event = variant(read_event("job-failed-app-error"), statusReason=reason)
    record = record_of(event, APP_LOG)

    # When its chat notification is built
    description = chatbot_body(record)["content"]["description"]

    # Then the only fences are the log excerpt's, and the links come after it
    assert description.count("```") == 2
    assert record.log_excerpt
    assert "```\n" + "\n".join(record.log_excerpt) + "\n```" in description
    assert description.endswith(f"<{record.links.logs}|Logs>")


def test_chat_text_from_the_job_cannot_notify_a_channel_or_forge_a_link() -> None:
    # Given a reason and a log line with Slack control sequences (Amazon Q shows client-markdown
    # in Slack as its mrkdwn)
    reason = "<!channel> see <https://evil.example|Logs> & retry"
    event = variant(read_event("job-failed-app-error"), statusReason=reason)
    record = record_of(event, ["<!here> a < b && c > d"])

    # When its chat notification is built
    chat = chatbot_body(record)
    description = chat["content"]["description"]

    # Then they arrive as text, escaped as Slack asks, and only batchlens's own links are links
    assert "<!" not in description
    assert "<https://evil" not in description
    assert "&lt;!channel&gt; see &lt;https://evil.example|Logs&gt; &amp; retry" in description
    assert "```\n&lt;!here&gt; a &lt; b &amp;&amp; c &gt; d\n```" in description
    assert description.count("<") == description.count("|Logs>") + description.count("|Job in")
    assert chat_problems(chat) == []


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


@pytest.mark.parametrize("fence", ["```", "````", "`````", "``````"])
def test_a_log_line_cannot_close_the_slack_log_block_early(fence: str) -> None:
    record = record_of("job-failed-app-error", ["start", f"{fence} then *bold*", "Killed"])
    log = next(
        block["text"]["text"]
        for block in slack.render(record)["attachments"][0]["blocks"]
        if block.get("text", {}).get("text", "").startswith("*Last ")
    )
    assert log.count("```") == 2
    assert log.endswith("then *bold*\nKilled\n```")


@pytest.mark.parametrize("fence", ["```", "````", "``````"])
def test_a_fence_in_a_reason_cannot_swallow_slack_card_lines_into_a_code_block(fence: str) -> None:
    # Given a failed job of two attempts whose container reason and status reason (TerminateJob
    # takes any words) each quote one code fence
    event = variant(read_event("job-failed-app-error"), statusReason=f"Killed: {fence}rm -rf")
    attempt = event["detail"]["attempts"][-1]
    attempt["container"]["reason"] = f"bad {fence} fence"
    event["detail"]["attempts"].append(json.loads(json.dumps(attempt)))
    record = record_of(event)

    # When its Slack card is rendered
    blocks = slack.render(record)["attachments"][0]["blocks"]
    cause = blocks[0]["text"]["text"]
    history = next(
        b["text"]["text"] for b in blocks if "*Attempts*" in b.get("text", {}).get("text", "")
    )

    # Then neither the cause nor the attempt history holds a fence: the next step and the rows
    # after a reason stay text, not one code block
    assert "*Next step:*" in cause
    assert "```" not in cause
    assert history.count("`#") == 2
    assert "```" not in history
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
    # Given 37 alerts: huge ones (near the limit each) mixed with ordinary ones, ending in a run
    # of ordinary ones more than 10 of which would fit 262,144 bytes together
    ordinary = [build_alert(record_of(n)) for n in ("job-failed-spot", "job-failed-app-error")]
    huge = build_alert(huge_record())
    batch = [huge, *ordinary * 4, huge, huge, *ordinary * 13]

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
    assert max(len(call) for call in calls) == SNS_BATCH_MAX_ENTRIES  # and the run cut at 10
    for call, size in zip(calls, sizes, strict=True):
        assert len(call) <= SNS_BATCH_MAX_ENTRIES
        assert size <= SNS_MAX_BYTES


# --- Slack: behaviour pinned by a mutation review --------------------------------------------


def _cause_text(payload: Json) -> str:
    text: str = payload["attachments"][0]["blocks"][0]["text"]["text"]
    return text


def _section_starting(payload: Json, start: str) -> str:
    text: str = next(
        block["text"]["text"]
        for block in payload["attachments"][0]["blocks"]
        if block["type"] == "section" and block.get("text", {}).get("text", "").startswith(start)
    )
    return text


@pytest.mark.parametrize("name", ["job-queue-blocked-capacity", "job-failed-oom"])
def test_slack_header_of_a_longest_job_name_fits_150_characters(name: str) -> None:
    # Given a job named with the 128 characters AWS Batch allows
    record = record_of(variant(read_event(name), jobName="j" * 128))

    # When its card is rendered, then the header is cut to Block Kit's 150 (Slack would refuse
    # the whole message with invalid_blocks)
    header = slack.render(record)["blocks"][0]["text"]["text"]
    assert len(header) <= slack.HEADER_TEXT_MAX
    assert header.endswith("…")


def test_mrkdwn_clip_keeps_text_of_exactly_the_limit_and_cuts_longer_text_to_it() -> None:
    assert alerts.mrkdwn_clip("x" * 10, 10) == "x" * 10
    assert alerts.mrkdwn_clip("x" * 11, 10) == "x" * 9 + "…"
    # A section that has no room left gets nothing, not the text less one character
    assert alerts.mrkdwn_clip("abcdef", 1) == "…"
    assert alerts.mrkdwn_clip("abcdef", 0) == ""


def test_mrkdwn_clip_never_leaves_a_partial_entity_at_any_cut() -> None:
    text = alerts.mrkdwn_escape("a&b<c>d" * 20)
    for limit in range(1, len(text)):
        cut = alerts.mrkdwn_clip(text, limit)
        assert len(cut) <= limit
        assert not re.search(r"&(?!amp;|lt;|gt;)", cut), (limit, cut[-8:])


def test_a_long_status_reason_without_a_failure_is_escaped_and_fits_its_section() -> None:
    # Given a job that did not fail, with a long status reason full of mrkdwn control characters
    reason = "done <with> notes & more; " * 200
    record = record_of(variant(read_event("job-succeeded"), statusReason=reason))
    assert record.failure is None

    # When its card is rendered
    payload = slack.render(record)

    # Then the status reason is escaped and cut to 3,000 characters
    text = _cause_text(payload)
    assert text.startswith("*Status reason:* done &lt;with&gt; notes &amp; more;")
    assert len(text) == slack.SECTION_TEXT_MAX
    assert block_kit_problems(payload) == []


def test_a_long_failure_detail_gives_way_before_the_next_step_and_the_retry_line() -> None:
    # Given a failure whose detail alone is longer than a section may be
    record = huge_record()
    assert record.failure is not None
    assert len(record.failure.detail) > slack.SECTION_TEXT_MAX

    # When its card is rendered, then what happened, the next step and the retry line stay whole
    text = _cause_text(slack.render(record))
    assert record.failure.summary in text
    assert f"*Next step:* {alerts.mrkdwn_escape(record.failure.next_step)}" in text
    assert text.endswith("\n*Will Batch retry:* no")
    why = next(line for line in text.split("\n") if line.startswith("*Why:*"))
    assert why.endswith("…")


def test_slack_exit_code_is_the_latest_attempts() -> None:
    # Given three attempts that exited 1, 2 and then 137 (killed)
    event = read_event("job-failed-oom")
    for attempt, code in zip(event["detail"]["attempts"], (1, 2, 137), strict=True):
        attempt["container"]["exitCode"] = code
    facts = slack.render(record_of(event))["attachments"][0]["blocks"][1]["fields"]

    # Then the facts show the latest attempt's exit code
    exit_code = next(f["text"] for f in facts if f["text"].startswith("*Exit code*"))
    assert exit_code == "*Exit code*\n137 (SIGKILL)"


def test_slack_facts_carry_all_ten_fields() -> None:
    payload = slack.render(record_of("job-failed-oom", OOM_LOG))
    labels = [f["text"].split("\n")[0] for f in payload["attachments"][0]["blocks"][1]["fields"]]
    assert labels == [
        "*Job*", "*Queue*", "*Status*", "*Category*", "*Attempts*", "*Exit code*",
        "*Queue wait*", "*Run time*", "*Definition*", "*Total*",
    ]  # fmt: skip


def test_a_single_attempt_has_no_attempt_history() -> None:
    record = record_of("job-failed-app-error", APP_LOG)
    assert len(record.attempts) == 1
    payload = slack.render(record)
    assert "*Attempts*\n" not in json.dumps(payload)
    kinds = [block["type"] for block in payload["attachments"][0]["blocks"]]
    assert kinds == ["section", "section", "section", "actions", "context"]


def test_attempt_reasons_are_escaped_and_the_latest_attempts_kept() -> None:
    # Given ten attempts whose reasons are mrkdwn control characters (escaped, five times longer)
    event = read_event("job-failed-oom")
    first = event["detail"]["attempts"][0]
    attempts = []
    for number in range(10):
        attempt = json.loads(json.dumps(first))
        attempt["container"]["reason"] = f"reason {number} <b> " + "&" * 300
        attempts.append(attempt)
    payload = slack.render(record_of(variant(event, attempts=attempts)))

    # Then the attempt history is escaped, fits, and keeps the latest attempts
    history = _section_starting(payload, "*Attempts*")
    assert "reason 9 &lt;b&gt; &amp;&amp;" in history
    assert "`#10`" in history
    assert "`#1` " not in history
    assert block_kit_problems(payload) == []


def test_the_newest_log_lines_survive_when_escaping_makes_them_too_long() -> None:
    # Given log lines made of '<' (each four times longer once escaped)
    log = [f"line {i}: " + "<" * 390 for i in range(6)]
    payload = slack.render(record_of("job-failed-oom", log))

    # Then the log section fits, and the newest line is kept, the oldest dropped
    text = _section_starting(payload, "*Last ")
    assert "line 5: &lt;" in text
    assert "line 0: " not in text
    assert block_kit_problems(payload) == []


def test_the_log_heading_is_escaped() -> None:
    event = read_event("job-failed-oom")
    event["detail"]["attempts"][-1]["container"]["logStreamName"] = "r&d/<default>/86165a4"
    payload = slack.render(record_of(event, OOM_LOG))
    heading = _section_starting(payload, "*Last ").split("\n")[0]
    assert "r&amp;d/&lt;default&gt;/86165a4" in heading
    assert block_kit_problems(payload) == []


def test_the_log_heading_names_the_attempt_whose_log_was_read() -> None:
    # Given a job whose last attempt has a stream but no log group (another log driver): the
    # excerpt is read from the attempt before it
    record = record_of("job-failed-oom", OOM_LOG)
    *earlier, last = record.attempts
    record = record.model_copy(
        update={"attempts": [*earlier, last.model_copy(update={"log_group": None})]}
    )
    source = logtail.log_source(record)
    assert source is not None
    assert source.attempt == earlier[-1].number

    # When its log heading is written; then it names that attempt, its group and its stream
    heading = alerts.log_heading(record)
    assert heading == (
        f"Last {len(OOM_LOG)} log lines of attempt {source.attempt} "
        f"({source.log_group} {source.log_stream})"
    )


def test_slack_fields_escape_a_job_name() -> None:
    payload = slack.render(record_of(variant(read_event("job-failed-oom"), jobName="r&d<1>")))
    job = payload["attachments"][0]["blocks"][1]["fields"][0]["text"]
    assert job.startswith("*Job*\nr&amp;d&lt;1&gt;\n")


def test_an_over_long_link_gets_no_button_and_the_logs_button_is_primary() -> None:
    record = record_of("job-failed-oom", OOM_LOG)
    long = "https://console.aws.amazon.com/" + "a" * slack.BUTTON_URL_MAX
    record = record.model_copy(update={"links": record.links.model_copy(update={"console": long})})
    payload = slack.render(record)
    (actions,) = [b for b in payload["attachments"][0]["blocks"] if b["type"] == "actions"]
    assert [(b["action_id"], b.get("style")) for b in actions["elements"]] == [
        ("batchlens-logs", "primary")
    ]
    assert block_kit_problems(payload) == []
