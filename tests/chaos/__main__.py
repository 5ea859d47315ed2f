"""``python -m tests.chaos [--duration S] [--json PATH]``: the chaos run, its report and its checks (exit 1: unmet)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from pathlib import Path

from tests.chaos.chaos_run import check, run_chaos, summary


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.chaos", description=__doc__.splitlines()[0])
    p.add_argument("--duration", type=float, default=600.0, help="seconds of faults in the in-process phase")
    p.add_argument("--json", type=Path, help="also write the full report here")
    p.add_argument("--seed", type=int, default=20261124)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="chaos-") as tmp:
        report = asyncio.run(run_chaos(args.duration, Path(tmp), seed=args.seed))
    text = json.dumps(report, indent=1, default=str)
    if args.json:
        args.json.write_text(text + "\n")
    print(text)
    print(summary(report))
    try:
        check(report, args.duration)
    except AssertionError as exc:
        print(f"\nchaos run: a figure is not met: {exc}")
        return 1
    print("\nchaos run: every figure met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
