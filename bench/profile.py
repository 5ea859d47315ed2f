"""Profile one kind through the adapter or the pipeline: ``python -m bench.profile KIND [adapter|pipeline]``.

cProfile over the same loop the throughput section times (frames from ``bench.frames``), printing the top
functions by own time; ``--pyinstrument`` renders a pyinstrument call tree instead (bench extra).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys

from bench.frames import KIND_NAMES, build
from bench.throughput import _loaded_adapter, _new_daemon, _time_adapter, _time_pipeline


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__.splitlines()[0])
    p.add_argument("kind", choices=KIND_NAMES)
    p.add_argument("method", nargs="?", default="pipeline", choices=("adapter", "pipeline"))
    p.add_argument("--frames", type=int, default=10_000)
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--pyinstrument", action="store_true")
    args = p.parse_args(argv)

    kind = build(args.frames, only=[args.kind]).kinds[0]
    adapter = _loaded_adapter(kind)
    daemon = _new_daemon() if args.method == "pipeline" else None

    def work() -> None:
        if daemon is not None:
            _time_pipeline(adapter, daemon, kind.frames, kind.recv_ts)
        else:
            _time_adapter(adapter, kind.frames, kind.recv_ts)

    if args.pyinstrument:
        from pyinstrument import Profiler

        prof = Profiler(interval=0.0002)
        prof.start()
        work()
        prof.stop()
        print(prof.output_text(unicode=True, color=False, show_all=False))
        return 0
    cp = cProfile.Profile()
    cp.enable()
    work()
    cp.disable()
    buf = io.StringIO()
    stats = pstats.Stats(cp, stream=buf)
    stats.sort_stats("tottime").print_stats(args.top)
    print(f"{kind.name} / {args.method}: {len(kind.frames):,} frames")
    print(buf.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main())
