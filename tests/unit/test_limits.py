"""Size limits: a record too large for a DynamoDB item or an SNS message is cut by one documented
rule (first and latest attempts, shorter text, no container detail) and says `truncated: true`;
a record that fits is left exactly as it is, up to the last byte.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import pytest

from batchlens import limits
from batchlens.alerts import build_alert
from batchlens.events import parse_event
from batchlens.records import Attempt, JobRecord, normalise
from tests.conftest import read_event

KB = 1024


def record_of(name: str) -> JobRecord:
    return normalise(parse_event(read_event(name)))


def huge_job(attempts: int = 1_000, reason_bytes: int = 100 * KB) -> JobRecord:
    """The OOM job with `attempts` attempts, each with a `reason_bytes` reason, and as long a
    status reason."""
    record = record_of("job-failed-oom")
    template = record.attempts[-1]
    many = [
        template.model_copy(update={"number": n, "reason": f"attempt {n}: " + "r" * reason_bytes})
        for n in range(1, attempts + 1)
    ]
    return record.model_copy(
        update={
            "attempts": many,
            "attempts_used": attempts,
            "attempts_allowed": attempts,
            "status_reason": "s" * reason_bytes,
        }
    )


def alert_bytes(record: JobRecord) -> int:
    alert = limits.fit_alert(record, build_alert)
    return limits.sns_message_bytes(alert.message, alert.subject, alert.attributes)


# --- the rule ----------------------------------------------------------------------------------


def test_a_job_with_1000_attempts_and_100_kb_reasons_fits_the_history_and_sns() -> None:
    # Given a job with 1,000 attempts whose reasons are 100 KB each (about 100 MB of JSON)
    record = huge_job()
    assert limits.record_bytes(record) > 100 * limits.DYNAMODB_ITEM_MAX_BYTES

    # When it is fitted for the history, and its alert for SNS
    stored = limits.fit_for_store(record)
    alert = limits.fit_alert(stored, build_alert)

    # Then both fit, both say truncated, and both keep the first and the latest attempts
    assert limits.record_bytes(stored) <= limits.RECORD_MAX_BYTES
    assert limits.sns_message_bytes(alert.message, alert.subject, alert.attributes) <= (
        limits.SNS_MESSAGE_MAX_BYTES
    )
    published = json.loads(json.loads(alert.message)["default"])
    for kept in (stored.to_json_dict(), published):
        assert kept["truncated"] is True
        numbers = [attempt["number"] for attempt in kept["attempts"]]
        assert numbers[0] == 1
        assert numbers[-1] == 1_000
        assert kept["attemptsUsed"] == 1_000
        assert kept["jobId"] == record.job_id
        assert kept["failure"]["category"] == "OUT_OF_MEMORY"
    # And the latest attempt's reason still starts as it did
    assert stored.attempts[-1].reason is not None
    assert stored.attempts[-1].reason.startswith("attempt 1000: rrr")


def test_each_step_keeps_the_first_and_latest_attempts_and_shortens_text() -> None:
    record = huge_job(attempts=30, reason_bytes=20 * KB)
    for step in limits.STEPS:
        cut = limits.cut(record, step)
        numbers = [attempt.number for attempt in cut.attempts]
        assert numbers == [1, *range(31 - step.latest_attempts, 31)]
        assert all(len(a.reason or "") <= step.text for a in cut.attempts)
        assert len(cut.status_reason or "") <= step.text
        assert cut.truncated


def test_container_detail_goes_at_step_3_and_names_are_cut_at_step_4() -> None:
    record = huge_job(attempts=3, reason_bytes=10).model_copy(
        update={"job_name": "n" * 300, "log_excerpt": ["line one", "line two"]}
    )
    second, third, fourth = limits.STEPS[1:]
    kept = limits.cut(record, second)
    assert kept.attempts[-1].log_stream_name == record.attempts[-1].log_stream_name
    assert kept.log_excerpt == ["line one", "line two"]
    dropped = limits.cut(record, third)
    assert all(a.log_stream_name is None and a.log_url is None for a in dropped.attempts)
    assert all(a.resource_arn is None for a in dropped.attempts)
    assert dropped.log_excerpt is None
    assert dropped.job_name == record.job_name
    names = limits.cut(record, fourth)
    assert len(names.job_name) == limits.NAME_MAX
    assert names.job_id == record.job_id
    assert names.event_id == record.event_id


def test_a_record_that_fits_is_returned_as_it_is() -> None:
    record = record_of("job-failed-oom")
    assert limits.fit_for_store(record) is record
    assert limits.fit_alert(record, build_alert).record is record
    assert record.truncated is False
    assert record.to_json_dict()["truncated"] is False


def test_a_record_of_exactly_the_limit_is_kept_and_one_byte_less_cuts_it() -> None:
    # Given a record padded so that its JSON is exactly `limit` bytes
    limit = 300 * KB
    base = record_of("job-failed-oom")
    pad = limit - limits.record_bytes(base.model_copy(update={"status_reason": ""}))
    record = base.model_copy(update={"status_reason": "p" * pad})
    assert limits.record_bytes(record) == limit

    # When it is fitted to exactly its size, then it is untouched
    assert limits.fit_record(record, limit) is record
    # And one byte less cuts it, by the first step, under the limit
    cut = limits.fit_record(record, limit - 1)
    assert cut.truncated
    assert limits.record_bytes(cut) <= limit - 1
    assert cut.status_reason is not None
    assert len(cut.status_reason) == limits.STEPS[0].text


def test_the_cheap_bound_never_lets_an_oversized_record_through() -> None:
    # Non-BMP characters are 12 bytes of JSON each; long integers count their digits
    wide = record_of("job-failed-oom").model_copy(update={"status_reason": "\U0001f600" * 40_000})
    assert limits.record_bytes(wide) > limits.RECORD_MAX_BYTES
    assert limits.fit_for_store(wide).truncated
    attempt: Attempt = wide.attempts[-1].model_copy(update={"exit_code": 10**4000})
    digits = wide.model_copy(update={"status_reason": None, "attempts": [attempt] * 120})
    assert limits.record_bytes(digits) > limits.RECORD_MAX_BYTES
    assert limits.record_bytes(limits.fit_for_store(digits)) <= limits.RECORD_MAX_BYTES


def test_an_alert_the_builder_would_shorten_is_cut_by_the_rule_and_marked() -> None:
    # Given a record that fits the history but not three times over in one SNS message
    record = record_of("job-failed-oom").model_copy(update={"status_reason": "x" * 120 * KB})
    assert limits.fit_for_store(record) is record

    # When its alert is built, then the published record is whole-or-truncated, never silently cut
    alert = limits.fit_alert(record, build_alert)
    published = json.loads(json.loads(alert.message)["default"])
    assert published["truncated"] is True
    assert alert_bytes(record) <= limits.SNS_MESSAGE_MAX_BYTES


# --- DynamoDB item size ---------------------------------------------------------------------------


def test_item_size_counts_names_and_values_as_dynamodb_does() -> None:
    assert limits.dynamodb_item_bytes({"pk": {"S": "JOB#1"}}) == 2 + 5
    assert limits.dynamodb_item_bytes({"n": {"N": "12345"}}) == 1 + 4  # 5 digits: 3 + 1
    assert limits.dynamodb_item_bytes({"b": {"BOOL": True}, "z": {"NULL": True}}) == 4
    assert limits.dynamodb_item_bytes({"s": {"S": "é"}}) == 1 + 2  # UTF-8 bytes
    assert limits.dynamodb_item_bytes({"l": {"L": [{"S": "ab"}]}}) == 1 + 3 + 1 + 2
    assert limits.dynamodb_item_bytes({"m": {"M": {"k": {"S": "ab"}}}}) == 1 + 3 + 1 + 1 + 2


@pytest.mark.parametrize(("extra", "fits"), [(0, True), (1, False)])
def test_an_item_of_exactly_400_kb_fits_and_one_byte_more_does_not(extra: int, fits: bool) -> None:
    head = {"pk": {"S": "JOB#1"}, "sk": {"S": "LATEST"}}
    used = limits.dynamodb_item_bytes(head) + len("record")
    item = {**head, "record": {"S": "x" * (limits.DYNAMODB_ITEM_MAX_BYTES - used + extra)}}
    assert limits.dynamodb_item_bytes(item) == limits.DYNAMODB_ITEM_MAX_BYTES + extra
    assert limits.fits_dynamodb(item) is fits


def test_sns_size_counts_the_message_subject_and_every_attribute() -> None:
    size = limits.sns_message_bytes("héllo", "subj", {"status": "FAILED"})
    assert size == 6 + 4 + len("status") + len("String") + len("FAILED")


# --- behaviour pinned by a mutation review ---------------------------------------------------


SNS_DOCUMENTED_MAX = 262_144  # "256 KiB (262,144 bytes)", message + attribute names, types, values


@dataclass(frozen=True)
class Sized:
    message: str
    subject: str
    attributes: Mapping[str, str]


def padded_to(total: int) -> Callable[[JobRecord], Sized]:
    """A builder whose message for the whole record measures exactly `total` bytes with its
    subject and attributes; a cut record's message is not padded."""

    def build(candidate: JobRecord) -> Sized:
        body = {"default": candidate.to_json(), "email": ""}
        subject, attributes = "[batchlens] FAILED: x", {"status": "FAILED"}
        if not candidate.truncated:
            used = limits.sns_message_bytes(json.dumps(body), subject, attributes)
            body["email"] = "e" * (total - used)
        return Sized(json.dumps(body), subject, attributes)

    return build


@pytest.mark.parametrize(("extra", "cut"), [(0, False), (1, True)])
def test_an_sns_message_of_exactly_256_kib_is_sent_whole_and_one_byte_more_is_cut(
    extra: int, cut: bool
) -> None:
    record = normalise(parse_event(read_event("job-failed-oom")))
    alert = limits.fit_alert(record, padded_to(SNS_DOCUMENTED_MAX + extra))
    size = limits.sns_message_bytes(alert.message, alert.subject, alert.attributes)
    published = json.loads(json.loads(alert.message)["default"])
    assert published["truncated"] is cut
    assert size <= SNS_DOCUMENTED_MAX
    assert size == SNS_DOCUMENTED_MAX or cut


def test_a_cut_text_ends_with_an_ellipsis_and_one_of_exactly_the_step_limit_is_not_cut() -> None:
    # Given a record with one status reason one character over step 1's limit, and attempt
    # reasons of exactly that limit
    record = normalise(parse_event(read_event("job-failed-oom")))
    step = limits.STEPS[0]
    exact = "r" * step.text
    attempts = [a.model_copy(update={"reason": exact}) for a in record.attempts]
    record = record.model_copy(
        update={"status_reason": "s" * (step.text + 1), "attempts": attempts}
    )

    cut = limits.cut(record, step)

    # Then the over-long one is cut and says so; the one that fits is untouched
    assert cut.status_reason == "s" * (step.text - 1) + "…"
    assert [a.reason for a in cut.attempts] == [exact] * len(attempts)


def test_the_last_step_never_cuts_the_ids_that_identify_the_job_and_the_event() -> None:
    # Given ids longer than NAME_MAX (the parser takes up to 200 bytes)
    long_event_id, long_job_id = "e" * 180, "j" * 180
    record = normalise(parse_event(read_event("job-failed-oom"))).model_copy(
        update={"event_id": long_event_id, "job_id": long_job_id}
    )

    cut = limits.cut(record, limits.STEPS[-1])

    assert (cut.event_id, cut.job_id) == (long_event_id, long_job_id)
