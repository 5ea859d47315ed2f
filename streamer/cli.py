"""The ``streamer`` command: subcommands normalize, run, demo, sim, and the one-shot reports funding, oi,
liquidations, options, basis."""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from streamer import __version__
from streamer.exchanges import ADAPTERS
from streamer.exchanges.base import FrameError
from streamer.model import encode_event

if TYPE_CHECKING:
    from collections.abc import Awaitable

    from streamer.config import Settings
    from streamer.snapshot import Snapshot

EPILOG = """\
examples:
  streamer demo --duration 60                     the daemon against the built-in simulator, offline
  streamer normalize --exchange binance frames.txt   frames (one per line) -> events (JSON lines)
  streamer run --config config/streamer.example.yaml
  streamer demo --duration 40 --record rec && streamer replay rec/*   the same alerts again, offline
  streamer funding BTC ETH                        funding across venues, now (one-shot, public REST)
  streamer oi BTC --sim --level 3                 open interest from the built-in simulator, full dashboard
"""

REPORT_COMMANDS = ("funding", "oi", "liquidations", "options", "basis")
REPORT_VENUES = ("binance", "bybit", "okx", "deribit", "bitmex")
REPORT_HELP = {
    "funding": "funding rates across venues: per venue, OI- and volume-weighted averages, spread and carry",
    "oi": "open interest across venues: contracts, base, USD, 24 h / 7 d change, shares, margin split",
    "liquidations": "recent liquidations: totals by side and venue, largest prints, heatmap, cascade risk",
    "options": "options: ATM IV term structure, 25-delta skew, put/call ratios, max pain, OI (Deribit, OKX, Bybit)",
    "basis": "perpetual premium and dated-futures basis per venue, annualized, as a term structure",
}
REPORT_DESCRIPTION = {
    "funding": "Fetch the current funding of every perpetual of BASE on each venue (public REST, in parallel) and "
    "show per venue: the rate per interval, its 8 h equivalent, annualized, the 24 h average, the predicted rate and "
    "the next funding time; across venues: the OI-weighted and volume-weighted averages and the widest spread with "
    "its annualized carry.",
    "oi": "Fetch open interest of every perpetual of BASE on each venue and show it in contracts, base units and USD, "
    "its 24 h and 7 d change, the long/short ratio where the venue publishes one, each venue's share of the total "
    "and the coin- vs stablecoin-margined split.",
    "liquidations": "Show the liquidations of the last --window: totals by side and venue, the largest prints, a "
    "price heatmap (level 3) and the cascade risk. Binance and Bybit publish no liquidation history over REST: "
    "without --daemon their part is marked unavailable and totals are a lower bound (shown with >=).",
    "options": "Summarize the option chains of BASE on Deribit (primary), OKX and Bybit: per expiry the ATM IV (the "
    "IV term structure), the 25-delta skew, put/call ratios by volume and open interest, max pain and open interest "
    "in USD; IV extremes are flagged.",
    "basis": "Show each venue's perpetual premium (mark vs index) and every dated future's basis and annualized "
    "basis per expiry, side by side across venues (the term structure).",
}
REPORT_EPILOG = {
    "funding": "examples:\n  streamer funding                     BTC on every venue, the standard table\n"
    "  streamer funding BTC ETH --level 1   one line per base\n"
    "  streamer funding --exchange binance --exchange okx --format csv\n"
    "  streamer funding --sim --level 3     the full dashboard, from the built-in simulator (offline)",
    "oi": "examples:\n  streamer oi BTC\n  streamer oi BTC --sim --level 3\n  streamer oi ETH --format json",
    "liquidations": "examples:\n  streamer liquidations BTC --window 4h\n"
    "  streamer liquidations BTC --daemon http://127.0.0.1:9464   Binance/Bybit from a running daemon\n"
    "  streamer liquidations --sim --level 3",
    "options": "examples:\n  streamer options BTC\n  streamer options ETH --exchange deribit --level 3\n"
    "  streamer options BTC --sim --format json",
    "basis": "examples:\n  streamer basis BTC\n  streamer basis BTC --sim --format csv\n"
    "  streamer basis BTC --level 3           per-expiry term structure side by side",
}
_WINDOW_RE = re.compile(r"^(\d+)([mhd])$")
_WINDOW_UNIT_MS = {"m": 60_000, "h": 3_600_000, "d": 86_400_000}
_BASE_RE = re.compile(r"^[A-Za-z0-9]{1,20}$")
PROGRESS_DELAY_S = 0.3
"""The progress indicator shows only once a fetch has run this long (and stderr is a terminal)."""



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
    from streamer.daemon import bus_from_settings

    try:
        bus_from_settings(settings, args.role)  # validates the role against bus.backend before any I/O
    except ValueError as exc:
        print(f"streamer run: {exc}", file=sys.stderr)
        return 2
    setup_logging(settings.log_level)
    return asyncio.run(run_daemon(settings, args.role))


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
                                    seed=args.seed, webhook=args.webhook, record=args.record))
    except ValueError as exc:
        print(f"streamer demo: {exc}", file=sys.stderr)
        return 2


def cmd_record(args: argparse.Namespace) -> int:
    """A recording-only process: the config's sessions and REST with its record: section forced on. It may run
    beside ``streamer run`` on the same config: no delivery sinks (nothing is delivered twice), no HTTP unless
    ``--http``, and its own ``state_dir`` (``<state_dir>/record``) so the two never share an episode journal."""
    import asyncio

    import msgspec

    from streamer.config import ConfigError, SinksSettings, load_settings
    from streamer.daemon import run_daemon, setup_logging

    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        print(f"streamer record: {exc}", file=sys.stderr)
        return 2
    record = msgspec.structs.replace(settings.record, enabled=True, **({"dir": args.dir} if args.dir else {}))
    settings = msgspec.structs.replace(
        settings, record=record, sinks=SinksSettings(), http=msgspec.structs.replace(settings.http, enabled=False),
        state_dir=str(Path(settings.state_dir).expanduser() / "record"),
        # in-memory bus even when the config says nats: a recorder must not publish, nor take the aggregator's
        # messages from its durable consumer
        bus=msgspec.structs.replace(settings.bus, backend="memory"))
    if args.http:
        try:
            settings = _with_http(settings, args.http)  # type: ignore[assignment]
        except ValueError as exc:
            print(f"streamer record: --http {args.http!r}: {exc}", file=sys.stderr)
            return 2
    setup_logging(settings.log_level)
    print(f"streamer record: recording in {record.dir} (at most {record.max_bytes:,} bytes)", file=sys.stderr)
    return asyncio.run(run_daemon(settings))


def cmd_replay(args: argparse.Namespace) -> int:
    """Recordings through the adapters and rules; alerts on stdout."""
    import asyncio

    from streamer.config import ConfigError, load_settings
    from streamer.replay import run_replay

    rules = None
    if args.rules:
        try:
            rules = load_settings(args.rules, env={}).rules
        except ConfigError as exc:
            print(f"streamer replay: --rules: {exc}", file=sys.stderr)
            return 2
    try:
        asyncio.run(run_replay(args.files, rules=rules, speed=None if args.max else args.speed,
                               exchange=args.exchange, instruments=args.instruments))
    except ValueError as exc:
        print(f"streamer replay: {exc}", file=sys.stderr)
        return 2
    return 0


def cmd_sim(args: argparse.Namespace) -> int:
    """The simulator alone."""
    from streamer.sim import main as sim_main

    argv = ["--port", str(args.port), "--seed", str(args.seed)]
    if args.scenario:
        argv += ["--scenario", args.scenario]
    return sim_main(argv)


def parse_window(text: str) -> int:
    """``15m``, ``1h``, ``4h``, ``24h``, ``2d`` -> ms; raises ArgumentTypeError naming the value."""
    m = _WINDOW_RE.match(text.strip().lower())
    ms = int(m[1]) * _WINDOW_UNIT_MS[m[2]] if m else 0
    if not m or not 0 < ms <= 7 * 86_400_000:
        raise argparse.ArgumentTypeError(f"{text!r} is not a window: expected minutes, hours or days up to 7d, "
                                         "e.g. 15m, 1h, 4h or 24h")
    return ms


def parse_base(text: str) -> str:
    """A base asset: upper case, ``XBT`` written ``BTC``; raises ArgumentTypeError naming the value."""
    if not _BASE_RE.match(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a base asset: expected letters and digits, e.g. BTC, ETH")
    up = text.upper()
    return "BTC" if up == "XBT" else up


def _daemon_url(text: str) -> str:
    if not text.startswith(("http://", "https://")):
        raise argparse.ArgumentTypeError(f"{text!r}: expected the daemon's http:// or https:// URL, "
                                         "e.g. http://127.0.0.1:9464")
    return text.rstrip("/")


class _Progress:
    """A spinner on stderr, shown only once a fetch has run ``PROGRESS_DELAY_S`` and only on a terminal."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.status: Any = None

    def update(self, line: str) -> None:
        """The fetch layer's per-venue progress line (``okx: 12 calls done``)."""
        if self.status is not None:
            self.status.update(f"{self.label} ({line})")

    async def run(self, coro: Awaitable[Snapshot]) -> Snapshot:
        import asyncio

        task = asyncio.ensure_future(coro)
        done, _ = await asyncio.wait({task}, timeout=PROGRESS_DELAY_S)
        if done or not sys.stderr.isatty():
            return await task
        from rich.console import Console

        with Console(stderr=True).status(self.label, spinner="dots") as status:
            self.status = status
            try:
                return await task
            finally:
                self.status = None


async def _snapshot(
    args: argparse.Namespace, settings: Settings, bases: list[str], exchanges: list[str] | None
) -> Snapshot:
    from streamer import snapshot as snapshot_mod

    where = "the simulator" if args.sim else ", ".join(exchanges or REPORT_VENUES)
    progress = _Progress(f"fetching {args.command} for {' '.join(bases)} from {where}…")
    window_ms = getattr(args, "window", None)
    if args.sim:
        coro = snapshot_mod.sim_snapshot(args.command, bases, exchanges, window_ms=window_ms,
                                         progress=progress.update)
    else:
        coro = snapshot_mod.take_snapshot(args.command, bases, exchanges, settings=settings,
                                          no_cache=bool(args.no_cache), window_ms=window_ms,
                                          daemon_url=getattr(args, "daemon", None), progress=progress.update)
    return await progress.run(coro)


def cmd_report(args: argparse.Namespace) -> int:
    """One-shot report: fetch a snapshot, analyse, print it; 1 when no venue gave data."""
    import asyncio
    import shutil

    from streamer.config import ConfigError, load_settings
    from streamer.report import build_report, render, venue_failure_summary

    prog = f"streamer {args.command}"
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    bases = list(dict.fromkeys(args.bases or ["BTC"]))
    exchanges = list(dict.fromkeys(args.exchange)) if args.exchange else None
    snapshot = asyncio.run(_snapshot(args, settings, bases, exchanges))
    if not snapshot.ok_venues():
        why = venue_failure_summary(snapshot)
        print(f"{prog}: nothing could be fetched for {' '.join(bases)}: {why}", file=sys.stderr)
        return 1
    report = build_report(snapshot, rules=settings.rules)
    tty = sys.stdout.isatty()
    width = args.width or (shutil.get_terminal_size().columns if tty else None)
    text = render(report, args.level, args.format, width, color=tty and args.format == "console")
    sys.stdout.write(text)
    sys.stdout.flush()
    return 0


def _add_report_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser], command: str) -> None:
    import textwrap

    p = sub.add_parser(command, help=REPORT_HELP[command], description=textwrap.fill(REPORT_DESCRIPTION[command], 79),
                       epilog=REPORT_EPILOG[command], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("bases", nargs="*", type=parse_base, metavar="BASE",
                   help="base assets, e.g. BTC ETH (default BTC; XBT means BTC)")
    p.add_argument("--exchange", action="append", choices=REPORT_VENUES, metavar="NAME",
                   help=f"venue to ask (repeatable; default all): {', '.join(REPORT_VENUES)}")
    p.add_argument("--level", type=int, choices=(1, 2, 3), default=2,
                   help="console detail: 1 one line, 2 the standard table (default), 3 the full dashboard")
    p.add_argument("--format", choices=("console", "json", "csv"), default="console",
                   help="console (default), json (schema in docs/cli-schemas/), csv (one row per venue/instrument)")
    p.add_argument("--sim", action="store_true", help="answer from the built-in exchange simulator (offline)")
    p.add_argument("--config", metavar="FILE", help="YAML settings, as for `streamer run` (venue URLs, thresholds)")
    p.add_argument("--no-cache", action="store_true", help="ignore the on-disk response cache and refetch")
    p.add_argument("--width", type=int, metavar="N", help="console width in characters (default: the terminal's)")
    if command == "liquidations":
        p.add_argument("--window", type=parse_window, default=3_600_000, metavar="DURATION",
                       help="how far back: 15m, 1h (default), 4h, 24h")
        p.add_argument("--daemon", type=_daemon_url, metavar="URL",
                       help="a running daemon's HTTP URL, for venues without public liquidation history")
    p.set_defaults(func=cmd_report)


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
    run.add_argument("--role", choices=["all", "ingest", "aggregate"], default="all",
                     help="all (default): everything in one process; ingest: venues -> bus only; aggregate: "
                     "bus -> state, rules, sinks. Split roles need bus.backend: nats (docs/nats.md)")
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
    demo.add_argument("--webhook", metavar="URL",
                      help="also POST every alert to URL, signed per Standard Webhooks with the secret in "
                           "STREAMER_WEBHOOK_SECRET (whsec_<base64>); undelivered alerts wait in a durable outbox")
    demo.add_argument("--record", metavar="DIR", help="record the raw frames in DIR, for `streamer replay DIR/*`")
    demo.add_argument("-v", "--verbose", action="store_true", help="log connections and polls on stderr")
    demo.set_defaults(func=cmd_demo)

    record = sub.add_parser(
        "record",
        help="record raw frames only (for streamer replay)",
        description="Run the config's WebSocket sessions and REST polls and record every raw frame, REST body, "
        "instrument body and connection change (zstd JSON lines, one file per UTC hour, at most record.max_bytes). "
        "It can run beside `streamer run` on the same config: the rules run and alerts print on stdout, but no "
        "webhook/Alertmanager/chat sink, no HTTP unless --http, and state in <state_dir>/record. SIGTERM or "
        "Ctrl-C close the last file cleanly.",
        epilog="example:\n  streamer record --config config/streamer.example.yaml --dir /var/lib/streamer/rec",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    record.add_argument("--config", metavar="FILE", help="YAML settings (default: built-in defaults)")
    record.add_argument("--dir", metavar="DIR", help="where the files go (default: record.dir of the config)")
    record.add_argument("--http", metavar="HOST:PORT", help="serve /metrics etc. here (default: off)")
    record.set_defaults(func=cmd_record)

    replay = sub.add_parser(
        "replay",
        help="replay recordings through the adapters and alert rules; print the alerts",
        description="Feed recordings (streamer record / demo --record files, or tardis.dev raw data files) through "
        "the same adapters, live state and alert rules as the daemon, on event time, and print the alerts as JSON "
        "lines, exactly as the daemon's stdout sink does. A summary goes to stderr. See docs/replay.md.",
        epilog="examples:\n  streamer replay rec/*                           the recorded run's own rules\n"
        "  streamer replay rec/* --rules other.yaml         what other thresholds would have raised\n"
        "  streamer replay --exchange bitmex bitmex_2020-03-12.json.gz   a tardis.dev raw data file",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    replay.add_argument("files", nargs="+", metavar="FILE", help="recording files, replayed in the order given")
    pace = replay.add_mutually_exclusive_group()
    pace.add_argument("--max", action="store_true", help="as fast as possible (the default)")
    pace.add_argument("--speed", type=float, default=None, metavar="N",
                      help="pace by recorded receive time, N times faster (1 = real time)")
    replay.add_argument("--rules", metavar="FILE", help="YAML config whose rules: section to apply instead of "
                        "the recording's own")
    replay.add_argument("--format", choices=["json"], default="json", help="alert output: JSON lines (default)")
    replay.add_argument("--exchange", metavar="ID", help="tardis.dev exchange id of tardis files (default: from "
                        "the file name): binance-futures, binance-delivery, bybit, okex-swap, okex-futures, "
                        "okex-options, deribit, bitmex")
    replay.add_argument("--instruments", action="append", default=[], metavar="FILE",
                        help="an instrument REST body of --exchange's venue, loaded first (repeatable; tardis "
                        "files carry none: contract sizes, hence USD values, stay null without it)")
    replay.set_defaults(func=cmd_replay)

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

    for command in REPORT_COMMANDS:
        _add_report_parser(sub, command)

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
