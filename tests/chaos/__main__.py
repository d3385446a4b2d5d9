"""`python -m tests.chaos [--small]`: run the soak, print its figures, write reports/chaos.json.

Exits 1 when anything was lost, moved backwards, alerted twice or not at all, or when the
dead-letter queue holds anything but the poison inputs.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

from tests.chaos.soak import REPORT_KEYS, SoakConfig, failures, run

REPORTS = Path(__file__).resolve().parents[2] / "reports"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos", description=__doc__)
    parser.add_argument("--small", action="store_true", help="600 events, 60 jobs (make test)")
    parser.add_argument("--events", type=int, help="events to deliver (default 6500)")
    parser.add_argument("--jobs", type=int, help="jobs at least (default 650)")
    parser.add_argument("--seed", type=int, help="workload and fault seed")
    parser.add_argument("--out", type=Path, default=REPORTS / "chaos.json", help="report path")
    args = parser.parse_args(argv)

    config = SoakConfig.small() if args.small else SoakConfig()
    overrides = {"events": args.events, "jobs": args.jobs, "seed": args.seed}
    config = replace(config, **{k: v for k, v in overrides.items() if v is not None})
    args.out.parent.mkdir(parents=True, exist_ok=True)
    report = run(config, args.out.with_suffix(".log"))
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")

    width = max(len(key) for key in REPORT_KEYS)
    for key in REPORT_KEYS:
        print(f"{key:<{width}}  {report[key]}")
    print(f"({report['details']['seconds']} s; details in {args.out})")
    problems = failures(report)
    for problem in problems:
        print(f"FAILED: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
