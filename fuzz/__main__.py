"""``python -m fuzz [--adapter binance|bybit|okx|deribit|bitmex|all] [--runs N] [--rest]``.

Each adapter is fuzzed in its own child process (libFuzzer ends the process when its run is over);
the parent prints inputs/s and totals per adapter and exits 1 if any child found a crash.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from fuzz.core import ROOT, VENUES


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m fuzz", description=__doc__.splitlines()[0])
    p.add_argument("--adapter", default="all", choices=[*VENUES, "all"])
    p.add_argument("--runs", type=int, default=100_000, help="inputs per adapter (default 100000)")
    p.add_argument("--rest", action="store_true", help="fuzz parse_rest over every endpoint instead of parse")
    p.add_argument("--text-only", action="store_true",
                   help="feed valid UTF-8 only (the invalid-UTF-8 crash class otherwise masks the rest)")
    p.add_argument("--engine", default="atheris", choices=["atheris", "random"],
                   help="atheris (coverage-guided, default) or random (pure-Python mutation loop)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-len", type=int, default=0, help="libFuzzer -max_len (default: largest seed + 256)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    engine = args.engine
    if engine == "atheris":
        try:
            import atheris  # noqa: F401
        except ImportError:
            print("atheris is not installed (pip install -e '.[fuzz]'): falling back to --engine random")
            engine = "random"
    venues = list(VENUES) if args.adapter == "all" else [args.adapter]
    rows = []
    for venue in venues:
        with tempfile.TemporaryDirectory(prefix="fuzz-stats-") as tmp:
            stats_file = Path(tmp) / "stats.json"
            cmd = [sys.executable, "-m", "fuzz.worker", venue, str(args.runs), str(stats_file),
                   "--engine", engine, "--seed", str(args.seed), "--max-len", str(args.max_len)]
            if args.rest:
                cmd.append("--rest")
            if args.text_only:
                cmd.append("--text-only")
            print(f"== {venue}{' (rest)' if args.rest else ''}: {args.runs} inputs, engine {engine}", flush=True)
            start = time.monotonic()
            proc = subprocess.run(cmd, cwd=ROOT, check=False)
            elapsed = time.monotonic() - start
            stats = json.loads(stats_file.read_text()) if stats_file.exists() else {}
        stats.setdefault("inputs", 0)
        stats.setdefault("crashes", [])
        if proc.returncode != 0 and not stats["crashes"]:
            stats["crashes"].append(f"worker exited {proc.returncode}")
        rows.append((venue, stats, stats.get("seconds") or elapsed))
    print(f"\n{'adapter':<10}{'inputs':>12}{'inputs/s':>11}{'FrameError':>12}{'events':>12}{'crashes':>9}")
    failed = False
    for venue, stats, seconds in rows:
        rate = stats["inputs"] / seconds if seconds else 0.0
        print(f"{venue:<10}{stats['inputs']:>12}{rate:>11.0f}{stats.get('frame_errors', 0):>12}"
              f"{stats.get('events', 0):>12}{len(stats['crashes']):>9}")
        for sig in stats["crashes"]:
            print(f"    crash: {sig}")
        failed |= bool(stats["crashes"])
    if failed:
        print("\ncrash inputs saved under fuzz/crashes/<venue>/ (see fuzz/README.md)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
