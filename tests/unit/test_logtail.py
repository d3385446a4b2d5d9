"""Log excerpts: the last lines of the latest attempt, masked and cut to fit; any read error leaves
the alert without an excerpt instead of blocking it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.stub import Stubber

from batchlens import logtail
from batchlens.events import parse_event
from batchlens.logtail import MAX_EXCERPT_CHARS, MAX_LINE_CHARS, excerpt_lines, fetch_excerpt
from batchlens.records import JobRecord, normalise
from batchlens.redact import MASK, Redactor
from tests.conftest import read_event, variant

if TYPE_CHECKING:
    from mypy_boto3_logs.type_defs import LogStreamTypeDef


def record_of(name: str) -> JobRecord:
    return normalise(parse_event(read_event(name)))


class Logs:
    """A real CloudWatch Logs client whose GetLogEvents answers `pages` in turn (Stubber: botocore
    still validates every request and answer against the service model), or fails with `error`
    (an error code, or an exception raised before anything is sent); it keeps the requests."""

    def __init__(
        self,
        pages: Sequence[list[str]] = (),
        error: str | Exception | None = None,
        streams: Sequence[LogStreamTypeDef] | None = None,
        listings: Sequence[dict[str, Any]] = (),
    ) -> None:
        self.client = boto3.client(
            "logs", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
        )
        self.requests: list[dict[str, Any]] = []
        self.listings: list[dict[str, Any]] = []  # DescribeLogStreams requests
        events = self.client.meta.events
        events.register("before-parameter-build.logs.GetLogEvents", self._keep)
        events.register("before-parameter-build.logs.DescribeLogStreams", self._keep_listing)
        stubber = Stubber(self.client)
        if streams is not None:  # a training job's streams, listed before any read
            stubber.add_response("describe_log_streams", {"logStreams": list(streams)})
        for listing in listings:  # and the listings that follow it, in turn
            stubber.add_response("describe_log_streams", listing)
        for number, page in enumerate(pages, start=1):
            answer = {
                "events": [{"timestamp": 1, "message": message} for message in page],
                "nextBackwardToken": f"b/{number}",
                "nextForwardToken": "f/0",
            }
            stubber.add_response("get_log_events", answer)
        if pages and error is None:  # the stream's start: its token handed back, no events
            end = {"events": [], "nextBackwardToken": f"b/{len(pages)}", "nextForwardToken": "f/0"}
            stubber.add_response("get_log_events", end)
        if isinstance(error, str):
            stubber.add_client_error("get_log_events", service_error_code=error)
        if isinstance(error, Exception):
            events.register("before-send.cloudwatch-logs.GetLogEvents", self._raiser(error))
        else:
            stubber.activate()

    def _keep(self, params: dict[str, Any], **_: Any) -> None:
        self.requests.append(dict(params))

    def _keep_listing(self, params: dict[str, Any], **_: Any) -> None:
        self.listings.append(dict(params))

    @staticmethod
    def _raiser(error: Exception) -> Any:
        def send(**_: Any) -> None:
            raise error

        return send


def fetch(logs: Logs, record: JobRecord, lines: int = 20) -> JobRecord:
    return fetch_excerpt(logs.client, record, lines, Redactor())


# --- the pure part -------------------------------------------------------------------------------


def test_keeps_the_last_lines_of_multi_line_messages() -> None:
    messages = ["one", "two\nthree", "four\n", "five\r\n"]
    assert excerpt_lines(messages, 3)[0] == ["three", "four", "five"]


def test_zero_lines_turns_excerpts_off() -> None:
    assert excerpt_lines(["a", "b"], 0) == ([], 0)


def test_masks_secrets_even_across_lines_and_counts_them() -> None:
    messages = [
        "export DB_PASSWORD=hunter2-prod-Zx9",
        "-----BEGIN RSA PRIVATE KEY-----",
        "MIIEowIBAAKCAQEA7",
        "-----END RSA PRIVATE KEY-----",
        "done",
    ]
    lines, masked = excerpt_lines(messages, 20, Redactor())
    text = "\n".join(lines)
    assert "hunter2-prod-Zx9" not in text
    assert "MIIEowIBAAKCAQEA7" not in text
    assert f"DB_PASSWORD={MASK}" in text
    assert masked == 2


def test_a_line_ending_in_a_secrets_name_never_masks_the_next_line() -> None:
    # Given lines that end in a secret's name with no value on that line: argparse naming the
    # missing --api-key (the job's failure), and an environment dump with an empty password
    messages = [
        "train.py: error: the following arguments are required: --api-key",
        "+ echo 'train.py exited with 2'",
        "SMTP_PASSWORD=",
        "DB_HOST=db.internal",
        "psycopg2.OperationalError: could not connect to server",
    ]

    # When they are excerpted; then every line is quoted as the job wrote it: each line is one
    # write, and the next one is no secret's value
    assert excerpt_lines(messages, 10, Redactor()) == (messages, 0)

    # And a value on the name's own line is still masked
    assert excerpt_lines(["--api-key sk-live", "next"], 10, Redactor()) == (
        [f"--api-key {MASK}", "next"],
        1,
    )


def test_only_the_lines_shown_count_as_masked() -> None:
    # Given a log whose secret sits above the lines the excerpt shows
    messages = ["DB_PASSWORD=hunter2", "connecting", "ValueError: no customer"]

    # When its last two lines are excerpted; then nothing shown was masked, so none is counted
    assert excerpt_lines(messages, 2, Redactor()) == (messages[1:], 0)
    # And with the secret's line shown, it is masked and counted
    assert excerpt_lines(messages, 3, Redactor()) == ([f"DB_PASSWORD={MASK}", *messages[1:]], 1)


def test_masks_credentials_inside_colour_codes() -> None:
    # A colour code right before a key leaves no word boundary for the key's pattern to find
    messages = [
        "\x1b[32mINFO\x1b[0m uploading with key \x1b[36mAKIAIOSFODNN7EXAMPLE\x1b[0m",
        "\x1b[31mERROR\x1b[0m auth \x1b[33mghp_FAKEt0kenF0rRedacti0nTest5NotReal000\x1b[0m no",
    ]
    lines, masked = excerpt_lines(messages, 20, Redactor())
    assert lines == [f"INFO uploading with key {MASK}", f"ERROR auth {MASK} no"]
    assert masked == 2


def test_strips_colour_codes_and_control_characters() -> None:
    lines, _ = excerpt_lines(["\x1b[31mERROR\x1b[0m\tboom\x07"], 5)
    assert lines == ["ERROR    boom"]


def test_cuts_long_lines_and_drops_the_oldest_to_fit() -> None:
    lines, _ = excerpt_lines([f"{i} " + "x" * 5_000 for i in range(50)], 50)
    assert all(len(line) <= MAX_LINE_CHARS for line in lines)
    assert sum(len(line) + 1 for line in lines) <= MAX_EXCERPT_CHARS
    assert lines[-1].startswith("49 ")
    assert lines[-1].endswith("…")


# --- reading CloudWatch Logs ---------------------------------------------------------------------


def test_reads_the_latest_attempts_stream_from_the_end() -> None:
    # Given the OOM job (three attempts, each with its own stream)
    record = record_of("job-failed-oom")
    logs = Logs([["heap at 98%", "Killed"]])

    # When its excerpt is fetched
    quoted = fetch(logs, record, 20)

    # Then the third attempt's stream was read backwards, once
    # (then once more, older, only to find the stream starts there: 2 lines of the 20 wanted)
    request, older = logs.requests
    assert older == {**request, "nextToken": "b/1"}
    latest = record.attempts[-1]
    assert request == {
        "logGroupName": latest.log_group,
        "logStreamName": latest.log_stream_name,
        "startFromHead": False,
        "limit": 20,
    }
    assert quoted.log_excerpt == ["heap at 98%", "Killed"]
    assert record.log_excerpt is None  # records are immutable


def test_follows_empty_pages_backwards_a_bounded_number_of_times() -> None:
    logs = Logs([[], [], ["late line"]])
    quoted = fetch(logs, record_of("job-failed-app-error"), 5)
    assert quoted.log_excerpt == ["late line"]
    assert [r.get("nextToken") for r in logs.requests] == [None, "b/1", "b/2"]

    endless = Logs([[]] * 10)
    assert fetch(endless, record_of("job-failed-app-error"), 5).log_excerpt is None
    assert len(endless.requests) == logtail.MAX_PAGES


@pytest.mark.parametrize(
    "error",
    [
        "ResourceNotFoundException",
        "AccessDeniedException",
        "ThrottlingException",
        TimeoutError("read timed out"),
    ],
)
def test_a_failed_read_leaves_the_record_without_an_excerpt(
    error: str | Exception, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="batchlens")
    logs = Logs(error=error)
    record = record_of("job-failed-app-error")
    assert fetch(logs, record) is record
    assert len(logs.requests) == 1
    # the read failed for this reason, not another (such as the unit tests' network guard)
    code = error if isinstance(error, str) else type(error).__name__
    assert [r.getMessage() for r in caplog.records] == [f"No log excerpt: {code}"]


@pytest.mark.parametrize("name", ["job-failed-image-pull", "job-queue-blocked-capacity"])
def test_no_stream_means_no_call(name: str) -> None:
    logs = Logs([["never"]])
    record = record_of(name)
    assert not logtail.wants_excerpt(record, 20)
    assert fetch(logs, record) is record
    assert logs.requests == []


# --- SageMaker training jobs: the stream is found by the training job's name --------------------

TRAINING_JOB = "AWSBatchllm-sft-7b-0314f98347b8d951353d06fa47d60957ea0f"


def stream(host: int, epoch: int, created: int) -> LogStreamTypeDef:
    return {"logStreamName": f"{TRAINING_JOB}/algo-{host}-{epoch}", "creationTime": created}


def test_a_failed_training_jobs_stream_is_found_by_its_name_then_read() -> None:
    # Given a failed SageMaker service job, whose training job wrote one stream
    record = record_of("service-job-failed")
    logs = Logs([["epoch 3", "ValueError: Input contains NaN"]], streams=[stream(1, 1741950800, 5)])

    # When its excerpt is fetched
    assert logtail.wants_excerpt(record, 20)
    quoted = fetch(logs, record, 20)

    # Then the training job's streams were listed by name (with the "/" that keeps another job
    # whose name starts with this one out), and that stream read from its end
    assert logs.listings == [
        {
            "logGroupName": "/aws/sagemaker/TrainingJobs",
            "logStreamNamePrefix": f"{TRAINING_JOB}/",
            "limit": logtail.TRAINING_STREAMS_LISTED,
        }
    ]
    request, _ = logs.requests  # the second finds the stream's start
    assert request["logGroupName"] == "/aws/sagemaker/TrainingJobs"
    assert request["logStreamName"] == f"{TRAINING_JOB}/algo-1-1741950800"
    assert request["startFromHead"] is False
    assert quoted.log_excerpt == ["epoch 3", "ValueError: Input contains NaN"]
    # And the alert's record names the stream it quotes, as a container job's does
    assert quoted.attempts[-1].log_stream_name == request["logStreamName"]
    assert record.attempts[-1].log_stream_name is None


def test_the_leader_hosts_newest_stream_is_quoted() -> None:
    # Given the streams of a training job on several hosts, its first one restarted once
    streams = [
        stream(1, 1741950800, created=100),
        stream(1, 1741951300, created=600),
        stream(10, 1741950800, created=900),
        stream(2, 1741950800, created=700),
    ]
    # When one is chosen; then it is the first host's (the leader), its newest one
    assert logtail.training_stream(streams) == f"{TRAINING_JOB}/algo-1-1741951300"
    # And streams named otherwise rank after SageMaker's own, newest first among themselves
    odd: list[LogStreamTypeDef] = [
        {"logStreamName": "x/other", "creationTime": 5},
        {"logStreamName": "x/y", "creationTime": 9},
    ]
    assert logtail.training_stream(odd) == "x/y"
    assert logtail.training_stream([*odd, stream(3, 1, created=1)]) == f"{TRAINING_JOB}/algo-3-1"
    assert logtail.training_stream([]) is None


def test_a_training_job_without_a_stream_alerts_without_an_excerpt(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given a training job that failed before its algorithm started: SageMaker wrote no stream
    caplog.set_level(logging.INFO, logger="batchlens")
    record = record_of("service-job-failed")
    logs = Logs(streams=[])

    # When its excerpt is fetched; then nothing is read, and one INFO line says why
    assert fetch(logs, record) is record
    assert len(logs.listings) == 1
    assert logs.requests == []
    assert [r.getMessage() for r in caplog.records] == [
        f"No log excerpt: no log stream for training job {TRAINING_JOB}"
    ]


def test_a_service_attempt_that_ran_no_training_job_has_no_log_to_find() -> None:
    # Given a service job whose attempt names another kind of SageMaker resource (Batch may run
    # more service job types than training)
    event = read_event("service-job-failed")
    (attempt,) = event["detail"]["attempts"]
    attempt["serviceResourceId"]["value"] = attempt["serviceResourceId"]["value"].replace(
        ":training-job/", ":processing-job/"
    )
    record = normalise(parse_event(variant(event, attempts=[attempt])))

    # Then there is nothing to look for, and no call is made
    assert logtail.log_source(record) is None
    assert not logtail.wants_excerpt(record, 20)


def test_streams_of_another_training_job_are_never_quoted() -> None:
    # Given a listing that (against its prefix) holds another job's stream only
    logs = Logs([["never"]], streams=[{"logStreamName": "OtherJob/algo-1-1", "creationTime": 1}])

    # When the excerpt is fetched; then nothing is read
    record = record_of("service-job-failed")
    assert fetch(logs, record) is record
    assert logs.requests == []


def lower_cased() -> JobRecord:
    """The failed service job as it would read if Batch reported its training job's ARN in lower
    case (SageMaker does so in some ARNs), its streams keeping the name as created."""
    event = read_event("service-job-failed")
    for attempt in [*event["detail"]["attempts"], event["detail"]["latestAttempt"]]:
        resource = attempt["serviceResourceId"]
        resource["value"] = resource["value"].lower()
    return normalise(parse_event(event))


def test_a_lower_cased_training_job_arn_still_finds_the_stream_as_sagemaker_named_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given a failed service job whose training job ARN lost its upper-case letters, while the
    # group's recent streams hold that job's (spelt as created) among others
    caplog.set_level(logging.INFO, logger="batchlens")
    record = lower_cased()
    lowered = TRAINING_JOB.lower()
    recent: list[LogStreamTypeDef] = [
        {"logStreamName": "AWSBatchother-0314/algo-1-1741950900"},
        {"logStreamName": f"{TRAINING_JOB}X/algo-1-1741950850"},  # a longer name: not this job
        stream(2, 1741950800, created=7),
    ]
    logs = Logs(
        [["ValueError: Input contains NaN"]],
        streams=[],
        listings=[{"logStreams": recent}, {"logStreams": [stream(1, 1741950800, created=5)]}],
    )

    # When its excerpt is fetched
    assert logtail.wants_excerpt(record, 20)
    quoted = fetch(logs, record)

    # Then the name the ARN gave found nothing; the group's newest streams gave the name as
    # created; and that name's leader stream was read
    assert logs.listings == [
        {
            "logGroupName": "/aws/sagemaker/TrainingJobs",
            "logStreamNamePrefix": f"{lowered}/",
            "limit": logtail.TRAINING_STREAMS_LISTED,
        },
        {
            "logGroupName": "/aws/sagemaker/TrainingJobs",
            "orderBy": "LastEventTime",
            "descending": True,
            "limit": logtail.TRAINING_STREAMS_LISTED,
        },
        {
            "logGroupName": "/aws/sagemaker/TrainingJobs",
            "logStreamNamePrefix": f"{TRAINING_JOB}/",
            "limit": logtail.TRAINING_STREAMS_LISTED,
        },
    ]
    request, _ = logs.requests  # the second finds the stream's start
    assert request["logStreamName"] == f"{TRAINING_JOB}/algo-1-1741950800"
    assert quoted.log_excerpt == ["ValueError: Input contains NaN"]
    assert quoted.attempts[-1].log_stream_name == f"{TRAINING_JOB}/algo-1-1741950800"
    # And one INFO line records what the ARN did, for whoever wonders about the extra calls
    assert [r.getMessage() for r in caplog.records] == [
        f"Training job {lowered} is named {TRAINING_JOB} in its log streams: its ARN "
        "lower-cased the name"
    ]


@pytest.mark.parametrize("last_page", [False, True])
def test_a_lower_cased_training_job_not_among_the_newest_streams_alerts_without_an_excerpt(
    caplog: pytest.LogCaptureFixture, last_page: bool
) -> None:
    # Given a lower-cased training job ARN whose job wrote no stream, and a busy group: more
    # pages of newer streams than are searched, or one page in all
    caplog.set_level(logging.INFO, logger="batchlens")
    record = lower_cased()
    busy = [{"logStreamName": f"AWSBatchjob-{n}/algo-1-1"} for n in range(3)]
    pages: list[dict[str, Any]] = [
        {"logStreams": busy, "nextToken": f"page-{n}"} for n in range(logtail.RECENT_PAGES)
    ]
    if last_page:
        pages = [{"logStreams": busy}]
    logs = Logs([["never"]], streams=[], listings=pages)

    # When its excerpt is fetched; then the newest streams are searched a bounded number of
    # pages, following SageMaker's page tokens while there are any, and nothing is read
    assert fetch(logs, record) is record
    followed = [page.get("nextToken") for page in pages[:-1]]
    assert [listing.get("nextToken") for listing in logs.listings] == [None, None, *followed]
    assert logs.requests == []
    assert [r.getMessage() for r in caplog.records] == [
        f"No log excerpt: no log stream for training job {TRAINING_JOB.lower()}"
    ]


def test_a_lower_case_name_spelt_so_in_its_streams_is_not_looked_up_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given a training job named in lower case, whose stream the name lookup missed (it was
    # created since) but the newest streams list
    caplog.set_level(logging.INFO, logger="batchlens")
    record = lower_cased()
    lowered = TRAINING_JOB.lower()
    logs = Logs(streams=[], listings=[{"logStreams": [{"logStreamName": f"{lowered}/algo-1-1"}]}])

    # When its excerpt is fetched; then the same name is not listed a second time
    assert fetch(logs, record) is record
    assert [listing.get("orderBy") for listing in logs.listings] == [None, "LastEventTime"]
    # (the Stubber refuses a call it was not given before that list could record it: the log
    # shows one, or a request the last listing's missing page token would have made invalid)
    assert [r.getMessage() for r in caplog.records] == [
        f"No log excerpt: no log stream for training job {lowered}"
    ]


def test_training_job_logs_are_not_read_when_the_stack_turns_them_off() -> None:
    record = record_of("service-job-failed")
    assert logtail.wants_excerpt(record, 20, training_jobs=True)
    assert not logtail.wants_excerpt(record, 20, training_jobs=False)
    # a container job's log does not depend on that switch
    assert logtail.wants_excerpt(record_of("job-failed-oom"), 20, training_jobs=False)


def test_job_log_group_prefix_does_not_govern_training_job_logs() -> None:
    # Given the default prefix, which covers Batch's groups and not SageMaker's
    source = logtail.log_source(record_of("service-job-failed"))
    assert source is not None
    assert source.training_job == TRAINING_JOB
    # Then the training job's log is not outside it: TrainingJobLogs grants that read
    assert not logtail.outside_prefix(source, "/aws/batch/")
    container = logtail.log_source(record_of("job-failed-oom"))
    assert container is not None
    assert logtail.outside_prefix(container, "/aws/batch/")


def test_only_failures_with_a_stream_want_an_excerpt() -> None:
    assert logtail.wants_excerpt(record_of("job-failed-oom"), 20)
    assert not logtail.wants_excerpt(record_of("job-failed-oom"), 0)
    assert not logtail.wants_excerpt(record_of("job-succeeded"), 20)


# --- what the excerpt keeps, masks and counts -----------------------------------------------------

KEY_BODY = [f"MIIEpAIBAAKCAQEA{n:02d}planted+key/material" for n in range(25)]


def test_a_private_key_whose_top_is_above_the_window_is_still_masked() -> None:
    # Given a log that printed a 27-line private key, then died: its last 20 events (the page
    # GetLogEvents answers for limit=20) start inside the key, below its BEGIN line
    log = ["loading", "-----BEGIN RSA PRIVATE KEY-----", *KEY_BODY]
    log += ["-----END RSA PRIVATE KEY-----", "Killed"]
    logs = Logs([log[-20:]])

    # When the excerpt is fetched
    quoted = fetch(logs, record_of("job-failed-app-error"), 20)

    # Then none of the key's lines is quoted, and the job's last words still are
    assert quoted.log_excerpt is not None
    text = "\n".join(quoted.log_excerpt)
    assert not any(line in text for line in KEY_BODY)
    assert quoted.log_excerpt[-1] == "Killed"
    assert quoted.redacted == 1


def test_a_log_that_ends_inside_a_private_key_masks_it_to_the_end() -> None:
    # Given a job killed while it printed a private key (no END line)
    messages = ["loading", "-----BEGIN OPENSSH PRIVATE KEY-----", *KEY_BODY[:3]]

    # When its excerpt is cut; then the key is masked from its BEGIN line on
    assert excerpt_lines(messages, 20, Redactor()) == (["loading", MASK], 1)


def test_a_line_of_exactly_400_characters_is_kept_whole() -> None:
    # Given lines of 400 and 401 characters (README: lines are cut to 400)
    exact, over = "a" * 400, "b" * 401

    # When they are excerpted
    lines, _ = excerpt_lines([exact, over], 5)

    # Then the first is whole, the second cut to 400 with an ellipsis
    assert lines == [exact, "b" * 399 + "…"]


def test_the_excerpt_holds_2500_characters_counting_one_line_break_per_line() -> None:
    # Given six lines of 399 characters and one of 99: 2,500 with a line break each
    lines = [f"{n}" + "x" * 398 for n in range(6)] + ["y" * 99]

    # When they are excerpted, then all fit
    assert excerpt_lines(lines, 20)[0] == lines

    # And one character more drops the oldest line
    longer = [*lines[:-1], "y" * 100]
    assert excerpt_lines(longer, 20)[0] == longer[1:]


def test_blank_lines_around_the_excerpt_and_trailing_spaces_are_dropped() -> None:
    # Given a log whose last lines are blank or only whitespace around the one that matters
    messages = ["", "   ", "ERROR boom   ", "\t", ""]

    # When its last three lines are excerpted; then only the line that says something is quoted
    assert excerpt_lines(messages, 3) == (["ERROR boom"], 0)


def test_a_fetched_excerpt_adds_what_it_masked_to_the_records_count() -> None:
    # Given a record that already masked two values, and a log line holding a password
    record = record_of("job-failed-app-error").model_copy(update={"redacted": 2})
    logs = Logs([["export DB_PASSWORD=hunter2-prod-Zx9", "Killed"]])

    # When its excerpt is fetched
    quoted = fetch(logs, record, 20)

    # Then the password is masked and counted on top of the record's own
    assert quoted.log_excerpt == [f"export DB_PASSWORD={MASK}", "Killed"]
    assert quoted.redacted == 3


@pytest.mark.parametrize(
    ("error", "level"),
    [("ResourceNotFoundException", logging.INFO), ("AccessDeniedException", logging.WARNING)],
)
def test_a_missing_stream_is_logged_as_info_any_other_failure_as_a_warning_with_the_job(
    error: str, level: int, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a read that fails with `error`
    caplog.set_level(logging.INFO, logger="batchlens")
    record = record_of("job-failed-app-error")

    # When the excerpt is fetched
    fetch(Logs(error=error), record)

    # Then one line at `level` names the job, its log group and the error
    (line,) = caplog.records
    assert line.levelno == level
    fields = vars(line)
    assert (fields["job_id"], fields["error"]) == (record.job_id, error)
    assert fields["log_group"] == record.attempts[-1].log_group


def test_a_blocked_queue_never_quotes_an_earlier_attempts_log() -> None:
    # Given a job blocked in its queue after a first attempt that wrote a log stream
    failed = read_event("job-failed-app-error")["detail"]["attempts"][0]
    blocked = normalise(
        parse_event(variant(read_event("job-queue-blocked-capacity"), attempts=[failed]))
    )
    assert blocked.failure is not None
    assert logtail.log_source(blocked) is not None

    # When asked whether its alert wants an excerpt; then no: the blocked queue is the news
    assert not logtail.wants_excerpt(blocked, 20)


def test_a_partial_newest_page_is_completed_from_older_pages() -> None:
    # Given a stream whose newest page (CloudWatch pages by time: a partial page does not mean
    # the stream is done) holds only the last line, the traceback above it on the page before
    logs = Logs([["ValueError: boom"], ["Traceback (most recent call last):", '  File "app.py"']])

    # When 3 lines are wanted
    quoted = fetch(logs, record_of("job-failed-app-error"), 3)

    # Then the excerpt has all 3, oldest first, read by following the backward token
    assert quoted.log_excerpt == [
        "Traceback (most recent call last):",
        '  File "app.py"',
        "ValueError: boom",
    ]
    assert [r.get("nextToken") for r in logs.requests] == [None, "b/1"]


def test_a_message_ending_in_a_line_break_counts_as_one_line() -> None:
    # Given a newest page of two messages that end in a line break (a driver or a print that
    # keeps it), the traceback's first line on the page before
    logs = Logs(
        [['  File "app.py"\n', "ValueError: boom\n"], ["Traceback (most recent call last):"]]
    )

    # When 3 lines are wanted; then the page before is read too: the two messages are two lines
    quoted = fetch(logs, record_of("job-failed-app-error"), 3)
    assert quoted.log_excerpt == [
        "Traceback (most recent call last):",
        '  File "app.py"',
        "ValueError: boom",
    ]


def test_a_progress_bar_line_shows_its_last_state_not_its_first() -> None:
    # tqdm redraws its bar with carriage returns: the awslogs driver keeps them in one event
    bar = "\r".join(f"epoch 3: {p:3d}%|{'#' * (p // 5):<20}| {p}/100" for p in range(101))
    lines, _ = excerpt_lines([bar, "RuntimeError: CUDA out of memory"], 5)
    assert lines[0].startswith("epoch 3: 100%")
    assert lines[-1] == "RuntimeError: CUDA out of memory"
    # and a secret redrawn over its name is masked still
    assert excerpt_lines(["DB_PASSWORD=\rhunter2-prod"], 1, Redactor())[0] == [
        f"DB_PASSWORD={MASK}"
    ]


def test_an_older_page_that_fails_keeps_the_newer_lines_read() -> None:
    logs = Logs([["Killed"]], error="ThrottlingException")
    assert fetch(logs, record_of("job-failed-app-error"), 5).log_excerpt == ["Killed"]
