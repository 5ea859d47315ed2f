"""``python -m bench [throughput|latency|memory|all] [--quick] [--json PATH]``: run benchmark sections.

A section is a module ``bench.<name>`` with ``section(args, console) -> dict`` (it prints its own table
and returns its JSON part). Sections listed in ``SECTIONS`` whose module does not exist yet are skipped by
``all`` (the default) and refused when named. The process is pinned to one CPU first (``--no-pin`` to
leave it), so ratios read from one run compare like with like.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import platform
import subprocess
import sys
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import orjson

SECTIONS = ("throughput", "latency", "memory")


def available() -> list[str]:
    """Sections whose module exists."""
    return [name for name in SECTIONS if importlib.util.find_spec(f"bench.{name}") is not None]


def _version(dist: str) -> str | None:
    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git() -> dict[str, Any]:
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5,
                              check=False).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=5, check=False).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return {}
    return {"commit": head or None, "dirty": bool(dirty)}


def machine(pinned: int | None) -> dict[str, Any]:
    """What the numbers were measured on."""
    return {
        "cpu_model": _cpu_model(),
        "cpus_online": os.cpu_count(),
        "pinned_cpu": pinned,
        "python": sys.version.split()[0],
        "python_impl": platform.python_implementation(),
        "platform": platform.platform(),
        "versions": {d: _version(d) for d in ("streamer", "orjson", "msgspec", "cryptofeed", "yapic.json", "rich")},
        "git": _git(),
    }


def pin() -> int | None:
    """Pin this process to one CPU (the highest allowed); returns it, or None where not supported."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    cpu = max(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    return cpu


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    p.add_argument("sections", nargs="*", default=["all"], metavar="SECTION",
                   help=f"{' | '.join(SECTIONS)} | all (default: all that exist: {', '.join(available())})")
    p.add_argument("--quick", action="store_true", help="small sizes, for a smoke run (well under a minute)")
    p.add_argument("--json", metavar="PATH", help="write the results (with machine info) as JSON here")
    p.add_argument("--no-pin", action="store_true", help="do not pin the process to one CPU")
    p.add_argument("--frames", type=int, help="throughput: frames per kind (overrides the preset)")
    p.add_argument("--reps", type=int, help="throughput: repetitions (overrides the preset)")
    p.add_argument("--kinds", help="throughput: comma-separated kind names (default: all)")
    p.add_argument("--no-cryptofeed", action="store_true", help="throughput: leave cryptofeed out")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    from rich.console import Console

    args = parse_args(argv)
    console = Console()
    if not console.is_terminal:  # piped or captured: keep the table's rows on one line each
        console = Console(width=200)
    have = available()
    wanted = have if "all" in args.sections else args.sections
    for name in wanted:
        if name not in SECTIONS:
            console.print(f"[red]unknown section {name!r}; known: {', '.join(SECTIONS)}[/red]")
            return 2
        if name not in have:
            console.print(f"[red]section {name!r} is not written yet (no bench/{name}.py)[/red]")
            return 2
    pinned = None if args.no_pin else pin()
    info = machine(pinned)
    console.print(f"[bold]streamer bench[/bold] on {info['cpu_model']} ({info['cpus_online']} CPUs), "
                  f"Python {info['python']}, "
                  + (f"pinned to CPU {pinned} (os.sched_setaffinity)" if pinned is not None else "not pinned"),
                  highlight=False)
    console.print("versions: " + ", ".join(f"{k} {v}" for k, v in info["versions"].items() if v), highlight=False)
    out: dict[str, Any] = {"machine": info, "started_unix_s": round(time.time(), 3), "sections": {}}
    for name in wanted:
        module = importlib.import_module(f"bench.{name}")
        t0 = time.perf_counter()
        out["sections"][name] = module.section(args, console)
        out["sections"][name]["elapsed_s"] = round(time.perf_counter() - t0, 2)
    if args.json:
        Path(args.json).write_bytes(orjson.dumps(out, option=orjson.OPT_INDENT_2))
        console.print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
