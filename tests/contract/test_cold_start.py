"""Contract: what a cold start of the enricher imports, and the envelope model that keeps it small.

A fresh handler process must not import what it does not use on every batch: the X-Ray SDK (it
builds its own botocore client at import) unless the stack traces AWS calls, Powertools' Parser
models or batch utility (every Parser model is built at import), and boto3 (its clients are
botocore's; it brings s3transfer along). `bench/` measures the
time this saves; these tests keep the imports from coming back.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from pydantic import ValidationError

from batchlens.events import EventEnvelope
from batchlens.template import load_template, resolve_environment

ROOT = Path(__file__).resolve().parents[2]
EVENT_FILES = sorted(p for p in (ROOT / "events").glob("*.json") if p.name != "sqs-batch.json")

IMPORTS = """
import importlib.metadata, json, sys
scans = []
def counted(name):
    scan = getattr(importlib.metadata, name)
    def scanning(*args, **kwargs):
        scans.append(name)
        return scan(*args, **kwargs)
    setattr(importlib.metadata, name, scanning)
# pydantic's plugin loader walks one or the other, depending on its version
counted("entry_points")
counted("distributions")
import app
app.enricher()
ours = {"aws_xray_sdk", "aws_lambda_powertools", "boto3", "s3transfer"}
modules = sorted(m for m in sys.modules if m.split(".")[0] in ours)
print(json.dumps({"modules": modules, "entryPointScans": scans}))
"""


def _cold_start(trace_aws_calls: str) -> dict[str, Any]:
    """What a fresh enricher process loads, in the environment the template gives it."""
    template = load_template(ROOT / "template.yaml")
    stack = {"HistoryTable": "history", "AlertTopic": "topic"}
    env = {
        **os.environ,
        **resolve_environment(template, stack, {"TraceAwsCalls": trace_aws_calls}),
        # As in Lambda: Powertools' Tracer switches itself off where LAMBDA_TASK_ROOT is unset.
        "LAMBDA_TASK_ROOT": str(ROOT / "functions" / "enrich"),
        "PYTHONPATH": os.pathsep.join([str(ROOT / "functions" / "enrich"), str(ROOT)]),
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    done = subprocess.run(
        [sys.executable, "-c", IMPORTS], capture_output=True, text=True, env=env, check=True
    )
    found: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return found


def _cold_start_modules(trace_aws_calls: str) -> set[str]:
    return set(_cold_start(trace_aws_calls)["modules"])


def test_a_cold_start_without_tracing_imports_no_xray_sdk_and_no_parser_models() -> None:
    # Given a stack that does not trace AWS calls (the default)
    # When a fresh process imports the handler and builds its clients
    modules = _cold_start_modules("false")
    # Then neither the X-Ray SDK nor Powertools' Parser models nor its batch utility were loaded
    assert not {m for m in modules if m.startswith("aws_xray_sdk")}
    assert "aws_lambda_powertools.utilities.parser.models" not in modules
    assert "aws_lambda_powertools.utilities.batch" not in modules
    # Nor boto3 (its clients are botocore's; importing it brings s3transfer along)
    assert not {m for m in modules if m.split(".")[0] in {"boto3", "s3transfer"}}
    # And the Logger and Metrics it always uses were
    assert "aws_lambda_powertools.logging.logger" in modules
    assert "aws_lambda_powertools.metrics" in modules


def test_a_cold_start_with_tracing_patches_boto3_through_the_xray_sdk() -> None:
    # Given a stack that traces AWS calls
    modules = _cold_start_modules("true")
    # Then the handler loaded the X-Ray SDK and its boto3 patch
    assert "aws_xray_sdk.core" in modules
    assert "aws_xray_sdk.ext.botocore.patch" in modules


def test_a_cold_start_does_not_search_installed_packages_for_pydantic_plugins() -> None:
    # Given the stack's environment (PYDANTIC_DISABLE_PLUGINS: batchlens uses no plugin)
    # When a fresh process imports the handler, builds its models and its clients
    scans = _cold_start("false")["entryPointScans"]
    # Then nothing read every installed distribution's entry points
    assert scans == []


@pytest.mark.parametrize("path", EVENT_FILES, ids=lambda p: p.name)
def test_the_envelope_model_reads_every_sample_as_powertools_does(path: Path) -> None:
    event = json.loads(path.read_text())
    ours = EventEnvelope.model_validate(event)
    theirs = EventBridgeModel.model_validate(event)
    assert ours.model_dump() == theirs.model_dump()


def _sample() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((ROOT / "events" / "job-failed-oom.json").read_text())
    return loaded


@pytest.mark.parametrize(
    "change",
    [
        {"id": None},
        {"time": "yesterday"},
        {"detail": "not an object"},
        {"resources": "arn:aws:batch:us-east-1:123456789012:job/x"},
        {"detail-type": 7},
    ],
    ids=["no id", "time not a date", "detail a string", "resources not a list", "type a number"],
)
def test_the_envelope_model_rejects_what_powertools_rejects(change: dict[str, Any]) -> None:
    event = {**_sample(), **change}
    with pytest.raises(ValidationError):
        EventBridgeModel.model_validate(event)
    with pytest.raises(ValidationError):
        EventEnvelope.model_validate(event)


@pytest.mark.parametrize("missing", ["version", "id", "source", "account", "time", "region"])
def test_the_envelope_model_needs_what_powertools_needs(missing: str) -> None:
    event = _sample()
    del event[missing]
    with pytest.raises(ValidationError):
        EventBridgeModel.model_validate(event)
    with pytest.raises(ValidationError):
        EventEnvelope.model_validate(event)
