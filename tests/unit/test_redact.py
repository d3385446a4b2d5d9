"""Redaction: secret-looking values are masked before anything is stored, logged or published,
and the record counts how many values it masked.
"""

from __future__ import annotations

import json

import pytest

from batchlens.alerts import build_alert
from batchlens.events import parse_event
from batchlens.records import normalise
from batchlens.redact import MASK, Redactor
from tests.conftest import EventLoader

# Shaped like credentials, never issued.
AWS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"
GITHUB_TOKEN = "ghp_FAKEt0kenF0rRedacti0nTest5NotReal000"
DB_PASSWORD = "hunter2-prod-Zx9"


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        (f"DB_PASSWORD={DB_PASSWORD}", DB_PASSWORD),
        ("export API_TOKEN = s3cr3t-value", "s3cr3t-value"),
        (f"--token={GITHUB_TOKEN}", GITHUB_TOKEN),
        ("--client-secret hush-hush-42", "hush-hush-42"),
        ("--api-key k-123456", "k-123456"),
        ("--access-key=letmein99", "letmein99"),
        ('{"password": "correct-horse"}', "correct-horse"),
        ("connect postgres://etl:pa55word@db.internal:5432/orders failed", "pa55word"),
        (f"credentials {AWS_KEY_ID} rejected", AWS_KEY_ID),
        ("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NSJ9.c2lnbmF0dXJlMTIz expired", "c2lnbmF0dXJl"),
        ("slack xoxb-123456789012-abcdefghijkl", "xoxb-123456789012"),
        ("posting to https://hooks.slack.com/services/T000/B000/XXXXXXXX", "T000/B000"),
        ("-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----", "MIIEow"),
        ("github_pat_11ABCDEFG0123456789_abcdefghijklmnop", "github_pat_11ABCDEFG"),
        # A quoted value is masked to its closing quote, spaces and all
        ('export DB_PASSWORD="correct horse battery staple"', "horse battery staple"),
        ("psql --password 'p@ss w0rd!' -h db", "w0rd!"),
        ('{"level":"error","password":"s3cr3t value here","msg":"login failed"}', "value here"),
        # JSON inside a JSON log line: its quotes are escaped
        (r'{"message":"request body {\"user\": \"etl\", \"password\": \"hunter2\"}"}', "hunter2"),
        # The other quote, or an escaped one, inside a quoted value does not end it
        ('export DB_PASSWORD="it\'s my s3cr3t" && run', "s3cr3t"),
        ("psql --password 'say \"hi\" s3cr3t' -h db", "s3cr3t"),
        (r'{"level":"error","password":"a\"b s3cr3t","msg":"login failed"}', "s3cr3t"),
        (r'{"message":"body {\"password\": \"a\\\"b s3cr3t\", \"user\": \"etl\"}"}', "s3cr3t"),
    ],
)
def test_secret_values_are_masked_and_counted(text: str, secret: str) -> None:
    # Given text carrying one secret; when it is redacted
    masked, count = Redactor().text(text)

    # Then the secret is gone, a mask stands in its place, and it counts once
    assert secret not in masked
    assert MASK in masked
    assert count == 1


@pytest.mark.parametrize(
    "text",
    [
        "CannotPullContainerError: pull image manifest has been retried 5 time(s)",
        "ResourceInitializationError: unable to pull secrets or registry auth: execution failed",
        "Essential container in task exited",
        "OutOfMemoryError: Container killed due to memory usage",
        "Host EC2 (instance i-0123456789abcdef0) terminated.",
        "THREADS=8 SAMPLE_ID=NA12878",
    ],
)
def test_ordinary_batch_reasons_are_left_alone(text: str) -> None:
    # Given a real Batch reason with no secret in it; when redacted; then it is unchanged
    assert Redactor().text(text) == (text, 0)


def test_masking_twice_changes_and_counts_nothing_more() -> None:
    # Given text that was already redacted
    once, first = Redactor().text(f"DB_PASSWORD={DB_PASSWORD} key {AWS_KEY_ID}")

    # When it is redacted again
    twice, second = Redactor().text(once)

    # Then it is the same text and nothing new is counted
    assert (first, second) == (2, 0)
    assert twice == once


def test_a_quoted_value_keeps_its_quotes_and_what_follows_it() -> None:
    masked, count = Redactor().text('DB_PASSWORD="two words" HOST="db one"; TOKEN=\\"x y\\" done')
    assert masked == f'DB_PASSWORD="{MASK}" HOST="db one"; TOKEN=\\"{MASK}\\" done'
    assert count == 2
    assert Redactor().text(masked) == (masked, 0)


def test_every_secret_in_one_text_is_counted() -> None:
    text = f"DB_PASSWORD={DB_PASSWORD} --token={GITHUB_TOKEN} id {AWS_KEY_ID}"
    masked, count = Redactor().text(text)
    assert count == 3
    assert not any(secret in masked for secret in (DB_PASSWORD, GITHUB_TOKEN, AWS_KEY_ID))


def test_allowlisted_names_keep_their_values_but_credentials_are_still_masked() -> None:
    # Given a redactor that allows the name TOKEN_BUCKET
    redactor = Redactor(allowlist=["token_bucket"])

    # When a value of that name, and a credential under an allowed name, are redacted
    plain, plain_count = redactor.text("TOKEN_BUCKET=acme-tokens")
    shaped, shaped_count = redactor.text(f"TOKEN_BUCKET={AWS_KEY_ID}")

    # Then the allowed value stays, the credential shape goes either way
    assert (plain, plain_count) == ("TOKEN_BUCKET=acme-tokens", 0)
    assert AWS_KEY_ID not in shaped
    assert shaped_count == 1
    assert redactor.is_secret_name("DB_PASSWORD")
    assert not redactor.is_secret_name("TOKEN_BUCKET")


def test_a_record_masks_planted_secrets_in_every_free_text_field(load_event: EventLoader) -> None:
    # Given the app-error job, with credentials planted in its reasons
    event = load_event("job-failed-app-error")
    detail = event["detail"]
    detail["statusReason"] = f"Upload refused for key {AWS_KEY_ID}"
    detail["attempts"][0]["statusReason"] = f"Essential container exited: --token={GITHUB_TOKEN}"
    detail["attempts"][0]["container"]["reason"] = f"login failed: DB_PASSWORD={DB_PASSWORD}"
    detail["container"]["reason"] = detail["attempts"][0]["container"]["reason"]

    # When it is normalised and rendered as an alert
    record = normalise(parse_event(event))
    stored = json.dumps(record.to_json_dict())
    published = build_alert(record).message

    # Then no secret reaches the record or any alert body, and the masked values are counted
    for secret in (AWS_KEY_ID, GITHUB_TOKEN, DB_PASSWORD):
        assert secret not in stored
        assert secret not in published
    assert record.redacted >= 3
    assert record.status_reason == f"Upload refused for key {MASK}"


def test_the_environment_and_command_never_reach_the_record(load_event: EventLoader) -> None:
    # Given the sample whose environment and command hold a password and a GitHub token
    event = load_event("job-failed-app-error")
    assert {"name": "DB_PASSWORD", "value": DB_PASSWORD} in event["detail"]["container"][
        "environment"
    ]
    assert f"--token={GITHUB_TOKEN}" in event["detail"]["container"]["command"]

    # When it is normalised and rendered as an alert
    record = normalise(parse_event(event))

    # Then neither value appears in the record or in any alert body
    for text in (json.dumps(record.to_json_dict()), build_alert(record).message):
        assert DB_PASSWORD not in text
        assert GITHUB_TOKEN not in text


def test_redacted_counts_exactly_the_masked_values(load_event: EventLoader) -> None:
    # Given a clean record (nothing to mask)
    clean = normalise(parse_event(load_event("job-succeeded")))
    assert clean.redacted == 0

    # When two of its free-text fields carry one secret each and it is redacted
    attempt = clean.attempts[0].model_copy(update={"reason": f"password={DB_PASSWORD}"})
    dirty = clean.model_copy(update={"status_reason": f"used {AWS_KEY_ID}", "attempts": [attempt]})
    redacted = Redactor().redact_record(dirty)

    # Then it counts two, and only those fields changed
    assert redacted.redacted == 2
    assert redacted.status_reason == f"used {MASK}"
    assert redacted.attempts[0].reason == f"password={MASK}"
    assert redacted.attempts[0].log_url == clean.attempts[0].log_url
    assert redacted.job_id == clean.job_id


def test_secrets_next_to_very_long_tokens_are_still_found() -> None:
    # Given a multi-kilobyte reason (a SageMaker trace, a base64 blob) around two secrets
    blob = "A" * 30_000
    text = f"{blob} postgres://etl:pa55word@db:5432/x DB_PASSWORD={DB_PASSWORD} {blob}"

    # When it is redacted (this used to backtrack quadratically over the blob)
    masked, count = Redactor().text(text)

    # Then both secrets are masked and the blobs are untouched
    assert count == 2
    assert "pa55word" not in masked
    assert DB_PASSWORD not in masked
    assert masked.startswith(blob)
    assert masked.endswith(blob)


# --- what masking leaves alone ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Only the password of a URL's user info goes: scheme, user, host and port stay
        (
            "connect postgres://etl:pa55word@db.internal:5432/orders failed",
            f"connect postgres://etl:{MASK}@db.internal:5432/orders failed",
        ),
        # A host and port with no user info hold no password
        (
            "GET https://api.internal:8443/v1/jobs failed",
            "GET https://api.internal:8443/v1/jobs failed",
        ),
    ],
)
def test_a_url_keeps_everything_but_its_password(text: str, expected: str) -> None:
    # Given a URL; when redacted; then only a password in its user info is masked
    masked, count = Redactor().text(text)
    assert (masked, count) == (expected, int(expected != text))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "GET /export?user=etl&password=s3cret&limit=10",
            f"GET /export?user=etl&password={MASK}&limit=10",
        ),
        ("token=abc;next=1", f"token={MASK};next=1"),
        ("DB_PASSWORD=abc,DB_HOST=db.internal", f"DB_PASSWORD={MASK},DB_HOST=db.internal"),
    ],
)
def test_an_unquoted_value_ends_at_a_query_or_list_separator(text: str, expected: str) -> None:
    # Given an unquoted secret value followed by `&`, `;` or `,` and more text
    # When redacted; then the value alone is masked and what follows it stays
    assert Redactor().text(text) == (expected, 1)


def test_the_record_masks_its_failure_summary(load_event: EventLoader) -> None:
    # Given a failed job's record whose failure summary quotes a key id
    record = normalise(parse_event(load_event("job-failed-oom")))
    assert record.failure is not None
    failure = record.failure.model_copy(update={"summary": f"Upload refused for {AWS_KEY_ID}"})

    # When it is redacted
    clean = Redactor().redact_record(record.model_copy(update={"failure": failure}))

    # Then the summary (an alert's subject line) is masked and counted
    assert clean.failure is not None
    assert clean.failure.summary == f"Upload refused for {MASK}"
    assert clean.redacted == record.redacted + 1
