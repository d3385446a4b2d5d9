"""Every `batchlens` command line the README shows is one the CLI accepts, as written.

The README is part of the product: an example with a misspelt option or a value the CLI refuses
fails the reader at their first try. Each line is parsed by the real parser (nothing is run), with
the README's placeholders (`<stack-name>`, `DLQ_URL`) standing in as values.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from batchlens.cli import build_parser

README = Path(__file__).resolve().parents[2] / "README.md"

#: A command line in a fenced block: `batchlens …` or `uv run batchlens …`, up to a comment or a
#: redirection.
_COMMAND = re.compile(r"^(?:uv run )?batchlens (?P<args>[^#>|]+)")


def readme_commands() -> list[str]:
    commands: list[str] = []
    fenced = False
    for line in README.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            fenced = not fenced
            continue
        if fenced and (match := _COMMAND.match(line.strip())):
            commands.append(match["args"].strip())
    return commands


def test_the_readme_shows_commands_of_every_kind() -> None:
    # The pattern finds the README's examples (a renamed fence or prefix would silently find none)
    verbs = {shlex.split(command)[0] for command in readme_commands()}
    assert {"jobs", "job", "failures", "stats", "preview", "redrive", "backfill"} <= verbs


@pytest.mark.parametrize("command", readme_commands())
def test_a_readme_command_parses_as_written(command: str) -> None:
    # Given a command line from the README
    argv = shlex.split(command)

    # When the CLI's own parser reads it, then it is accepted (argparse exits 2 on a bad line)
    args = build_parser().parse_args(argv)
    assert args.command == argv[0]
