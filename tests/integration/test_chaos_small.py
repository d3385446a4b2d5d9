"""The fault-injection soak's small variant (`python -m tests.chaos --small`) in the test-suite:
600 events of 60+ jobs, duplicates, shuffled, faults on every AWS call, crashed invocations, the
real handler and SQS redrive; nothing lost, nothing moved backwards, every alert exactly once.
"""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest

from batchlens import aws
from batchlens.settings import Settings
from tests.chaos.faults import SERVER_ERRORS, THROTTLE_CODES
from tests.chaos.soak import REPORT_KEYS, SoakConfig, failures, run

pytestmark = pytest.mark.integration


def test_the_small_soak_loses_nothing_and_alerts_each_failure_exactly_once(
    tmp_path: Path,
) -> None:
    # Given the small soak's workload and fault rates; when it runs against the real handler
    report = run(SoakConfig.small(), tmp_path / "chaos.log")

    # Then every figure the issue names is there, and nothing was lost or doubled
    assert set(REPORT_KEYS) <= set(report)
    assert failures(report) == [], report
    assert report["events"] >= 600
    assert report["faultsInjected"] >= 50
    assert report["details"]["jobs"] >= 60
    # And the dead-letter queue holds the poison inputs, and only them
    assert report["dlqMessages"] == report["details"]["poisonSent"]
    assert report["details"]["alertsReceived"] >= report["details"]["alertsExpected"] > 0


def test_the_soak_has_errors_to_inject_for_every_service_the_enricher_calls(
    aws_session: boto3.Session,
) -> None:
    # Given the enricher's clients, named as botocore's events name them ("cloudwatch-logs")
    settings = Settings.from_env({})
    services = {
        aws.client(name, settings, aws_session).meta.service_model.service_id.hyphenize()
        for name in ("batch", "dynamodb", "sns", "logs")
    }
    # Then the soak can answer each one's calls with a throttle or a 5xx in its own words
    # (a missing one raised KeyError into the handler instead of an AWS error)
    assert services <= THROTTLE_CODES.keys()
    assert services <= SERVER_ERRORS.keys()
