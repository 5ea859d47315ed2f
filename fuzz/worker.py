"""One adapter's fuzz run in this process; writes its totals to a JSON stats file (see fuzz/__main__.py)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("venue")
    p.add_argument("runs", type=int)
    p.add_argument("stats_file", type=Path)
    p.add_argument("--rest", action="store_true")
    p.add_argument("--text-only", action="store_true")
    p.add_argument("--engine", default="atheris")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-len", type=int, default=0)
    args = p.parse_args()

    if args.engine == "atheris":
        import atheris

        with atheris.instrument_imports(include=["streamer"]):
            import streamer.exchanges
            import streamer.model  # noqa: F401
    from fuzz.core import Target, random_loop, seeds

    target = Target(args.venue, rest=args.rest, text_only=args.text_only)
    start = time.monotonic()

    def write_stats() -> None:
        args.stats_file.write_text(json.dumps({
            "inputs": target.inputs, "frame_errors": target.frame_errors, "events": target.events,
            "seconds": time.monotonic() - start, "crashes": sorted(target.crashes),
        }))

    if args.engine == "random":
        random_loop(target, runs=args.runs, seed=args.seed)
        write_stats()
        sys.exit(1 if target.crashes else 0)

    orig_on_crash = target.on_crash

    def on_crash(crash):
        orig_on_crash(crash)
        write_stats()

    target.on_crash = on_crash  # type: ignore[method-assign]

    def one_input(data: bytes) -> None:
        target(data)
        if target.inputs % 5000 == 0:
            write_stats()
        if target.inputs >= args.runs:  # libFuzzer's own exit skips Python's atexit: end here, stats written
            write_stats()
            sys.stdout.flush()
            os._exit(1 if target.crashes else 0)

    seed_inputs = seeds(target.corpus, target.rest)
    with tempfile.TemporaryDirectory(prefix=f"fuzz-{args.venue}-") as corpus_dir:
        for i, data in enumerate(seed_inputs):
            (Path(corpus_dir) / f"seed{i:04d}").write_bytes(data)
        max_len = args.max_len or max(len(s) for s in seed_inputs) + 256
        argv = [sys.argv[0], corpus_dir, f"-seed={args.seed + 1}", f"-max_len={max_len}",
                "-reload=0", "-print_pcs=0"]
        atheris.Setup(argv, one_input)
        atheris.Fuzz()


if __name__ == "__main__":
    main()
