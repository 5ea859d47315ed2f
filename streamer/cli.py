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
        help="a raw instrument REST response body of the venue (repeatable; Binance: exchangeInfo, fundingInfo)",
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
