"""`batchlens preview` renders every alert body offline, and the webhook helpers that need no
network (the secret's value, the URL check, Retry-After) behave.
"""

from __future__ import annotations

import io
import json
import weakref
from pathlib import Path

import pytest

from batchlens import webhook
from batchlens.alerts import SEVERITY_EMOJI, Severity
from batchlens.cli import main
from batchlens.logtail import excerpt_lines
from tests.conftest import EVENTS_DIR, read_event
from tests.limits import block_kit_problems, chat_problems

OOM = str(EVENTS_DIR / "job-failed-oom.json")


def run(*argv: str, stdin: str = "") -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err, stdin=io.StringIO(stdin))
    return code, out.getvalue(), err.getvalue()


def test_preview_email_prints_subject_and_text() -> None:
    code, out, err = run("preview", OOM)
    assert code == 0
    assert err == ""
    assert out.startswith("Subject: [batchlens] FAILED: align-NA12878-chr1 (OUT_OF_MEMORY)\n\n")
    assert "Next step:" in out


def test_preview_slack_and_chatbot_print_valid_json() -> None:
    _, slack_out, _ = run("preview", OOM, "--format", "slack")
    _, chat_out, _ = run("preview", OOM, "--format", "chatbot")
    assert block_kit_problems(json.loads(slack_out)) == []
    assert chat_problems(json.loads(chat_out)) == []


def test_preview_json_quotes_a_log_file_masked(tmp_path: Path) -> None:
    # Given a job log that prints a password
    log = tmp_path / "job.log"
    log.write_text("starting\nexport API_TOKEN=abc123secret\nKilled\n", encoding="utf-8")

    # When the JobRecord is previewed with it
    code, out, _ = run("preview", OOM, "--format", "json", "--log", str(log), "--lines", "2")

    # Then the last two lines are the excerpt, masked
    record = json.loads(out)
    assert code == 0
    assert record["logExcerpt"] == ["export API_TOKEN=****", "Killed"]
    assert record["redacted"] >= 1


def test_preview_quotes_no_log_from_a_group_the_enricher_may_not_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a stack whose JobLogGroupPrefix leaves out the OOM job's group (/custom/batch/genomics)
    monkeypatch.setenv("JOB_LOG_GROUP_PREFIX", "/aws/batch/")
    log = tmp_path / "job.log"
    log.write_text("starting\nKilled\n", encoding="utf-8")

    # When its alert is previewed with a log
    code, out, err = run("preview", OOM, "--format", "json", "--log", str(log))

    # Then it quotes nothing, as the enricher would, and says why
    assert code == 0
    assert json.loads(out)["logExcerpt"] is None
    assert err == (
        f"batchlens: {OOM}: note: log group /custom/batch/genomics is outside "
        "JOB_LOG_GROUP_PREFIX /aws/batch/; the enricher would not read it (not quoted)\n"
    )


def test_preview_notes_events_that_would_not_alert_and_reads_stdin() -> None:
    event = (EVENTS_DIR / "job-succeeded.json").read_text()
    code, out, err = run("preview", "-", "--format", "email", stdin=event)
    assert code == 0
    note = "does not alert with ALERT_ON=FAILED,QUEUE_BLOCKED (rendered anyway)"
    assert err == f"batchlens: <stdin>: note: {note}\n"
    assert "Subject: [batchlens] SUCCEEDED" in out


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("array-child-failed", "an array child never alerts on its own (its array job does)"),
        ("multinode-node-failed", "a multi-node node never alerts on its own (its main job does)"),
        (
            "job-retried-runnable",
            "an attempt Batch retries does not alert with ALERT_ON_RETRIED_ATTEMPTS=false",
        ),
        (
            "job-failed-dependency",
            "a job that failed only because a job it depends on failed does not alert with "
            "ALERT_ON_DEPENDENCY_FAILURES=false",
        ),
    ],
)
def test_preview_names_the_setting_that_keeps_a_failure_from_alerting(
    name: str, reason: str
) -> None:
    # Given a failure that the default settings keep quiet, for a reason other than ALERT_ON
    path = str(EVENTS_DIR / f"{name}.json")

    # When it is previewed; then the note says which rule or setting keeps it quiet
    code, out, err = run("preview", path)
    assert code == 0
    assert err == f"batchlens: {path}: note: {reason} (rendered anyway)\n"
    assert out.startswith("Subject: [batchlens] ")


@pytest.mark.parametrize(
    ("name", "setting"),
    [
        ("job-retried-runnable", "ALERT_ON_RETRIED_ATTEMPTS"),
        ("job-failed-dependency", "ALERT_ON_DEPENDENCY_FAILURES"),
    ],
)
def test_preview_notes_nothing_once_the_setting_allows_the_alert(
    name: str, setting: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(setting, "true")
    code, _, err = run("preview", str(EVENTS_DIR / f"{name}.json"))
    assert (code, err) == (0, "")


def test_preview_of_a_bad_file_names_it_and_fails(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    code, out, err = run("preview", str(bad), OOM, "--format", "json")
    assert code == 1
    assert f"{bad}: not JSON" in err
    assert json.loads(out)["jobName"] == "align-NA12878-chr1"


# --- webhook helpers (no network) ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "url"),
    [
        ("https://example.invalid/services/T/B/x\n", "https://example.invalid/services/T/B/x"),
        ('{"webhookUrl": "https://example.invalid/a"}', "https://example.invalid/a"),
        ('\n {"webhookUrl": "https://example.invalid/d"}\n', "https://example.invalid/d"),
        ({"url": "https://example.invalid/b"}, "https://example.invalid/b"),
        (b"https://example.invalid/c", "https://example.invalid/c"),
        ("http://127.0.0.1:8080/hook", "http://127.0.0.1:8080/hook"),
    ],
)
def test_webhook_url_from_a_secret(value: str | bytes | dict[str, str], url: str) -> None:
    assert webhook.url_from_secret(value) == url


@pytest.mark.parametrize(
    "value",
    ["http://example.invalid/plain-http", "ftp://example.invalid/x", "not a url", '{"x": 1}', "{"],
)
def test_a_secret_that_is_not_an_https_url_is_refused_without_echoing_it(value: str) -> None:
    with pytest.raises(webhook.WebhookError) as caught:
        webhook.url_from_secret(value)
    assert "example.invalid" not in str(caught.value)


@pytest.mark.parametrize(
    "inside",
    [" #prod-alerts", "\tcopy", "\u00e9", "\x7f"],
    ids=["space", "tab", "non-ascii", "delete"],
)
def test_a_webhook_url_with_a_space_or_a_stray_character_is_refused_without_echoing_it(
    inside: str,
) -> None:
    # http.client would refuse it later with an error that quotes the URL's secret path.
    token = "T0/B0/XXXXsecret"
    with pytest.raises(webhook.WebhookError, match="space or a non-ASCII") as caught:
        webhook.url_from_secret(f"https://hooks.example.invalid/services/{token}{inside}")
    assert token not in str(caught.value)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("3", 3.0), ("0", 0.0), (" 1.5 ", 1.5), (None, 1.0), ("soon", 1.0), ("-5", 0.0)],
)
def test_retry_after_in_seconds(header: str | None, seconds: float) -> None:
    assert webhook.retry_after_seconds(header) == seconds


def test_retry_after_as_an_http_date() -> None:
    assert webhook.retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past


@pytest.mark.parametrize(
    ("variable", "value", "said"),
    [
        ("ALERT_ON", "FAILED,BOGUS", "ALERT_ON names unknown statuses ['BOGUS']; allowed: ["),
        ("LOG_TAIL_LINES", "twenty", "LOG_TAIL_LINES: Input should be a valid integer"),
    ],
)
def test_a_bad_setting_in_the_environment_is_one_line_naming_it(
    variable: str, value: str, said: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a setting the stack would refuse at its cold start (a typo in ALERT_ON)
    monkeypatch.setenv(variable, value)

    # When an event is previewed; then one line says which and why, and nothing renders
    code, out, err = run("preview", OOM)
    assert code == 1
    assert out == ""
    assert err.startswith(f"batchlens: invalid setting in the environment: {said}")
    assert err.count("\n") == 1


@pytest.mark.parametrize(
    ("name", "environment"),
    [
        ("job-queue-blocked-capacity", {}),
        ("service-job-failed", {"TRAINING_JOB_LOGS": "false"}),
    ],
)
def test_preview_quotes_a_log_only_where_the_enricher_would(
    name: str, environment: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an event whose alert the enricher publishes without an excerpt (a blocked queue; a
    # SageMaker training job on a stack with TrainingJobLogs=false), and a log file
    for variable, value in environment.items():
        monkeypatch.setenv(variable, value)
    log = tmp_path / "job.log"
    log.write_text("starting\nboom\n")

    # When it is previewed with --log
    code, out, _ = run(
        "preview", str(EVENTS_DIR / f"{name}.json"), "--format", "json", "--log", str(log)
    )

    # Then the preview shows what a subscriber would receive: no excerpt
    assert code == 0
    assert json.loads(out)["logExcerpt"] is None


def test_preview_quotes_a_training_jobs_log_whatever_the_job_log_group_prefix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the default stack (TrainingJobLogs on, JobLogGroupPrefix /aws/batch/) and the log of
    # a failed SageMaker training job
    monkeypatch.setenv("JOB_LOG_GROUP_PREFIX", "/aws/batch/")
    log = tmp_path / "train.log"
    log.write_text("epoch 3\nValueError: Input contains NaN\n", encoding="utf-8")

    # When its alert is previewed with that log
    service_job = str(EVENTS_DIR / "service-job-failed.json")
    code, out, err = run("preview", service_job, "--format", "json", "--log", str(log))

    # Then it is quoted, as the enricher would quote the training job's stream
    assert code == 0
    assert json.loads(out)["logExcerpt"] == ["epoch 3", "ValueError: Input contains NaN"]
    assert err == ""


def test_a_log_file_that_cannot_be_read_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "job.log"
    code, out, err = run("preview", OOM, "--log", str(missing))
    assert (code, out) == (1, "")
    assert f"--log {missing}: No such file or directory" in err


def test_the_readme_preview_example_quotes_the_sample_log() -> None:
    # The README example: preview the app-error job with its sample log, 5 lines
    event = str(EVENTS_DIR / "job-failed-app-error.json")
    log = str(EVENTS_DIR / "job-failed-app-error.log")
    code, out, _ = run("preview", event, "--format", "json", "--log", log, "--lines", "5")
    assert code == 0
    assert (
        json.loads(out)["logExcerpt"][-1] == "ValueError: invoice INV-2025-02-0042 has no customer"
    )


# --- behaviour pinned by a mutation review ---------------------------------------------------


def documents(text: str) -> list[object]:
    """Every JSON document in `text`, one after the other (whitespace between them only)."""
    decoder, found, at = json.JSONDecoder(), [], 0
    while text[at:].strip():
        at += len(text[at:]) - len(text[at:].lstrip())
        value, at = decoder.raw_decode(text, at)
        found.append(value)
    return found


def test_preview_chatbot_prints_the_emoji_not_escapes() -> None:
    code, out, _ = run("preview", OOM, "--format", "chatbot")
    assert code == 0
    assert SEVERITY_EMOJI[Severity.CRITICAL] in out  # what the chat channel shows
    assert "\\ud83d" not in out


def test_several_events_as_json_are_consecutive_documents_with_no_rule() -> None:
    code, out, _ = run("preview", OOM, OOM, "--format", "json")
    assert code == 0
    assert [d["jobName"] for d in documents(out)] == ["align-NA12878-chr1"] * 2  # type: ignore[index]


def test_lines_0_turns_the_log_excerpt_off(tmp_path: Path) -> None:
    log = tmp_path / "job.log"
    log.write_text("starting\nKilled\n", encoding="utf-8")
    code, out, _ = run("preview", OOM, "--format", "json", "--log", str(log), "--lines", "0")
    assert code == 0
    assert json.loads(out)["logExcerpt"] is None


def test_allow_leaves_a_named_variable_unmasked(tmp_path: Path) -> None:
    log = tmp_path / "job.log"
    log.write_text("export API_TOKEN=abc123secret\nKilled\n", encoding="utf-8")
    code, out, _ = run(
        "preview", OOM, "--format", "json", "--log", str(log), "--allow", "API_TOKEN"
    )
    assert code == 0
    assert json.loads(out)["logExcerpt"] == ["export API_TOKEN=abc123secret", "Killed"]


def test_an_empty_log_file_quotes_no_excerpt_as_the_enricher(tmp_path: Path) -> None:
    log = tmp_path / "job.log"
    log.write_text("\n\n", encoding="utf-8")
    code, out, _ = run("preview", OOM, "--format", "json", "--log", str(log))
    assert code == 0
    assert json.loads(out)["logExcerpt"] is None


def test_an_empty_log_option_is_one_line_not_an_alert_without_its_log() -> None:
    # Given `--log "$LOG"` with the variable unset; when the preview runs
    code, out, err = run("preview", OOM, "--log", "")

    # Then it refuses, instead of quietly quoting no log
    assert (code, out) == (1, "")
    assert err == "batchlens: --log needs a file (or - for standard input)\n"


def test_preview_json_shows_the_published_body_not_the_input_record(tmp_path: Path) -> None:
    # A status reason three times SNS's limit is never published whole
    event = read_event("job-failed-oom")
    event["detail"]["statusReason"] = "x" * 800_000
    path = tmp_path / "big.json"
    path.write_text(json.dumps(event), encoding="utf-8")
    code, out, _ = run("preview", str(path), "--format", "json")
    assert code == 0
    assert len(json.loads(out)["statusReason"]) <= 8_192


def test_preview_slack_is_indented_for_people() -> None:
    code, out, _ = run("preview", OOM, "--format", "slack")
    assert code == 0
    assert out.startswith("{\n  ")


def test_preview_email_of_an_oversized_record_is_the_one_the_enricher_publishes(
    tmp_path: Path,
) -> None:
    # Given an event whose status reason makes its alert too big for SNS whole
    event = read_event("job-failed-oom")
    event["detail"]["statusReason"] = "x" * 120 * 1024
    path = tmp_path / "big.json"
    path.write_text(json.dumps(event), encoding="utf-8")

    # When it is previewed as the JobRecord and as the email
    _, record, _ = run("preview", str(path), "--format", "json")
    _, email, _ = run("preview", str(path))

    # Then both show the record cut by the size rule, as the enricher publishes it
    assert json.loads(record)["truncated"] is True
    assert len(json.loads(record)["statusReason"]) <= 8_192
    assert "Some text was shortened to fit AWS's size limits" in email


# --- review: --log and --lines edge cases ------------------------------------------------------


@pytest.mark.parametrize("lines", ["-3", "201"])
def test_preview_lines_outside_the_stacks_range_is_a_usage_error(lines: str) -> None:
    # LOG_TAIL_LINES is 0 to 200 in the stack; -3 must not silently turn excerpts off
    log = str(EVENTS_DIR / "job-failed-oom.log")
    with pytest.raises(SystemExit) as exit_:
        run("preview", OOM, "--log", log, "--lines", lines)
    assert exit_.value.code == 2


def test_preview_refuses_stdin_for_both_the_events_and_the_log() -> None:
    # Given the event on stdin and --log - too; then a usage error, not "<stdin>: not JSON"
    event = (EVENTS_DIR / "job-failed-oom.json").read_text(encoding="utf-8")
    code, out, err = run("preview", "-", "--log", "-", stdin=event)
    assert (code, out) == (2, "")
    assert "standard input" in err
    assert len(err.splitlines()) == 1


class _Line(str):
    """A log line that can be watched (weakly) for whether the reader still holds it."""


class _WatchedLog(io.StringIO):
    """A job log on standard input, `count` lines long, that only iterates: as it hands out each
    line it notes how many of those it handed out before are still held by the reader."""

    def __init__(self, count: int) -> None:
        super().__init__()
        self.count, self.given, self.most_held = count, 0, 0
        self._held: weakref.WeakSet[_Line] = weakref.WeakSet()

    # What iterating it calls; typeshed ignores the same override of _IOBase's bytes readline
    def readline(self, size: int | None = -1, /) -> str:  # type: ignore[override]
        self.most_held = max(self.most_held, len(self._held))
        if self.given == self.count:
            return ""
        self.given += 1
        text = "Killed\n" if self.given == self.count else f"step {self.given:07d} loss=0.1\n"
        line = _Line(text)
        self._held.add(line)
        return line

    def read(self, size: int | None = -1, /) -> str:
        raise AssertionError("the whole log was read at once")


def test_preview_quotes_a_huge_log_without_holding_all_of_it() -> None:
    # Given a 400,000-line job log (a chatty job's whole output) on standard input
    log = _WatchedLog(400_000)

    # When its last 3 lines are quoted
    out, err = io.StringIO(), io.StringIO()
    args = ["preview", OOM, "--format", "json", "--log", "-", "--lines", "3"]
    code = main(args, stdout=out, stderr=err, stdin=log)

    # Then every line was read, but never more than about the last 3 were held at once
    assert (code, err.getvalue()) == (0, "")
    assert log.given == 400_000
    assert json.loads(out.getvalue())["logExcerpt"][-1] == "Killed"
    assert log.most_held <= 4, f"{log.most_held} lines held at once"


def test_preview_quotes_a_progress_bar_as_the_enricher_does(tmp_path: Path) -> None:
    # Given a job log whose progress bar redraws its line with carriage returns (tqdm), as
    # CloudWatch holds it: one event per line, the carriage returns inside the event
    events = ["epoch 1", " 10%|#    |\r 50%|###  |\r100%|#####|", "Killed"]
    log = tmp_path / "job.log"
    log.write_bytes("\n".join([*events, ""]).encode())

    # When its alert is previewed quoting 3 lines
    code, out, _ = run("preview", OOM, "--format", "json", "--log", str(log), "--lines", "3")

    # Then the excerpt is the enricher's: the bar in its last state, one line of the three
    assert code == 0
    assert json.loads(out)["logExcerpt"] == excerpt_lines(events, 3)[0]
    assert excerpt_lines(events, 3)[0] == ["epoch 1", "100%|#####|", "Killed"]
