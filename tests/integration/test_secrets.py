"""Planted secrets never leave the enricher: not in the history table (every item, scanned here
and only here), not on the topic (its SQS subscriber), not in the logs (Powertools' own output,
with DEBUG on and the raw event logged). The allowlist exempts names, and `redacted` counts.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from types import ModuleType

import boto3
import pytest

from batchlens.local import FakeLambdaContext, LocalStack
from tests.conftest import Json, SqsEventBuilder, read_event, variant
from tests.handler_app import captured_logs, load_handler

pytestmark = pytest.mark.integration

# Shaped like credentials, never issued.
AWS_KEY_ID = "AKIAIOSFODNN7PLANTED"
AWS_SECRET = "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"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJwbGFudGVkIn0.cGxhbnRlZC1zaWduYXR1cmU"
SLACK_TOKEN = "xoxb-111111111111-2222222222222-PLANTEDplantedPLANTED"
SLACK_WEBHOOK = "https://hooks.slack.com/services/T11111111/B22222222/PLANTEDplantedPLANTEDpl"
GITHUB_TOKEN = "ghp_PLANTEDt0kenF0rRedacti0nTest5NotReal0"
PRIVATE_KEY_BODY = "MIIEpAIBAAKCAQEAplantedPLANTEDplanted"
URL_PASSWORD = "pl4nted-url-pass"
FLAG_PASSWORD = "pl4nted-flag-pass"
ENV_PASSWORD = "pl4nted-env-pass"
PARAMETER_SECRET = "pl4nted-parameter"

SECRETS = (
    AWS_KEY_ID,
    AWS_SECRET,
    JWT,
    SLACK_TOKEN,
    "PLANTEDplantedPLANTEDpl",  # the webhook's secret path
    GITHUB_TOKEN,
    PRIVATE_KEY_BODY,
    URL_PASSWORD,
    FLAG_PASSWORD,
    ENV_PASSWORD,
    PARAMETER_SECRET,
)
LOG_GROUP = "/custom/batch/genomics"  # job-failed-oom's awslogs-group


def planted_event() -> Json:
    """The OOM job with a secret of every kind in every place a job carries text."""
    event = variant(read_event("job-failed-oom"))
    detail = event["detail"]
    detail["statusReason"] = (
        f"Essential container in task exited; aws_secret_access_key={AWS_SECRET} "
        f"TOKEN_BUCKET=acme-bucket"
    )
    detail["parameters"] = {
        "apiKey": PARAMETER_SECRET,
        "source": f"https://data.internal/export?user=etl&password={URL_PASSWORD}",
    }
    container = detail["container"]
    container["environment"] += [
        {"name": "DB_PASSWORD", "value": ENV_PASSWORD},
        {"name": "NOTES", "value": f"uploader {AWS_KEY_ID}"},
        {"name": "HOOK", "value": SLACK_WEBHOOK},
    ]
    container["command"] += ["--password", FLAG_PASSWORD, f"--token={JWT}"]
    container["reason"] = f"OutOfMemoryError: Container killed due to memory usage ({SLACK_TOKEN})"
    last = detail["attempts"][-1]
    last["statusReason"] = f"Essential container in task exited: posting to {SLACK_WEBHOOK}"
    last["container"]["reason"] = container["reason"]
    return event


PLANTED_LOG = (
    "loading reference",
    "-----BEGIN RSA PRIVATE KEY-----",
    PRIVATE_KEY_BODY,
    "-----END RSA PRIVATE KEY-----",
    f"git clone https://{GITHUB_TOKEN}@github.com/acme/pipeline",
    f"python align.py --password {FLAG_PASSWORD}",
    "Killed",
)


def seed_log(session: boto3.Session, stream: str, lines: tuple[str, ...] = PLANTED_LOG) -> None:
    logs = session.client("logs")
    now = int(time.time() * 1000)
    logs.create_log_group(logGroupName=LOG_GROUP)
    logs.create_log_stream(logGroupName=LOG_GROUP, logStreamName=stream)
    logs.put_log_events(
        logGroupName=LOG_GROUP,
        logStreamName=stream,
        # Now: CloudWatch Logs refuses events older than 14 days.
        logEvents=[{"timestamp": now + n, "message": m} for n, m in enumerate(lines)],
    )


@pytest.fixture
def app(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """The handler with DEBUG logs, the raw event logged, TOKEN_BUCKET allowlisted and the
    planted job's log group readable."""
    for name, value in stack.environment.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("REDACT_ALLOWLIST", "TOKEN_BUCKET")
    monkeypatch.setenv("POWERTOOLS_LOGGER_LOG_EVENT", "true")
    # The planted job logs to /custom/batch/genomics, outside the default /aws/batch/ prefix;
    # the excerpt must be read so the test can prove a secret in the log is masked in the alert.
    monkeypatch.setenv("JOB_LOG_GROUP_PREFIX", "/custom/batch/")
    module = load_handler()
    level = module.logger.log_level
    module.logger.setLevel("DEBUG")
    yield module
    module.logger.setLevel(level)
    module.__dict__["_enricher"] = None


def test_no_planted_secret_reaches_the_table_the_topic_or_the_logs(
    app: ModuleType,
    aws_session: boto3.Session,
    stack: LocalStack,
    make_sqs_event: SqsEventBuilder,
    lambda_context: FakeLambdaContext,
) -> None:
    # Given a failed job carrying every kind of secret, its log stream carrying more, and a
    # poison record whose detail-type echoes a key id
    event = planted_event()
    seed_log(aws_session, event["detail"]["attempts"][-1]["container"]["logStreamName"])
    poison = variant(read_event("job-failed-oom"), envelope={"detail-type": f"Job {AWS_KEY_ID}"})
    batch = make_sqs_event([event, poison])

    # When the real handler processes the batch (logging at DEBUG, the raw event included)
    with captured_logs(app) as output:
        response = app.handler(batch, lambda_context)
    logs = output.getvalue()

    # Then the good record was stored and alerted, the poison one reported, and logs written
    assert [f["itemIdentifier"] for f in response["batchItemFailures"]] == [
        batch["Records"][1]["messageId"]
    ]
    dynamodb = aws_session.client("dynamodb")
    items = dynamodb.scan(TableName=stack.table_name)[
        "Items"
    ]  # the test only: batchlens never scans
    table = json.dumps(items)
    sqs = aws_session.client("sqs")
    notifications = json.dumps(
        sqs.receive_message(QueueUrl=stack.alert_queue_url, MaxNumberOfMessages=10)["Messages"]
    )
    assert event["detail"]["jobId"] in table
    assert event["detail"]["jobId"] in notifications
    assert "Poison record" in logs
    assert event["detail"]["jobName"] in logs  # the raw event was logged, masked
    # And no secret is anywhere
    for secret in SECRETS:
        assert secret not in table, secret
        assert secret not in notifications, secret
        assert secret not in logs, secret

    # And the record counts what it masked, quotes the masked log, and keeps the allowlisted name
    latest = next(i for i in items if i["sk"]["S"] == "LATEST")
    record = json.loads(latest["record"]["S"])
    assert record["redacted"] >= 5
    assert "TOKEN_BUCKET=acme-bucket" in record["statusReason"]
    alert = json.loads(json.loads(json.loads(notifications)[0]["Body"])["Message"])
    assert alert["logExcerpt"], "the alert quotes the job's log"
    assert any("****" in line for line in alert["logExcerpt"])


# Found by a review: each leaked to the table, the topic or the logs before its fix.
CUT_URL_PASSWORD = "Vq8rT2mZx7LpW4nK"
REDIS_PASSWORD = "r3dis-Pl4nted-pw"
PGP_BODY = "lQOYBGX3planted0PGPsecretKEYmaterialAAAAAAAA"
OVERRIDE_PASSWORD = "pl4nted-override-pass"


def reviewed_event() -> Json:
    """A terminated job whose reason's URL password ends where the failure summary cuts it, and
    whose command holds JSON overrides with a password."""
    event = variant(read_event("job-failed-oom"))
    detail = event["detail"]
    reason = (
        "Stopped by orchestrator step migrate-returns; "
        + "x" * 49
        + f" could not reach postgres://etl_admin:{CUT_URL_PASSWORD}@db.internal:5432/returns"
    )
    detail["statusReason"] = reason
    detail["isTerminated"] = True
    detail["container"].pop("reason", None)
    detail["container"]["exitCode"] = 143
    for attempt in detail["attempts"]:
        attempt["statusReason"] = reason
        attempt["container"].pop("reason", None)
        attempt["container"]["exitCode"] = 143
    overrides = {"environment": [{"name": "DB_PASSWORD", "value": OVERRIDE_PASSWORD}]}
    detail["container"]["command"] = [
        *("aws", "batch", "submit-job", "--container-overrides"),
        json.dumps(overrides),
    ]
    return event


def test_secrets_a_review_found_stay_out_of_the_table_the_topic_and_the_logs(
    app: ModuleType,
    aws_session: boto3.Session,
    stack: LocalStack,
    make_sqs_event: SqsEventBuilder,
    lambda_context: FakeLambdaContext,
) -> None:
    # Given the job, and a log with a Redis URL without a user and an OpenPGP key
    event = reviewed_event()
    lines = (
        f"cache: rediss://:{REDIS_PASSWORD}@cache.internal:6380/0",
        "-----BEGIN PGP PRIVATE KEY BLOCK-----",
        PGP_BODY,
        "-----END PGP PRIVATE KEY BLOCK-----",
        "Killed",
    )
    seed_log(aws_session, event["detail"]["attempts"][-1]["container"]["logStreamName"], lines)
    batch = make_sqs_event([event])

    # When the real handler processes it
    with captured_logs(app) as output:
        response = app.handler(batch, lambda_context)

    # Then it was stored and alerted, with the log quoted, and no secret went anywhere
    assert response["batchItemFailures"] == []
    table = json.dumps(aws_session.client("dynamodb").scan(TableName=stack.table_name)["Items"])
    sqs = aws_session.client("sqs")
    notifications = json.dumps(
        sqs.receive_message(QueueUrl=stack.alert_queue_url, MaxNumberOfMessages=10)["Messages"]
    )
    assert event["detail"]["jobId"] in notifications
    assert "cache.internal" in notifications  # the excerpt was read and quoted
    for secret in (CUT_URL_PASSWORD, REDIS_PASSWORD, PGP_BODY, OVERRIDE_PASSWORD):
        assert secret not in table, secret
        assert secret not in notifications, secret
        assert secret not in output.getvalue(), secret
