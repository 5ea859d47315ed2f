"""The ``streamer`` command: subcommands normalize, run, demo, sim."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

from streamer import __version__
from streamer.exchanges import ADAPTERS
from streamer.exchanges.base import FrameError
from streamer.model import encode_event

EPILOG = """\
examples:
  streamer demo --duration 60                     the daemon against the built-in simulator, offline
  streamer normalize --exchange binance frames.txt   frames (one per line) -> events (JSON lines)
  streamer run --config config/streamer.example.yaml
"""


def _lines(stream: BinaryIO) -> Iterator[tuple[int, bytes]]:
    for number, line in enumerate(stream, start=1):
        yield number, line.rstrip(b"\r\n")


def cmd_normalize(args: argparse.Namespace) -> int:
    """Frames in, events out; never touches the network."""
    adapter = ADAPTERS[args.exchange]()
    for path in args.instruments:
        try:
            body = Path(path).read_bytes()
        except OSError as exc:
            print(f"streamer normalize: cannot read --instruments {path}: {exc.strerror}", file=sys.stderr)
            return 2
        try:
            adapter.load_instruments(body)
        except FrameError as exc:
            print(
                f"streamer normalize: --instruments {path} is not a {args.exchange} instrument response: {exc}",
                file=sys.stderr,
            )
            return 2
    if args.file == "-":
        source: BinaryIO = sys.stdin.buffer
        interactive = True
    else:
        try:
            source = open(args.file, "rb")  # noqa: SIM115 - closed below
        except OSError as exc:
            print(f"streamer normalize: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
            return 2
        interactive = False
    out = sys.stdout.buffer
    errors = 0
    lines = 0
    events = 0
    try:
        for number, line in _lines(source):
            if not line.strip():
                continue
            lines += 1
            recv_ts = args.recv_ts if args.recv_ts is not None else time.time_ns() // 1_000_000
            try:
                parsed = adapter.parse(line, recv_ts)
            except FrameError as exc:
                errors += 1
                print(f"{args.file}:{number}: unreadable frame ({exc.reason}): {exc.detail}", file=sys.stderr)
                continue
            for event in parsed:
                out.write(encode_event(event))
                out.write(b"\n")
            events += len(parsed)
            if interactive:
                out.flush()
    except OSError as exc:
        print(f"streamer normalize: reading {args.file} failed: {exc}", file=sys.stderr)
        return 2
    finally:
        if source is not sys.stdin.buffer:
            source.close()
        out.flush()
    unmapped = sum(adapter.stats.unmapped.values())
    if errors or unmapped:
        detail = ", ".join(f"{k}={v}" for k, v in sorted(adapter.stats.unmapped.items()))
        print(
            f"streamer normalize: {lines} frames, {events} events, {errors} unreadable"
            + (f", fields left null for want of metadata: {detail}" if unmapped else ""),
            file=sys.stderr,
        )
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """The daemon until SIGTERM/SIGINT."""
    import asyncio

    from streamer.config import ConfigError, load_settings
    from streamer.daemon import run_daemon, setup_logging

    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        print(f"streamer run: {exc}", file=sys.stderr)
        return 2
    if args.http:
        try:
            settings = _with_http(settings, args.http)
        except ValueError as exc:
            print(f"streamer run: --http {args.http!r}: {exc}", file=sys.stderr)
            return 2
    setup_logging(settings.log_level)
    return asyncio.run(run_daemon(settings))


def _with_http(settings: object, spec: str) -> object:
    import msgspec

    host, sep, port = spec.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError("expected HOST:PORT, e.g. 127.0.0.1:9464")
    http = msgspec.structs.replace(settings.http, host=host or "127.0.0.1", port=int(port), enabled=True)  # type: ignore[attr-defined]
    return msgspec.structs.replace(settings, http=http)  # type: ignore[type-var]


def cmd_demo(args: argparse.Namespace) -> int:
    """The daemon against the built-in simulator, offline, no config."""
    import asyncio

    from streamer.daemon import setup_logging
    from streamer.demo import run_demo

    setup_logging("warning" if not args.verbose else "info")
    try:
        return asyncio.run(run_demo(duration_s=args.duration, http=args.http, scenario=args.scenario,
                                    seed=args.seed))
    except ValueError as exc:
        print(f"streamer demo: {exc}", file=sys.stderr)
        return 2


def cmd_sim(args: argparse.Namespace) -> int:
    """The simulator alone."""
    from streamer.sim import main as sim_main

    argv = ["--port", str(args.port), "--seed", str(args.seed)]
    if args.scenario:
        argv += ["--scenario", args.scenario]
    return sim_main(argv)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="streamer",
        description="Track crypto derivatives (liquidations, funding, open interest, options) across "
        "Binance, Bybit, OKX, Deribit and BitMEX.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"streamer {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    norm = sub.add_parser(
        "normalize",
        help="turn recorded exchange frames into normalized events (offline)",
        description="Read WebSocket frames, one per line exactly as received, and print one normalized "
        "event per line as JSON (field names of DESIGN.md). Control frames (acks, pongs) print nothing; "
        "an unreadable line is reported on stderr with its line number and skipped. Never touches the network.",
        epilog="example:\n  streamer normalize --exchange binance \\\n"
        "      --instruments exchangeInfo_um.json --instruments fundingInfo.json frames.txt",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    norm.add_argument("--exchange", required=True, choices=sorted(ADAPTERS), help="venue the frames come from")
    norm.add_argument(
        "--instruments",
        action="append",
        default=[],
        metavar="FILE",
        help="a raw instrument REST response body of the venue (repeatable). Binance: exchangeInfo (USDⓈ-M "
        "or COIN-M) and fundingInfo; Bybit: /v5/market/instruments-info pages; OKX: /api/v5/public/instruments; "
        "Deribit: public/get_instruments; BitMEX: /api/v1/instrument/active",
    )
    norm.add_argument(
        "--recv-ts",
        type=int,
        default=None,
        metavar="MS",
        help="receive time to stamp on every event, ms since epoch (default: now)",
    )
    norm.add_argument("file", nargs="?", default="-", help="frames file, or - for standard input (default)")
    norm.set_defaults(func=cmd_normalize)

    run = sub.add_parser(
        "run",
        help="the daemon: stream, aggregate, alert, serve /metrics",
        description="Run the daemon: WebSocket subscriptions and REST polls per venue, live aggregates, alert "
        "rules; alerts go to stdout as JSON lines, metrics to /metrics. SIGTERM or Ctrl-C stop it cleanly "
        "(exit 0); a second Ctrl-C exits at once.",
        epilog="example:\n  streamer run --config config/streamer.example.yaml --http 127.0.0.1:9464\n"
        "environment overrides: STREAMER__<SECTION>__<KEY>=value, e.g. STREAMER__HTTP__PORT=9000",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("--config", metavar="FILE", help="YAML settings (default: built-in defaults)")
    run.add_argument("--http", metavar="HOST:PORT", help="serve /metrics, /healthz, /readyz, /state here")
    run.set_defaults(func=cmd_run)

    demo = sub.add_parser(
        "demo",
        help="the daemon against the built-in exchange simulator (offline, no config)",
        description="Start the loopback exchange simulator with a scripted market (a liquidation cascade, a "
        "funding spike, an open-interest surge) and the daemon against it. Alerts print on stdout as JSON "
        "lines; progress on stderr; /metrics is live on --http.",
        epilog="example:\n  streamer demo --duration 60 --http 127.0.0.1:9464",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    demo.add_argument("--duration", type=float, default=60.0, metavar="S",
                      help="seconds to run, then exit 0 (default 60; Ctrl-C stops earlier)")
    demo.add_argument("--http", default="127.0.0.1:9464", metavar="HOST:PORT",
                      help="where to serve /metrics etc. (default 127.0.0.1:9464; port 0 picks one)")
    demo.add_argument("--scenario", default="demo", help="simulator scenario: demo, cascade, funding_spike, "
                      "oi_surge, calm (default demo)")
    demo.add_argument("--seed", type=int, default=7, help="simulator seed (default 7)")
    demo.add_argument("-v", "--verbose", action="store_true", help="log connections and polls on stderr")
    demo.set_defaults(func=cmd_demo)

    sim = sub.add_parser(
        "sim",
        help="the loopback exchange simulator alone; prints its URLs",
        description="Serve the simulated venues (WebSocket + REST, each venue's real wire protocol) on "
        "127.0.0.1 until Ctrl-C. Point `streamer run` (or ccxt) at the printed URLs.",
    )
    sim.add_argument("--port", type=int, default=0, help="port (default 0: a free one)")
    sim.add_argument("--seed", type=int, default=0)
    sim.add_argument("--scenario", default=None, help="demo, cascade, funding_spike, oi_surge, calm")
    sim.set_defaults(func=cmd_sim)

    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``streamer`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
