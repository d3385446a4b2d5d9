"""Settings: every environment variable batchlens reads, parsed and validated once."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from batchlens.settings import Settings
from batchlens.template import default_template_path, load_template, parameter_defaults


def test_defaults_alert_on_failures_and_blocked_queues_only() -> None:
    # Given an empty environment; when settings are read
    settings = Settings.from_env({})

    # Then the documented defaults apply
    assert settings.alert_on == ("FAILED", "QUEUE_BLOCKED")
    assert settings.alert_on_retried_attempts is False
    assert settings.alert_on_dependency_failures is False
    assert settings.retention_days == 90
    assert settings.redact_allowlist == ()
    assert settings.endpoint_url is None
    assert settings.aws_max_attempts >= 3


def test_defaults_match_the_template_parameters() -> None:
    # Given the template's parameter defaults (what `sam deploy` sets without overrides)
    defaults = parameter_defaults(load_template(default_template_path()))

    # When the model's own defaults are compared
    settings = Settings.from_env({})

    # Then a function deployed with defaults and the model agree
    assert ",".join(settings.alert_on) == defaults["AlertOn"]
    assert str(settings.retention_days) == defaults["RetentionDays"]
    assert str(settings.alert_on_retried_attempts).lower() == defaults["AlertOnRetriedAttempts"]
    assert (
        str(settings.alert_on_dependency_failures).lower() == defaults["AlertOnDependencyFailures"]
    )


@pytest.mark.parametrize(
    ("raw", "parsed"),
    [
        ("SUCCEEDED,FAILED", ("SUCCEEDED", "FAILED")),
        (" succeeded , failed ", ("SUCCEEDED", "FAILED")),
        ("FAILED,,QUEUE_BLOCKED,", ("FAILED", "QUEUE_BLOCKED")),
        ("queue_blocked", ("QUEUE_BLOCKED",)),
        ("", ()),
    ],
)
def test_alert_on_is_a_comma_list_of_statuses_in_any_case(
    raw: str, parsed: tuple[str, ...]
) -> None:
    # Given ALERT_ON as CloudFormation passes a CommaDelimitedList; when read; then it is parsed
    assert Settings.from_env({"ALERT_ON": raw}).alert_on == parsed


@pytest.mark.parametrize("raw", ["FAILED,EXPLODED", "FAIL", "SUCCEEDED;FAILED"])
def test_alert_on_refuses_unknown_statuses_and_names_them(raw: str) -> None:
    # Given an ALERT_ON with a typo; when read; then startup fails and names the culprit
    with pytest.raises(ValueError, match="ALERT_ON names unknown statuses") as caught:
        Settings.from_env({"ALERT_ON": raw})
    assert "QUEUE_BLOCKED" in str(caught.value)  # the allowed values are listed to fix it


@pytest.mark.parametrize(("raw", "value"), [("true", True), ("false", False), ("1", True)])
def test_boolean_switches_parse(raw: str, value: bool) -> None:
    settings = Settings.from_env(
        {"ALERT_ON_RETRIED_ATTEMPTS": raw, "ALERT_ON_DEPENDENCY_FAILURES": raw}
    )
    assert settings.alert_on_retried_attempts is value
    assert settings.alert_on_dependency_failures is value


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("RETENTION_DAYS", "0"),
        ("RETENTION_DAYS", "ninety"),
        ("ALERT_ON_RETRIED_ATTEMPTS", "maybe"),
        ("BATCHLENS_MAX_ATTEMPTS", "0"),
        ("BATCHLENS_CONNECT_TIMEOUT", "-1"),
    ],
)
def test_invalid_values_fail_validation_and_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(ValidationError, match=name):
        Settings.from_env({name: value})


def test_unrelated_environment_variables_are_ignored() -> None:
    # Given an environment full of the runtime's own variables, one of them nonsense to us
    environ = {"PATH": "/usr/bin", "RETENTION": "never", "TABLE_NAME": "history", "_HANDLER": "x"}

    # When read, then only batchlens's variables count
    settings = Settings.from_env(environ)
    assert settings.table_name == "history"
    assert settings.retention_days == 90


def test_every_variable_is_read_from_its_name() -> None:
    # Given a full environment, as the template sets it
    environ = {
        "TABLE_NAME": "t",
        "TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:alerts",
        "RETENTION_DAYS": "30",
        "REDACT_ALLOWLIST": "TOKEN_BUCKET, PASSWORD_POLICY",
        "LOG_TAIL_LINES": "5",
        "BATCHLENS_ENDPOINT_URL": "http://127.0.0.1:5000",
        "BATCHLENS_DESCRIBE_CONCURRENCY": "4",
    }

    # When read
    settings = Settings.from_env(environ)

    # Then each lands in its field, lists split and trimmed
    assert settings.table_name == "t"
    assert settings.topic_arn == environ["TOPIC_ARN"]
    assert settings.retention_days == 30
    assert settings.redact_allowlist == ("TOKEN_BUCKET", "PASSWORD_POLICY")
    assert settings.log_tail_lines == 5
    assert settings.endpoint_url == "http://127.0.0.1:5000"
    assert settings.describe_concurrency == 4


def test_from_env_reads_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALERT_ON", "SUCCEEDED")
    monkeypatch.setenv("TABLE_NAME", "from-process")
    settings = Settings.from_env()
    assert settings.alert_on == ("SUCCEEDED",)
    assert settings.table_name == "from-process"


def test_settings_are_frozen() -> None:
    settings = Settings.from_env({})
    with pytest.raises(ValidationError):
        settings.retention_days = 1  # type: ignore[misc]


@pytest.mark.parametrize("name", ["BATCHLENS_CONNECT_TIMEOUT", "BATCHLENS_READ_TIMEOUT"])
@pytest.mark.parametrize("value", ["inf", "1e309", "1e12"])
def test_a_timeout_no_socket_can_take_is_refused_when_read(name: str, value: str) -> None:
    # Given a timeout botocore passes to the socket, which cannot hold it ("timestamp out of range
    # for platform time_t" on every AWS call: every record retried, then dead-lettered)
    # When settings are read, then the variable is named at once
    with pytest.raises(ValidationError, match=name):
        Settings.from_env({name: value})
