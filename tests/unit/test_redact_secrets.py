"""Redaction of every kind of planted secret, in every place a job carries one: free text, the
environment (`{name, value}` pairs), parameters, command lines split into arguments, logged events
and exception text. The fast pre-scan must trip on every pattern, or that pattern would never run.
"""

from __future__ import annotations

import io
import json
import logging

import pytest

from batchlens import redact
from batchlens.redact import MASK, RedactingFilter, Redactor, guard_logger, maybe_secret

# Shaped like credentials, never issued.
AWS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJiYXRjaGxlbnMifQ.c2lnbmF0dXJlLW5vdC1yZWFs"
SLACK_TOKEN = "xoxb-123456789012-1234567890123-FAKEfakeFAKEfake"
SLACK_WEBHOOK = "https://hooks.slack.com/services/T00000000/B00000000/FAKEfakeFAKEfakeFAKEfake"
GITHUB_TOKEN = "ghp_FAKEt0kenF0rRedacti0nTest5NotReal000"
PRIVATE_KEY = "\n".join(
    [
        "-----BEGIN OPENSSH PRIVATE KEY-----",
        "b3BlbnNzaC1rZXktdjEAAAAA",
        "-----END OPENSSH PRIVATE KEY-----",
    ]
)
URL_PASSWORD = "s3cretInUrl"
FLAG_PASSWORD = "s3cretInFlag"

#: Where each secret is planted, and the part of it that must never survive.
PLANTED: dict[str, tuple[str, str]] = {
    "aws access key id": (f"credentials {AWS_KEY_ID} were refused", AWS_KEY_ID),
    "aws secret key": (f"aws_secret_access_key={AWS_SECRET}", AWS_SECRET),
    "jwt": (f"Authorization: Bearer {JWT}", JWT),
    "slack token": (f"slack said invalid_auth for {SLACK_TOKEN}", SLACK_TOKEN),
    "slack webhook": (f"POST {SLACK_WEBHOOK} returned 404", "FAKEfakeFAKEfakeFAKEfake"),
    "github token": (f"git clone https://{GITHUB_TOKEN}@github.com/acme/etl", GITHUB_TOKEN),
    "private key": (f"key file:\n{PRIVATE_KEY}\n", "b3BlbnNzaC1rZXktdjEAAAAA"),
    "password in a url": (
        f"GET https://api.internal/export?user=etl&password={URL_PASSWORD}&x=1 failed",
        URL_PASSWORD,
    ),
    "password in user info": (f"postgres://etl:{URL_PASSWORD}@db:5432/orders", URL_PASSWORD),
    "password flag": (f"python load.py --password {FLAG_PASSWORD} --rows 10", FLAG_PASSWORD),
    "password flag with =": (f"python load.py --password={FLAG_PASSWORD}", FLAG_PASSWORD),
}

#: One sample for each credential pattern of redact.py (a new pattern needs a sample here).
PATTERN_SAMPLES: dict[str, str] = {
    "PRIVATE KEY": PRIVATE_KEY,
    "AKIA": AWS_KEY_ID,
    # Temporary credentials (STS, a job role, an instance profile): the key id a job leaks.
    "ASIA": "ASIAIOSFODNN7EXAMPLE",
    "eyJ": JWT,
    "xox": SLACK_TOKEN,
    "hooks": SLACK_WEBHOOK,
    "gh[pousr]_": GITHUB_TOKEN,
    "github_pat_": "github_pat_11ABCDEFG0123456789_abcdefghijklmnop",
    "glpat-": "glpat-FAKEfakeFAKEfake12345",
    "sk-": "sk-FAKEfakeFAKEfakeFAKEfake1234",
    "[rs]k_": "sk_live_" + "FAKEfakeFAKEfake1234",  # Stripe
    "npm_": "npm_" + "FAKEfakeFAKEfakeFAKEfakeFAKEfake1234",
    "AIza": "AIza" + "SyFAKE-fake_FAKEfakeFAKEfakeFAKE123",  # Google
}


@pytest.mark.parametrize("where", sorted(PLANTED))
def test_every_planted_secret_is_masked_in_text(where: str) -> None:
    text, secret = PLANTED[where]
    masked, count = Redactor().text(text)
    assert secret not in masked
    assert MASK in masked
    assert count >= 1


@pytest.mark.parametrize("kind", sorted(PATTERN_SAMPLES))
def test_every_kind_of_credential_is_masked_in_free_text(kind: str) -> None:
    # Given a credential of each kind in a log line, under no telling variable name
    sample = PATTERN_SAMPLES[kind]

    # When the line is masked
    masked, count = Redactor().text(f"request failed with {sample} (retrying)")

    # Then the whole credential, and only it, is masked
    assert (masked, count) == (f"request failed with {MASK} (retrying)", 1)


def test_every_credential_pattern_has_a_sample_that_it_matches_and_the_pre_scan_trips() -> None:
    # Given one sample per credential pattern (matched by a fragment of the pattern's source)
    for pattern in redact._CREDENTIAL_PATTERNS:
        samples = [s for key, s in PATTERN_SAMPLES.items() if key in pattern.pattern]
        assert samples, f"no sample for pattern {pattern.pattern!r}"
        for sample in samples:
            # Then the pattern matches its sample, and the pre-scan lets it run
            assert pattern.search(sample), (pattern.pattern, sample)
            assert maybe_secret(sample), sample
            assert maybe_secret(sample.lower())
            assert maybe_secret(f"prefix {sample} suffix")


@pytest.mark.parametrize(
    "sample",
    [
        "DB_PASSWORD=x",
        "db_passwd=x",
        "PASSPHRASE=x",
        "PWD=x",
        "CLIENT_SECRET=x",
        "API_TOKEN=x",
        "API_KEY=x",
        "aws_access_key_id=x",
        "PRIVATE_KEY=x",
        "GOOGLE_CREDENTIALS=x",
        "AUTH_KEY=x",
        "SESSION_KEY=x",
        "SIGNING_KEY=x",
        "CLIENT_KEY=x",
        "postgres://u:p@h",
    ],
)
def test_every_secret_name_and_user_info_url_trips_the_pre_scan(sample: str) -> None:
    assert maybe_secret(sample)
    assert Redactor().text(sample)[1] == 1


def test_ordinary_text_does_not_trip_the_pre_scan() -> None:
    for text in (
        "Essential container in task exited",
        "OutOfMemoryError: Container killed due to memory usage",
        "Host EC2 (instance i-0123456789abcdef0) terminated.",
        "CannotPullContainerError: pull image manifest has been retried 5 time(s)",
    ):
        assert not maybe_secret(text)


# --- structured detail ----------------------------------------------------------------------------


def test_environment_values_are_masked_by_name_and_by_shape() -> None:
    environment = [
        {"name": "DB_PASSWORD", "value": "hunter2"},
        {"name": "STRIPE_API_KEY", "value": "live-123"},
        {"name": "UPLOAD_URL", "value": f"https://etl:{URL_PASSWORD}@files.internal/x"},
        {"name": "NOTE", "value": f"rotated {AWS_KEY_ID}"},
        {"name": "THREADS", "value": "8"},
        {"name": "TOKEN_BUCKET", "value": "acme-tokens"},
    ]
    masked, count = Redactor(allowlist=["TOKEN_BUCKET"]).deep(environment)
    values = {pair["name"]: pair["value"] for pair in masked}
    assert values["DB_PASSWORD"] == MASK
    assert values["STRIPE_API_KEY"] == MASK
    assert URL_PASSWORD not in values["UPLOAD_URL"]
    assert AWS_KEY_ID not in values["NOTE"]
    assert values["THREADS"] == "8"
    assert values["TOKEN_BUCKET"] == "acme-tokens"  # allowlisted name
    assert count == 4


def test_a_command_split_into_arguments_masks_the_value_after_a_secret_flag() -> None:
    command = ["python", "load.py", "--password", FLAG_PASSWORD, "--rows", "10", f"--token={JWT}"]
    masked, count = Redactor().command(command)
    assert masked == ["python", "load.py", "--password", MASK, "--rows", "10", f"--token={MASK}"]
    assert count == 2
    # A secret flag followed by another flag masks nothing that is not there
    assert Redactor().command(["--password", "--verbose"]) == (["--password", "--verbose"], 0)


def test_a_job_detail_is_masked_everywhere_it_carries_secrets() -> None:
    detail = {
        "jobName": "nightly-load",
        "parameters": {"dbPassword": "hunter2", "table": "orders"},
        "container": {
            "command": ["load", "--api-key", "k-123", PLANTED["jwt"][0]],
            "environment": [{"name": "SLACK_WEBHOOK", "value": SLACK_WEBHOOK}],
            "reason": PLANTED["aws secret key"][0],
        },
    }
    masked, count = Redactor().deep(detail)
    text = json.dumps(masked)
    for secret in ("hunter2", "k-123", JWT, "FAKEfakeFAKEfakeFAKEfake", AWS_SECRET):
        assert secret not in text
    assert masked["parameters"]["table"] == "orders"
    assert masked["jobName"] == "nightly-load"
    assert count == 5


def test_the_record_masks_next_steps_and_log_excerpts_too() -> None:
    from batchlens.events import parse_event
    from batchlens.records import normalise
    from tests.conftest import read_event

    record = normalise(parse_event(read_event("job-failed-oom")))
    assert record.failure is not None
    dirty = record.model_copy(
        update={
            "failure": record.failure.model_copy(update={"next_step": f"rotate {AWS_KEY_ID}"}),
            "log_excerpt": [f"export DB_PASSWORD=hunter2 {GITHUB_TOKEN}"],
        }
    )
    clean = Redactor().redact_record(dirty)
    assert AWS_KEY_ID not in json.dumps(clean.to_json_dict())
    assert "hunter2" not in json.dumps(clean.to_json_dict())
    assert GITHUB_TOKEN not in json.dumps(clean.to_json_dict())
    assert clean.redacted == 3


# --- logs -------------------------------------------------------------------------------------


@pytest.fixture
def guarded() -> tuple[logging.Logger, io.StringIO]:
    logger = logging.getLogger("batchlens.test-redact")
    logger.propagate = False
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s %(detail)s"))
    logger.handlers = [handler]
    logger.setLevel(logging.DEBUG)
    guard_logger(logger)
    return logger, stream


def test_log_messages_arguments_extras_and_exceptions_are_masked(
    guarded: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = guarded
    logger.info("refused %s", AWS_KEY_ID, extra={"detail": {"token": SLACK_TOKEN}})
    try:
        raise ValueError(f"bad input {JWT}")
    except ValueError:
        logger.exception("failed", extra={"detail": [GITHUB_TOKEN]})
    logger.info(
        {"environment": [{"name": "DB_PASSWORD", "value": "hunter2"}]}, extra={"detail": ""}
    )
    out = stream.getvalue()
    for secret in (AWS_KEY_ID, SLACK_TOKEN, JWT, GITHUB_TOKEN, "hunter2"):
        assert secret not in out
    assert "refused ****" in out
    assert "RedactedError" in out


def test_guarding_a_logger_twice_keeps_one_filter(
    guarded: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, _ = guarded
    guard_logger(logger, Redactor(allowlist=["X"]))
    assert sum(isinstance(f, RedactingFilter) for f in logger.filters) == 1


def test_a_plain_log_field_named_like_a_secret_is_masked_whole() -> None:
    record = logging.makeLogRecord({"msg": "sent", "api_token": "abc123", "job_name": "nightly"})
    RedactingFilter(Redactor()).filter(record)
    assert vars(record)["api_token"] == MASK
    assert vars(record)["job_name"] == "nightly"


# --- every prefix, every shape of a logged value -------------------------------------------------


@pytest.mark.parametrize(
    "token",
    [
        *(f"xox{kind}-123456789012-FAKEfakeFAKEfake" for kind in "aposr"),
        *(f"gh{kind}_FAKEt0kenF0rRedacti0nTest5NotReal000" for kind in "ousr"),
    ],
)
def test_every_slack_and_github_token_prefix_is_masked(token: str) -> None:
    # Given a Slack user/app/refresh token or a GitHub OAuth/user/server/refresh token in a line
    # When the line is masked; then the token is, whole
    assert Redactor().text(f"auth with {token} failed") == (f"auth with {MASK} failed", 1)


def test_an_empty_value_of_a_secret_name_is_left_empty() -> None:
    # Given an environment variable with a secret-looking name and no value
    environment = [{"name": "DB_PASSWORD", "value": ""}]

    # When it is masked; then there was nothing to mask
    assert Redactor().deep(environment) == (environment, 0)


def test_only_the_argument_after_a_secret_flag_is_masked() -> None:
    # Given a secret flag's value followed by a plain argument
    # When the command is masked; then the plain argument stays
    masked = Redactor().command(["--password", FLAG_PASSWORD, "load.py"])
    assert masked == (["--password", MASK, "load.py"], 1)


def test_a_string_holding_a_json_list_is_masked_as_that_json() -> None:
    # Given a logged value holding a JSON list of environment variables (a body, a setting)
    body = json.dumps(
        [{"name": "DB_PASSWORD", "value": "hunter2"}, {"name": "THREADS", "value": "8"}]
    )

    # When it is masked
    masked, count = Redactor().value("BODY", body)

    # Then the secret variable's value is masked by its name, the other kept
    assert json.loads(masked) == [
        {"name": "DB_PASSWORD", "value": MASK},
        {"name": "THREADS", "value": "8"},
    ]
    assert count == 1


def test_json_nested_too_deep_to_decode_is_masked_as_text() -> None:
    # Given a string that opens like JSON but nests deeper than the decoder recurses
    nested = f"{'[' * 100_000} DB_PASSWORD=hunter2 {']' * 100_000}"

    # When it is masked; then it is masked as text instead of failing
    masked, count = Redactor().value("BODY", nested)
    assert "hunter2" not in masked
    assert count == 1


def test_json_with_nothing_to_mask_is_left_byte_for_byte() -> None:
    # Given a logged JSON body that trips the pre-scan ("Key") but holds no secret
    body = '{"objectKey":"in/2025-03.csv","size":12}'

    # When it is masked; then it is the same text (not re-serialised)
    assert Redactor().deep(body) == (body, 0)


def test_a_logged_exception_without_a_secret_keeps_its_type_and_text(
    guarded: tuple[logging.Logger, io.StringIO],
) -> None:
    # Given a guarded logger; when an exception with nothing secret in it is logged
    logger, stream = guarded
    try:
        raise ValueError("invoice INV-42 has no customer")
    except ValueError:
        logger.exception("failed", extra={"detail": ""})

    # Then its traceback is logged as it was
    out = stream.getvalue()
    assert "ValueError: invoice INV-42 has no customer" in out
    assert "RedactedError" not in out


def test_a_message_that_cannot_be_formatted_is_withheld_without_raising(
    guarded: tuple[logging.Logger, io.StringIO],
) -> None:
    # Given a guarded logger; when a call's arguments do not fit its format
    logger, stream = guarded
    logger.info("%s and %s", "one", extra={"detail": ""})

    # Then the call returns, and the line says its message was withheld
    assert "(log message withheld: it could not be masked)" in stream.getvalue()


# --- what reaches the log in any shape ------------------------------------------------------------


def test_a_number_under_a_secret_name_is_masked_in_json_as_in_text() -> None:
    # Given a variable holding JSON settings with a numeric password (text masks `"password": 1…`)
    settings = '{"db": {"host": "db.internal", "password": 84712953}}'

    # When the variable's value, and the same settings as a mapping, are masked
    masked, count = Redactor().value("APP_CONFIG", settings)
    mapping, mapping_count = Redactor().deep({"db": {"password": 84712953, "port": 5432}})

    # Then the number is masked by its name like any other value, and other numbers stay
    assert json.loads(masked) == {"db": {"host": "db.internal", "password": MASK}}
    assert count == 1
    assert (mapping, mapping_count) == ({"db": {"password": MASK, "port": 5432}}, 1)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('{"db": {"password": 84712953}}', '{"db": {"password": ****}}'),
        ('[{"api_key": 8471}]', '[{"api_key": ****}]'),
        ('{"password": 84712953, "port": 5432}', '{"password": ****, "port": 5432}'),
        ('{"password": -1.5e3}', '{"password": ****}'),
        ('{"token": true}', '{"token": ****}'),
        # Outside JSON's quoted names a brace can be part of the value: masked with it.
        ("PASSWORD=ab}cd", f"PASSWORD={MASK}"),
        # After a quoted name, only a JSON number or literal ends at a bracket; any other value
        # (block YAML with a quoted key, a generated password) is masked with its brackets.
        ('"db_password": Xy]9#kLq', f'"db_password": {MASK}'),
        ('"password": }Wq8!zr', f'"password": {MASK}'),
        ("'api_token': ab}cd-ef", f"'api_token': {MASK}"),
        ('"password": 123abc}', f'"password": {MASK}'),
        # A value that starts like a number or literal but goes on after a bracket is no number.
        ('"password": 1]hunter2', f'"password": {MASK}'),
        ('"db_password": false}s3cr3t', f'"db_password": {MASK}'),
        ('"password": 1e5]x', f'"password": {MASK}'),
        ('"password":1]x', f'"password":{MASK}'),
        ('"token": 42],"other": 1', f'"token": {MASK}],"other": 1'),
        ('{\\"password\\": 1}\\"}', f'{{\\"password\\": {MASK}}}\\"}}'),
    ],
)
def test_a_number_ending_a_json_text_loses_none_of_the_closing_brackets(
    line: str, expected: str
) -> None:
    # Given JSON masked as text (a log line of an excerpt); then the value goes, the JSON stays
    assert Redactor().text(line) == (expected, 1)


def test_structured_arguments_of_a_format_string_are_masked_by_name(
    guarded: tuple[logging.Logger, io.StringIO],
) -> None:
    # Given a guarded logger; when an event is logged as the argument of a format string
    logger, stream = guarded
    event = {
        "environment": [{"name": "DB_PASSWORD", "value": "hunter2"}],
        "command": ["load.py", "--password", FLAG_PASSWORD],
    }
    logger.info("received %s", event, extra={"detail": ""})

    # Then its environment is masked by name and its command by argument, as for a logged event
    out = stream.getvalue()
    assert "hunter2" not in out
    assert FLAG_PASSWORD not in out
    assert "'value': '****'" in out


def test_an_exception_logged_as_the_message_is_masked(
    guarded: tuple[logging.Logger, io.StringIO],
) -> None:
    # Given a guarded logger; when an exception quoting a password is logged as the message
    logger, stream = guarded
    try:
        raise ValueError(f"login failed: DB_PASSWORD={FLAG_PASSWORD}")
    except ValueError as exc:
        logger.error(exc, extra={"detail": ""})

    # Then its text is masked like any message
    out = stream.getvalue()
    assert FLAG_PASSWORD not in out
    assert f"login failed: DB_PASSWORD={MASK}" in out


def test_a_message_that_cannot_be_formatted_still_has_its_extras_and_exception_masked(
    guarded: tuple[logging.Logger, io.StringIO],
) -> None:
    # Given a guarded logger; when a call whose arguments do not fit its format carries a secret
    # in an extra field and in the exception it logs
    logger, stream = guarded
    try:
        raise ValueError(f"bad input {JWT}")
    except ValueError:
        logger.exception("%s and %s", "one", extra={"detail": f"DB_PASSWORD={FLAG_PASSWORD}"})

    # Then the message is withheld, and neither secret is logged
    out = stream.getvalue()
    assert "(log message withheld: it could not be masked)" in out
    assert FLAG_PASSWORD not in out
    assert JWT not in out


def test_a_long_run_of_name_characters_is_read_as_one_name() -> None:
    # Given 100 KB of name characters: with a value after it, and on its own (one long log line)
    long_name = "password" * 12_500
    named = f"{long_name}=hunter2 and --{long_name} hunter3"

    # When masked; then the value after the whole run goes, and a run without a value stays
    assert Redactor().text(named) == (f"{long_name}={MASK} and --{long_name} {MASK}", 2)
    assert Redactor().text(long_name) == (long_name, 0)
