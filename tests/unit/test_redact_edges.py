"""Secrets the redaction once let through (a review's findings), each pinned by a test.

Every case here leaked before its fix: a URL password cut from its `@` by a failure text's
clip, a URL without a user name, an OpenPGP key, a Ruby hash, a terminal escape between a name
and its value, JSON inside a command argument, a namespaced tag key, one secret counted twice,
an `Authorization:` header's credential and a presigned URL's signature.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from batchlens.events import parse_event
from batchlens.logtail import excerpt_lines
from batchlens.records import normalise
from batchlens.redact import MASK, Redactor, guard_logger
from tests.conftest import read_event, variant

PASSWORD = "Vq8rT2mZx7LpW4nK"
PGP_BODY = "lQOYBGX3planted0PGPsecretKEYmaterialAAAAAAAA"


def test_a_failure_text_never_keeps_a_url_password_its_cut_parted_from_its_at() -> None:
    # Given a TerminateJob reason (any text) whose URL password ends where the failure summary
    # cuts the reason (150 characters), so the `@` that marks it is cut off
    url = f"postgres://etl_admin:{PASSWORD}@db.internal:5432/returns"
    reason = "Stopped by orchestrator step migrate-returns; " + "x" * 49 + " could not reach " + url
    event = read_event("job-terminated-by-user")
    event["detail"]["statusReason"] = reason
    for attempt in event["detail"]["attempts"]:
        attempt["statusReason"] = reason

    # When it is normalised
    record = normalise(parse_event(event))

    # Then the password is nowhere in the record, the failure's texts included
    assert record.failure is not None
    assert "etl_admin:" in record.failure.summary
    assert PASSWORD not in record.to_json()


@pytest.mark.parametrize(
    "text",
    [
        f"REDIS_URL=redis://:{PASSWORD}@cache.internal:6379/0",
        f"connecting to rediss://:{PASSWORD}@cache.internal:6380",
    ],
)
def test_a_url_password_without_a_user_name_is_masked(text: str) -> None:
    masked, count = Redactor().text(text)
    assert PASSWORD not in masked
    assert "://:****@cache.internal" in masked
    assert count == 1


def test_a_port_is_not_a_url_password() -> None:
    assert Redactor().text("see http://h:8080/x@y and http://:8080/a") == (
        "see http://h:8080/x@y and http://:8080/a",
        0,
    )


def test_an_openpgp_private_key_block_is_masked() -> None:
    text = (
        f"-----BEGIN PGP PRIVATE KEY BLOCK-----\n\n{PGP_BODY}\n=abcd\n"
        "-----END PGP PRIVATE KEY BLOCK-----\nafter"
    )
    masked, count = Redactor().text(text)
    assert PGP_BODY not in masked
    assert masked == f"{MASK}\nafter"
    assert count == 1


def test_an_openpgp_private_key_in_a_log_excerpt_is_masked_to_its_end() -> None:
    # Given the excerpt's window opening inside the key, below its BEGIN line
    messages = [PGP_BODY, "=abcd", "-----END PGP PRIVATE KEY BLOCK-----", "gpg: decryption failed"]
    lines, _ = excerpt_lines(messages, 20, Redactor())
    assert PGP_BODY not in "\n".join(lines)
    assert lines[-1] == "gpg: decryption failed"


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        (f'{{:password=>"{PASSWORD}", :host=>"db"}}', '{:password=>"****", :host=>"db"}'),
        (f"db_password => '{PASSWORD}'", "db_password => '****'"),
        (f'{{"api_token" => "{PASSWORD}"}}', '{"api_token" => "****"}'),
    ],
)
def test_a_fat_arrow_value_is_masked(text: str, masked: str) -> None:
    assert Redactor().text(text) == (masked, 1)


@pytest.mark.parametrize(
    "escapes",
    [
        ("\x1b[1m", "\x1b(B\x1b[m"),  # `tput bold`, `tput sgr0` with TERM=xterm
        ("\x1b]0;title\x07", "\x1b7"),  # a window title (OSC) and a cursor save
    ],
)
def test_terminal_escapes_between_a_secret_name_and_its_value_are_stripped(
    escapes: tuple[str, str],
) -> None:
    before, after = escapes
    secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYPLANTEDKEY"
    lines, count = excerpt_lines([f"{before}aws_secret_access_key{after}={secret}"], 20, Redactor())
    assert lines == ["aws_secret_access_key=****"]
    assert count == 1


@pytest.fixture
def guarded() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger guarded as the handler's is, writing to a string."""
    logger = logging.getLogger("batchlens.test-redact-edges")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.handlers, logger.propagate = [handler], False
    logger.setLevel(logging.DEBUG)
    guard_logger(logger)
    yield logger, stream
    logger.handlers = []


def test_json_in_a_command_argument_of_a_logged_event_is_masked_by_name(
    guarded: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = guarded
    event = variant(read_event("job-failed-oom"))
    overrides = {"environment": [{"name": "DB_PASSWORD", "value": "pl4nted-override-pass"}]}
    event["detail"]["container"]["command"] = [
        *("aws", "batch", "submit-job", "--container-overrides"),
        json.dumps(overrides),
    ]

    logger.info({"Records": [{"messageId": "m1", "body": json.dumps(event)}]})

    assert "pl4nted-override-pass" not in stream.getvalue()
    assert "DB_PASSWORD" in stream.getvalue()


@pytest.mark.parametrize("key", ["acme:db-password", "app/api-token", "team:svc/SECRET"])
def test_a_namespaced_key_that_looks_secret_is_masked_in_structured_data(
    guarded: tuple[logging.Logger, io.StringIO], key: str
) -> None:
    logger, stream = guarded
    logger.info({"detail": {"tags": {key: "pl4nted-tag-pass", "acme:team": "genomics"}}})
    assert "pl4nted-tag-pass" not in stream.getvalue()
    assert "genomics" in stream.getvalue()


def test_a_token_inside_a_url_password_counts_once() -> None:
    masked, count = Redactor().text(
        "git clone https://oauth2:glpat-AbCdEfGhIjKlMnOpQrSt@gitlab.com/x.git"
    )
    assert masked == "git clone https://oauth2:****@gitlab.com/x.git"
    assert count == 1


@pytest.mark.parametrize(
    "name",
    [
        "DB_PASS",
        "SMTP_PASS",
        "RABBITMQ_DEFAULT_PASS",
        "ENCRYPTION_KEY",
        "HMAC_KEY",
        "AIRFLOW__CORE__FERNET_KEY",
        "MASTER_KEY",
    ],
)
def test_common_secret_names_are_masked(name: str) -> None:
    redactor = Redactor()
    assert redactor.text(f"{name}=pl4nted-value ok") == (f"{name}=**** ok", 1)
    assert redactor.value(name, "pl4nted-value") == (MASK, 1)


@pytest.mark.parametrize("text", ["PASSED=3", "PASSENGER_COUNT=12", "passes=2", "s3_key=a/b.csv"])
def test_names_that_only_contain_pass_or_key_are_not_secret(text: str) -> None:
    assert Redactor().text(text) == (text, 0)


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        (
            'curl -H "Authorization: Bearer 9f8e7d6c5b4a39281706fedcba"',
            'curl -H "Authorization: Bearer ****"',
        ),
        ("authorization=Basic dXNlcjpodW50ZXIy", "authorization=Basic ****"),
        ("{'Authorization': 'token pl4nted0token0value'}", "{'Authorization': 'token ****'}"),
        (
            '{\\"Proxy-Authorization\\": \\"Basic YTpi\\"}',
            '{\\"Proxy-Authorization\\": \\"Basic ****\\"}',
        ),
    ],
)
def test_an_authorization_header_keeps_its_scheme_and_loses_its_credentials(
    text: str, masked: str
) -> None:
    assert Redactor().text(text) == (masked, 1)


def test_a_presigned_url_loses_its_signature_and_keeps_the_rest() -> None:
    signature = "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
    url = (
        "https://bucket.s3.amazonaws.com/out/model.tar.gz?X-Amz-Algorithm=AWS4-HMAC-SHA256"
        f"&X-Amz-Expires=3600&X-Amz-SignedHeaders=host&X-Amz-Signature={signature}"
    )
    cloudfront = "https://d111.cloudfront.net/a.csv?Expires=1767225600&Signature=Nql641NHEUkUaXQHZINK1FZ~SYeUSoBJMxjdgqrzIdzV2gyEXPDNv0pYdWJkflDKJ3xIu7lbwRpSkG98NBlgPi4ZJpRRnVX4kXAJK6tdNx6FucDB7OVqzcxkxHsGFd8VCG1BkC-Afh9~lOCMIYHIaiOB6~5jt9w2EOwi6sIIqrg_&Key-Pair-Id=K2JCJMDEHXQW5F"

    masked, count = Redactor().text(f"GET {url} 403")
    cf_masked, cf_count = Redactor().text(cloudfront)

    assert (masked, count) == (f"GET {url.replace(signature, MASK)} 403", 1)
    assert cf_count == 1
    assert "Signature=****&Key-Pair-Id=K2JCJMDEHXQW5F" in cf_masked


@pytest.mark.parametrize(
    "text",
    [
        "Authorization failed for the registry",
        "authorization: denied by policy",
        "Basic authentication failed",
        "CannotPullContainerError: no basic auth credentials",
        "task_definition=sk_0 npm_install=1",
        "Signature=short",
    ],
)
def test_prose_about_authorization_and_keys_is_left_alone(text: str) -> None:
    assert Redactor().text(text) == (text, 0)
