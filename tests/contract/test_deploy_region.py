"""`make deploy` deploys where the operator's AWS configuration says, never to a default Region."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(shutil.which("make") is None, reason="needs GNU make")
def test_make_deploy_keeps_the_profiles_region(tmp_path: Path) -> None:
    # Given a profile whose region is eu-west-1, and no region in the environment
    config = tmp_path / "config"
    config.write_text("[default]\nregion = eu-west-1\n", encoding="utf-8")
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"AWS_DEFAULT_REGION", "AWS_REGION", "AWS_PROFILE"}
    }
    env["AWS_CONFIG_FILE"] = str(config)
    # When `make deploy` runs sam (replaced by printenv; build and setup taken as done)
    sam = "SAM=printenv AWS_DEFAULT_REGION; :"
    result = subprocess.run(
        ["make", "-s", "-o", "build", "-o", "setup", "deploy", sam],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    # Then sam sees no AWS_DEFAULT_REGION, which botocore would put before the profile's region
    assert result.stdout.strip() == ""
