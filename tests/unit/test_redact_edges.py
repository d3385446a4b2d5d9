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


# --- "pass" words, JSON environment pairs, headers, lists, numbers, `@` in URLs ---


@pytest.mark.parametrize(
    "text",
    [
        "BYPASS_CACHE=true",
        "bypass=1",
        "COMPASS_HEADING=north",
        "SURPASS_LIMIT=3",
        "TRESPASS_LOG=off",
        "OVERPASS_URL=https://overpass-api.de/api/interpreter",
    ],
)
def test_a_word_that_only_ends_in_pass_is_not_a_secret_name(text: str) -> None:
    # Given a variable whose name holds an ordinary word ending in "pass" (no password)
    # When masked; then its value stays, in text and as an environment variable
    assert Redactor().text(text) == (text, 0)
    name, value = text.split("=", 1)
    assert Redactor().value(name, value) == (value, 0)


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        # Names that are a password still are, glued to another word or not.
        ("DB_PASS=x1 BYPASS_PASS=x2", f"DB_PASS={MASK} BYPASS_PASS={MASK}"),
        ("keytool -storepass x1 -keypass x2", f"keytool -storepass {MASK} -keypass {MASK}"),
        ("ROOTPASS=x1 dbPass=x2", f"ROOTPASS={MASK} dbPass={MASK}"),
    ],
)
def test_names_ending_in_pass_that_are_passwords_stay_masked(text: str, masked: str) -> None:
    assert Redactor().text(text) == (masked, 2)


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        (
            '{"name": "DB_PASSWORD", "value": "pl4nted pass"}, {"name": "HOST", "value": "db"}',
            f'{{"name": "DB_PASSWORD", "value": "{MASK}"}}, {{"name": "HOST", "value": "db"}}',
        ),
        (
            "{'name': 'API_TOKEN', 'value': 'pl4nted'}",
            f"{{'name': 'API_TOKEN', 'value': '{MASK}'}}",
        ),
        (
            '{\\"name\\":\\"DB_PASSWORD\\",\\"value\\":\\"pl4nted\\"}',
            f'{{\\"name\\":\\"DB_PASSWORD\\",\\"value\\":\\"{MASK}\\"}}',
        ),
        (
            '{"Name": "DB_PASSWORD", "Value": 84712953}',
            f'{{"Name": "DB_PASSWORD", "Value": {MASK}}}',
        ),
    ],
)
def test_an_environment_variable_as_json_text_is_masked_by_its_name(text: str, masked: str) -> None:
    # Given a log line quoting a job's environment as JSON (a container override, a task
    # definition): the secret name is the value of "name", its value that of "value"
    # When it is masked as text (a log excerpt, a reason); then the value goes, counted once
    assert Redactor().text(text) == (masked, 1)


def test_an_allowlisted_environment_variable_as_json_text_keeps_its_value() -> None:
    text = '{"name": "TOKEN_BUCKET", "value": "acme-tokens"}'
    assert Redactor(allowlist=["TOKEN_BUCKET"]).text(text) == (text, 0)


@pytest.mark.parametrize(
    "value",
    [
        {"headers": {"Authorization": "Bearer pl4nted0bearer"}},
        '{"headers": {"Proxy-Authorization": "Basic pl4nted0bearer"}}',
        [{"authorization": "token pl4nted0bearer"}],
    ],
)
def test_an_authorization_header_in_structured_data_loses_its_credential(value: object) -> None:
    # Given a logged event or JSON body whose header mapping holds a credential: the name
    # `Authorization` is the key, not part of the text the header pattern reads
    masked, count = Redactor().deep(value)

    # Then the credential goes and its scheme stays, as in text
    assert "pl4nted0bearer" not in json.dumps(masked)
    assert f" {MASK}" in json.dumps(masked)
    assert count == 1


def test_a_list_under_a_secret_name_is_masked_item_by_item() -> None:
    # Given a setting holding a list of keys, as a mapping and as a JSON text
    mapping = {"api_keys": ["pl4nted-one", "pl4nted-two"], "regions": ["eu-west-1"]}

    # When masked
    deep, deep_count = Redactor().deep(mapping)
    text, text_count = Redactor().text(json.dumps(mapping))

    # Then every item goes (each counted in structured data; the list once in text), the rest stays
    assert deep == {"api_keys": [MASK, MASK], "regions": ["eu-west-1"]}
    assert deep_count == 2
    assert text == f'{{"api_keys": {MASK}, "regions": ["eu-west-1"]}}'
    assert text_count == 1


def test_a_number_as_an_environment_variable_value_is_masked_by_its_name() -> None:
    # Given a hand-written override whose secret variable's value is a JSON number
    environment = [{"name": "DB_PIN_PASSWORD", "value": 84712953}, {"name": "THREADS", "value": 8}]

    # When masked as structured data; then the number goes, as under a secret key
    assert Redactor().deep(environment) == (
        [{"name": "DB_PIN_PASSWORD", "value": MASK}, {"name": "THREADS", "value": 8}],
        1,
    )


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        # An e-mail address as the user name (SMTP), its `@` not escaped
        (
            f"smtp://alerts@acme.com:{PASSWORD}@smtp.acme.com:587",
            f"smtp://alerts@acme.com:{MASK}@smtp.acme.com:587",
        ),
        # An `@` in the password, not escaped: the host follows the last `@`
        (f"postgres://etl:{PASSWORD}@1@db:5432/x", f"postgres://etl:{MASK}@db:5432/x"),
    ],
)
def test_a_url_password_is_masked_whole_around_an_unescaped_at(text: str, masked: str) -> None:
    assert Redactor().text(text) == (masked, 1)


def test_a_url_password_before_other_json_fields_masks_only_the_password() -> None:
    text = '{"db":"postgres://etl:pw1@db:5432/x","owner":"a@b.com","ok":"y:z@w"}'
    assert Redactor().text(text) == (text.replace("pw1", MASK), 1)


@pytest.mark.parametrize("text", ["DB_PASSWORD=\nDB_PORT=5432", "--api-token=\nStarting load"])
def test_an_empty_value_at_the_end_of_a_line_masks_nothing_on_the_next(text: str) -> None:
    # Given an environment dump (`env`, a log excerpt) where a secret variable is set but empty
    # When masked; then the next line, which is no part of it, stays
    assert Redactor().text(text) == (text, 0)


def test_a_run_of_at_signs_after_a_url_user_is_masked_in_linear_time() -> None:
    # Given a long run of `@` after a URL's user (each one a place the password could end)
    text = "smtp://u:" + "@" * 200_000

    # When masked (each `@` once looked ahead to the last one: minutes)
    masked, count = Redactor().text(text)

    # Then all but the last `@`, the host's, are the password's
    assert (masked, count) == (f"smtp://u:{MASK}@", 1)


@pytest.mark.parametrize(
    "text",
    [
        "max_new_tokens=512 TOKENIZERS_PARALLELISM=false",
        '{"usage": {"prompt_tokens": 12, "completion_tokens": 30, "total_tokens": 42}}',
        "--max-tokens 4096 --maxNewTokens=256",
    ],
)
def test_token_counts_and_tokenizer_settings_are_no_secrets(text: str) -> None:
    # Given a language model job's settings and usage
    # When masked; then their values stay: no secret word is left once their harmless part is read
    assert Redactor().text(text) == (text, 0)
    assert Redactor().deep(json.loads(text) if text.startswith("{") else text) == (
        json.loads(text) if text.startswith("{") else text,
        0,
    )


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("API_TOKENS=t1 HF_TOKEN=t2", f"API_TOKENS={MASK} HF_TOKEN={MASK}"),
        ("TOKENIZER_TOKEN=t1 Server=db;Pwd=t2", f"TOKENIZER_TOKEN={MASK} Server=db;Pwd={MASK}"),
        (
            "SECRET_MAX_TOKENS=t1 --max-tokens-secret t2",
            f"SECRET_MAX_TOKENS={MASK} --max-tokens-secret {MASK}",
        ),
    ],
)
def test_a_secret_word_beside_a_harmless_one_still_masks(text: str, masked: str) -> None:
    assert Redactor().text(text) == (masked, 2)
