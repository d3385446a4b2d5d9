"""Alerts: which transitions alert under the stack's settings, and the one SNS message that serves
every subscriber (JobRecord JSON for machines, readable text for email, Amazon Q chat JSON).
"""

from __future__ import annotations

import json

import pytest

from batchlens import alerts, limits
from batchlens.alerts import SNS_MAX_BYTES, alert_key, build_alert, should_alert, subject
from batchlens.events import parse_event
from batchlens.records import JobRecord, normalise
from batchlens.settings import ALERTABLE, Settings
from tests.conftest import EventLoader, Json, read_event, variant
from tests.limits import subject_problems

DEFAULTS = Settings.from_env({})
FILTER_ATTRIBUTES = {"alert", "status", "category", "jobQueue", "jobKind", "eventType"}
PROTOCOL_BODIES = {"default", "sqs", "lambda", "email", "https"}


def record_of(name_or_event: str | Json) -> JobRecord:
    event = read_event(name_or_event) if isinstance(name_or_event, str) else name_or_event
    return normalise(parse_event(event))


# --- which transitions alert ----------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "job-failed-oom",
        "job-failed-app-error",
        "service-job-failed",
        "eks-failed-oom",
        "array-parent-failed",
        "multinode-failed",
        "job-terminated-by-user",
        "job-queue-blocked-capacity",
        "service-queue-blocked",
    ],
)
def test_failures_and_blocked_queues_alert_by_default(name: str) -> None:
    # Given the default settings (FAILED, QUEUE_BLOCKED); when a failure or block arrives
    # Then it alerts
    assert should_alert(record_of(name), DEFAULTS)


@pytest.mark.parametrize(
    "name",
    [
        "job-succeeded",
        "service-job-succeeded",
        "ecs-properties-succeeded",
        "job-running",
        "job-runnable",
        "job-submitted-unknown-fields",
    ],
)
def test_normal_transitions_do_not_alert_by_default(name: str) -> None:
    assert not should_alert(record_of(name), DEFAULTS)


def test_alert_on_succeeded_makes_successes_alert_and_drops_blocked_queues() -> None:
    # Given ALERT_ON=SUCCEEDED,FAILED
    settings = Settings.from_env({"ALERT_ON": "SUCCEEDED,FAILED"})

    # When a success, a failure and a blocked queue arrive
    # Then the success and the failure alert, the blocked queue no longer does
    assert should_alert(record_of("job-succeeded"), settings)
    assert should_alert(record_of("job-failed-oom"), settings)
    assert not should_alert(record_of("job-queue-blocked-capacity"), settings)


@pytest.mark.parametrize("name", ["array-child-failed", "multinode-node-failed"])
def test_array_children_and_multinode_nodes_never_alert(name: str) -> None:
    # Given settings that alert on everything
    everything = Settings.from_env(
        {
            "ALERT_ON": ",".join(sorted(ALERTABLE)),
            "ALERT_ON_RETRIED_ATTEMPTS": "true",
            "ALERT_ON_DEPENDENCY_FAILURES": "true",
        }
    )

    # When a failed child or node arrives, then it stays silent (its parent alerts)
    record = record_of(name)
    assert record.status == "FAILED"
    assert not should_alert(record, everything)


def test_dependency_failures_are_silent_unless_enabled() -> None:
    # Given a job that failed only because the job it depends on failed
    record = record_of("job-failed-dependency")
    assert record.failure is not None
    assert record.failure.category == "DEPENDENCY_FAILED"

    # When judged under the defaults, and with ALERT_ON_DEPENDENCY_FAILURES=true
    enabled = Settings.from_env({"ALERT_ON_DEPENDENCY_FAILURES": "true"})

    # Then only the second alerts
    assert not should_alert(record, DEFAULTS)
    assert should_alert(record, enabled)


def test_retried_attempts_alert_only_when_enabled() -> None:
    # Given a job sent back to RUNNABLE because Batch is retrying it
    record = record_of("job-retried-runnable")

    # When judged even with RUNNABLE in ALERT_ON, and then with retried attempts enabled
    runnable = Settings.from_env({"ALERT_ON": "RUNNABLE,FAILED"})
    enabled = Settings.from_env({"ALERT_ON_RETRIED_ATTEMPTS": "true"})

    # Then a retry is not an alert unless asked for
    assert not should_alert(record, DEFAULTS)
    assert not should_alert(record, runnable)
    assert should_alert(record, enabled)


# --- the message ------------------------------------------------------------------------------


def test_message_attributes_let_subscriptions_filter(load_event: EventLoader) -> None:
    # Given a failed job
    event = load_event("job-failed-oom")
    record = record_of(event)

    # When its alert is built
    attributes = build_alert(record).attributes

    # Then every filterable attribute is present, with the job's own values
    assert set(attributes) == FILTER_ATTRIBUTES
    assert attributes["alert"] == "true"
    assert attributes["status"] == event["detail"]["status"]
    assert attributes["jobQueue"] == event["detail"]["jobQueue"].split("/")[-1]
    assert attributes["jobKind"] == "CONTAINER"
    assert attributes["eventType"] == "JOB_STATE_CHANGE"
    assert attributes["category"] == "OUT_OF_MEMORY"


def test_a_blocked_queue_alerts_with_status_queue_blocked() -> None:
    attributes = build_alert(record_of("service-queue-blocked")).attributes
    assert attributes["status"] == "QUEUE_BLOCKED"
    assert attributes["eventType"] == "SERVICE_JOB_QUEUE_BLOCKED"
    assert attributes["jobKind"] == "SERVICE"
    assert attributes["category"] == "CAPACITY"


def test_a_success_alert_has_category_none() -> None:
    assert build_alert(record_of("job-succeeded")).attributes["category"] == "NONE"


def test_one_message_carries_a_body_per_protocol() -> None:
    # Given a failed job's record
    record = record_of("job-failed-oom")

    # When its alert is built
    body = json.loads(build_alert(record).message)

    # Then machines get the JobRecord JSON, chat gets Amazon Q's custom notification
    assert set(body) == PROTOCOL_BODIES
    for machine in ("default", "sqs", "lambda"):
        assert json.loads(body[machine]) == record.to_json_dict()
    chat = json.loads(body["https"])
    assert (chat["version"], chat["source"]) == ("1.0", "custom")
    assert chat["content"]["title"]
    assert chat["content"]["nextSteps"]
    assert chat["metadata"]["threadId"] == record.job_id


def test_email_body_is_readable_text_with_cause_next_step_and_links() -> None:
    # Given a failed job's record
    record = record_of("job-failed-oom")
    assert record.failure is not None

    # When its alert is built
    email = json.loads(build_alert(record).message)["email"]

    # Then the email is prose, not JSON, and says what happened, what to do and where to look
    with pytest.raises(json.JSONDecodeError):
        json.loads(email)
    assert record.job_name in email
    assert record.failure.summary in email
    assert record.failure.next_step in email
    assert record.links.console in email
    assert record.links.logs is not None
    assert record.links.logs in email
    assert len(email.splitlines()) > 5


def test_subject_is_one_ascii_line_under_100_characters(load_event: EventLoader) -> None:
    # Given a job with a very long name
    event = variant(load_event("job-failed-oom"), jobName="genome-alignment-" + "x" * 200)

    # When its subject is rendered
    line = subject(record_of(event))

    # Then SNS accepts it: ASCII, no line breaks, under 100 characters, still names status
    assert len(line) < 100
    assert line.isascii()
    assert "\n" not in line
    assert "FAILED" in line
    assert "genome-alignment-" in line


def test_alert_key_is_job_status_and_attempt() -> None:
    # Given the same failure delivered twice (two envelopes), and a later attempt of the same job
    first = record_of("job-failed-spot")
    again = record_of(variant(read_event("job-failed-spot")))
    earlier_attempt = record_of(
        variant(
            read_event("job-failed-spot"),
            attempts=read_event("job-failed-spot")["detail"]["attempts"][:1],
        )
    )

    # When their alert keys are computed
    # Then redeliveries share one key, a different attempt has its own
    assert alert_key(first) == alert_key(again)
    assert alert_key(first) != alert_key(earlier_attempt)
    assert alert_key(first)["jobId"] == first.job_id


def test_bodies_stay_under_the_sns_limit_for_a_worst_case_record(load_event: EventLoader) -> None:
    # Given a job with ten attempts that each carry long reasons
    event = load_event("job-failed-oom")
    attempt = event["detail"]["attempts"][0]
    attempt["statusReason"] = "Essential container in task exited " + "y" * 1500
    attempt["container"]["reason"] = "OutOfMemoryError: Container killed due to memory usage " + (
        "z" * 1500
    )
    event["detail"]["attempts"] = [attempt] * 10
    event["detail"]["retryStrategy"]["attempts"] = 10
    event["detail"]["statusReason"] = "Essential container in task exited " + "w" * 4000

    # When its alert is built
    alert = build_alert(record_of(event))

    # Then one publish still fits SNS's message limit
    assert len(alert.message.encode()) + len(alert.subject.encode()) < SNS_MAX_BYTES


# --- behaviour pinned by a mutation review ---------------------------------------------------


def record_with(**detail: object) -> JobRecord:
    event = read_event("job-failed-oom")
    event["detail"].update(detail)
    return normalise(parse_event(event))


def test_subject_turns_line_breaks_and_tabs_into_single_spaces() -> None:
    line = alerts.subject(record_with(jobName="  nightly\n\tbuild  "))
    assert line == "[batchlens] FAILED: nightly build (OUT_OF_MEMORY)"


def test_subject_names_the_job_id_when_the_job_has_no_name() -> None:
    record = record_with(jobName="")
    assert alerts.subject(record) == f"[batchlens] FAILED: {record.job_id} (OUT_OF_MEMORY)"


def test_an_attempt_reason_takes_at_most_300_characters_of_its_email_line() -> None:
    record = record_with(jobName="x")
    long_reason = "because " + "r" * 1_000
    attempts = [a.model_copy(update={"reason": long_reason}) for a in record.attempts]
    email = alerts.email_text(record.model_copy(update={"attempts": attempts}))
    row = next(line for line in email.splitlines() if "because" in line)
    assert row.endswith("…")
    # The reason, from its "because", is cut to 300 characters, the marker included
    assert len("because" + row.split("because", 1)[1]) == 300


def test_the_builder_alone_keeps_room_for_the_subject_and_attributes() -> None:
    # Given the longest status reason whose unshortened message still fits 262,144 bytes alone
    def message_bytes(n: int) -> int:
        record = record_with(statusReason="x" * n)
        return len(alerts._message(record, record.to_json(), shortened=False).encode())

    low, high = 0, 262_144
    while low < high:  # the largest n with message_bytes(n) <= 262,144
        mid = (low + high + 1) // 2
        low, high = (mid, high) if message_bytes(mid) <= 262_144 else (low, mid - 1)
    record = record_with(statusReason="x" * low)

    # When the builder builds its alert, then the whole publish fits, envelope included
    alert = alerts.build_alert(record)
    assert limits.sns_message_bytes(alert.message, alert.subject, alert.attributes) <= 262_144
    assert json.loads(json.loads(alert.message)["default"])["statusReason"] != "x" * low


def test_a_long_job_name_is_cut_with_a_marker_and_the_category_kept() -> None:
    line = alerts.subject(record_with(jobName="genome-alignment-" + "x" * 200))
    assert len(line) == alerts.SUBJECT_MAX
    assert line.endswith("x... (OUT_OF_MEMORY)")


@pytest.mark.parametrize("job_id", ["job\nid", "jöb-1", "job\x07bell"])
def test_subject_follows_the_sns_rules_when_it_falls_back_to_the_job_id(job_id: str) -> None:
    # Given a job whose name gives nothing to show (blank), so the subject names its id
    record = record_with(jobName="  ", jobId=job_id)

    # Then the subject is still one ASCII line that SNS accepts
    assert subject_problems(alerts.subject(record)) == []


def test_the_email_of_a_record_cut_by_the_size_rule_says_text_was_shortened() -> None:
    # Given a status reason too long for one SNS message (three of the bodies quote it), which
    # the size rule cuts before the builder has to
    record = limits.fit_for_store(record_with(statusReason="x" * 120 * 1024))

    # When its alert is built as the enricher builds it
    alert = limits.fit_alert(record, build_alert)

    # Then the published record says it was cut, and so does the email
    bodies = json.loads(alert.message)
    assert json.loads(bodies["default"])["truncated"] is True
    assert "Some text was shortened to fit AWS's size limits" in bodies["email"]
