"""How long masking takes on long, adversarial text: a log line or status reason of up to 256 KB.

Masking runs on every event's free text and on each alert's log excerpt, so one hostile or broken
line (a run of name characters, a secret name repeated, brackets) must cost milliseconds, not
seconds: the time grows with the text's length, never with its square. Prints a markdown table of
the time `Redactor().text` takes per input and size (median of a few runs), and the time
`text.printable` takes on runs of unterminated terminal escapes (each scan must stop at the next).

    uv run python -m bench.bench_redact [--sizes 16384 65536 262144] [--runs 3]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from batchlens.redact import Redactor
from batchlens.text import printable

#: Each input, built to `size` characters.
INPUTS: dict[str, Callable[[int], str]] = {
    "a secret name repeated": lambda size: "password" * (size // 8),
    "the same, with a value": lambda size: "password" * (size // 8 - 2) + "=hunter2",
    "a flag before it": lambda size: "--" + "token" * (size // 5) + " x",
    "a quoted name before it": lambda size: '"' + "secret" * (size // 6) + '": 1',
    "JSON numbers and brackets": lambda size: '{"password": 1]' * (size // 15),
    "name characters only": lambda size: "a" * size,
    "key=value pairs": lambda size: "API_KEY=abc " * (size // 12),
    "a URL's @ repeated": lambda size: "smtp://u:" + "@" * (size - 9),
    "env pairs as JSON": lambda size: '{"name": "DB_PASSWORD", "value": ' * (size // 34),
    "a list opened": lambda size: '"api_keys": [' * (size // 13),
}

#: Inputs for `printable`: escapes that never end, each one a place a scan could start.
ESCAPES: dict[str, Callable[[int], str]] = {
    "unterminated OSCs (ESC ])": lambda size: "\x1b]" * (size // 2),
    "unterminated 8-bit OSCs (U+009D)": lambda size: "\x9d" * size,
    "CSI parameters, no final byte": lambda size: "\x1b[" + "1;" * (size // 2),
}


def measure(text: str, runs: int, clean: Callable[[str], object] | None = None) -> float:
    clean = clean or Redactor().text
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        clean(text)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[16_384, 65_536, 262_144])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print("| input | " + " | ".join(f"{size // 1024} KiB" for size in args.sizes) + " |")
    print("|---|" + "---:|" * len(args.sizes))
    for name, build in INPUTS.items():
        cells = [f"{measure(build(size), args.runs) * 1000:.1f} ms" for size in args.sizes]
        print(f"| {name} | " + " | ".join(cells) + " |")
    for name, build in ESCAPES.items():
        cells = [
            f"{measure(build(size), args.runs, printable) * 1000:.1f} ms" for size in args.sizes
        ]
        print(f"| printable: {name} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
