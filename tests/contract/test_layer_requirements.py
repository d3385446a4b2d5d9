"""Contract: the Lambda layer ships the versions the tests ran against (uv.lock), nothing else.

`sam build` installs `layers/batchlens/requirements.txt` with pip, which knows nothing of uv.lock;
`make layer-requirements` writes that file from the lock. A lock changed without it would ship
versions no test has seen.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)")


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def layer_pins() -> dict[str, str]:
    lines = (ROOT / "layers" / "batchlens" / "requirements.txt").read_text().splitlines()
    pins = {}
    for line in lines:
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = PIN.match(line)
        assert match, f"not an exact pin: {line!r} (run `make layer-requirements`)"
        pins[_normal(match[1])] = match[2]
    return pins


def locked() -> dict[str, dict[str, Any]]:
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    return {_normal(package["name"]): package for package in lock["package"]}


def runtime_closure(packages: dict[str, dict[str, Any]]) -> set[str]:
    """batchlens's own dependencies and theirs, as the lock resolves them (no dev groups)."""
    wanted = [_normal(d["name"]) for d in packages["batchlens"]["dependencies"]]
    seen: set[str] = set()
    while wanted:
        name = wanted.pop()
        if name in seen:
            continue
        seen.add(name)
        wanted.extend(_normal(d["name"]) for d in packages[name].get("dependencies", []))
    return seen


def test_every_layer_pin_is_the_locked_version() -> None:
    packages = locked()
    for name, version in layer_pins().items():
        assert name in packages, f"{name} is not in uv.lock"
        assert packages[name]["version"] == version, (
            f"{name}: layer pins {version}, uv.lock has {packages[name]['version']} "
            "(run `make layer-requirements`)"
        )


def test_the_layer_installs_exactly_the_runtime_dependencies() -> None:
    # Given batchlens's runtime dependencies and everything they pull in, per the lock
    closure = runtime_closure(locked())
    # Then the layer pins each of them, and no CLI-only or dev-only package
    assert set(layer_pins()) == closure
    assert {"pydantic", "aws-lambda-powertools", "boto3"} <= closure
    assert not {"pytest", "moto", "pyyaml", "matplotlib"} & closure
