"""The fuzz target shared by the atheris driver (``python -m fuzz``) and the in-process smoke loop.

One input is ``bytes``: byte 0 holds flags (bit 0: hand the frame to ``parse`` as ``str`` rather than
``bytes``; bit 1: use an adapter with no instruments loaded), for REST byte 1 picks the endpoint, and
the rest is the frame / body. Every seed from ``tests/frames/<venue>/cases/*.json`` is encoded the same
way, so the fuzzer starts from real traffic.

Contract checked: ``parse`` / ``parse_rest`` return a list of events or raise
``streamer.exchanges.base.FrameError``; anything else is a crash. Returned events must encode with
``streamer.model.encode_event`` and carry no NaN/inf floats (``InvariantError``, also a crash).
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
import time
import traceback
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FRAMES = ROOT / "tests" / "frames"
CRASHES = Path(__file__).resolve().parent / "crashes"
VENUES = ("binance", "bybit", "okx", "deribit", "bitmex")
RECV_TS = 1_700_000_000_000

FLAG_STR = 1
FLAG_BARE = 2


class InvariantError(AssertionError):
    """An adapter returned an event that breaks the event contract (NaN/inf float, not encodable)."""


@dataclass(frozen=True)
class RestEndpoint:
    """One endpoint name the adapter handles and the params it is called with."""

    name: str
    params: dict[str, str] | None = None


@dataclass
class Corpus:
    """What the recorded cases of one venue give the fuzzer."""

    venue: str
    instrument_files: list[str]
    frames: list[str]
    rest_endpoints: list[RestEndpoint]
    rest_bodies: list[tuple[int, bytes]]  # (endpoint index, body)


def _case_files(venue: str) -> list[Path]:
    return sorted((FRAMES / venue / "cases").glob("*.json"))


def _adapter_endpoints(venue: str, adapter: object) -> list[str]:
    names = getattr(adapter, "REST_ENDPOINTS", None)
    if names:
        return list(names)
    if venue == "deribit":  # no REST_ENDPOINTS tuple: the names parse_rest accepts (see its docstring)
        return ["instruments", "ticker", "open_interest", "book_summary", "funding_rate_history", "last_trades"]
    raise RuntimeError(f"{venue}: cannot tell which REST endpoints the adapter handles")


def load_corpus(venue: str) -> Corpus:
    """Seeds, instrument files and REST endpoints of ``venue``, read from its recorded cases."""
    from streamer.exchanges import ADAPTERS

    root = FRAMES / venue
    instrument_files: list[str] = []
    frames: list[str] = []
    case_params: dict[str, dict[str, str]] = {}
    rest_seeds: list[tuple[str, bytes]] = []
    for path in _case_files(venue):
        case = json.loads(path.read_text())
        for name in case.get("instruments", []):
            if name not in instrument_files:
                instrument_files.append(name)
        if "rest" in case:
            rest = case["rest"]
            if "params" in rest:
                case_params[rest["endpoint"]] = dict(rest["params"])
            rest_seeds.append((rest["endpoint"], (root / rest["body_file"]).read_bytes()))
        else:
            frames.extend(f if isinstance(f, str) else json.dumps(f) for f in case["frames"])
    # parse_rest needs an instrument for these two (ValueError otherwise, by contract)
    defaults = {("okx", "open_interest_history"): {"instId": "BTC-USDT-SWAP", "period": "5m"},
                ("deribit", "funding_rate_history"): {"instrument_name": "BTC-PERPETUAL"}}
    endpoints = []
    for name in _adapter_endpoints(venue, ADAPTERS[venue]()):
        params = case_params.get(name) or defaults.get((venue, name))
        endpoints.append(RestEndpoint(name, params))
    index = {e.name: i for i, e in enumerate(endpoints)}
    rest_bodies = [(index[name], body) for name, body in rest_seeds if name in index]
    return Corpus(venue, instrument_files, frames, endpoints, rest_bodies)


_NUMBER = re.compile(rb'(?<=[:\[,])-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|"-?\d+(?:\.\d+)?"')


def out_of_range(body: bytes, digits: bytes) -> bytes:
    """``body`` with every JSON number and numeric string replaced by ``digits`` (kept quoted where it was)."""
    return _NUMBER.sub(lambda m: b'"' + digits + b'"' if m.group().startswith(b'"') else digits, body)


# numbers past int64, past float64 (as an int and as an exponent): mutations rarely grow digits this far
OUT_OF_RANGE = (b"9" * 25, b"9" * 320, b"1e999")


def seeds(corpus: Corpus, rest: bool) -> list[bytes]:
    """Encoded seed inputs: every recorded frame / body, with and without instruments, and each with its
    numbers out of range (``OUT_OF_RANGE``)."""
    out: list[bytes] = []
    if rest:
        for idx, body in corpus.rest_bodies:
            out.append(bytes([0, idx]) + body)
            out.append(bytes([FLAG_BARE, idx]) + body)
            out += [bytes([0, idx]) + out_of_range(body, d) for d in OUT_OF_RANGE]
    else:
        for frame in corpus.frames:
            out.append(bytes([FLAG_STR]) + frame.encode())
            out.append(bytes([FLAG_BARE]) + frame.encode())
            out += [bytes([0]) + out_of_range(frame.encode(), d) for d in OUT_OF_RANGE]
    return out


def _check_events(events: object) -> None:
    from streamer.model import encode_event

    if not isinstance(events, list):
        raise InvariantError(f"returned {type(events).__name__}, not a list")
    for ev in events:
        encode_event(ev)
        for name in getattr(ev, "__struct_fields__", ()):
            value = getattr(ev, name)
            if isinstance(value, float) and not math.isfinite(value):
                raise InvariantError(f"{type(ev).__name__}.{name} = {value!r}")


@dataclass
class Crash:
    """One distinct crash: its signature, the input and the traceback."""

    signature: str
    data: bytes
    traceback: str
    saved: list[Path] = field(default_factory=list)


class Target:
    """``venue``'s parser (frame or REST) as a function of one ``bytes`` input."""

    REBUILD_EVERY = 20_000  # fresh adapters now and then: state (tables, counters) must not decide a crash

    def __init__(self, venue: str, rest: bool = False, text_only: bool = False) -> None:
        from streamer.exchanges import ADAPTERS
        from streamer.exchanges.base import FrameError

        self.venue = venue
        self.rest = rest
        self.text_only = text_only  # valid UTF-8 only, so the invalid-UTF-8 crash class does not mask others
        self.factory = ADAPTERS[venue]
        self.frame_error = FrameError
        self.corpus = load_corpus(venue)
        self._instrument_bodies = [(FRAMES / venue / n).read_bytes() for n in self.corpus.instrument_files]
        self.inputs = 0
        self.frame_errors = 0
        self.events = 0
        self.crashes: dict[str, Crash] = {}
        self._build()

    def _build(self) -> None:
        self.loaded = self.factory()
        for body in self._instrument_bodies:
            self.loaded.load_instruments(body)
        self.bare = self.factory()

    def _decode(self, data: bytes) -> tuple[object, object, RestEndpoint | None]:
        if self.text_only:
            data = data.decode("utf-8", errors="replace").encode()
        flags = data[0] if data else 0
        adapter = self.bare if flags & FLAG_BARE else self.loaded
        if self.rest:
            endpoints = self.corpus.rest_endpoints
            endpoint = endpoints[(data[1] if len(data) > 1 else 0) % len(endpoints)]
            return adapter, data[2:], endpoint
        payload: object = data[1:]
        if flags & FLAG_STR:
            payload = data[1:].decode("utf-8", errors="replace")
        return adapter, payload, None

    def call(self, data: bytes, adapter: object | None = None) -> list:
        """Run one input (no exception handling): the events, or whatever the adapter raises."""
        chosen, payload, endpoint = self._decode(data)
        adapter = adapter if adapter is not None else chosen
        if endpoint is not None:
            if endpoint.name in ("instruments", "exchangeInfo", "fundingInfo") or endpoint.name.startswith(
                    "instruments_"):
                adapter = self.factory()  # loading garbage metadata must not poison the shared adapters
            events = adapter.parse_rest(endpoint.name, payload, RECV_TS, params=endpoint.params)
        else:
            events = adapter.parse(payload, RECV_TS)
        _check_events(events)
        return events

    def __call__(self, data: bytes) -> None:
        self.inputs += 1
        if self.inputs % self.REBUILD_EVERY == 0:
            self._build()
        try:
            self.events += len(self.call(data))
        except self.frame_error:
            self.frame_errors += 1
        except Exception as exc:  # noqa: BLE001 - everything but FrameError is the finding
            tb = traceback.extract_tb(exc.__traceback__)
            where = next((f"{Path(f.filename).name}:{f.lineno}" for f in reversed(tb)
                          if "/streamer/" in f.filename), "?")
            sig = f"{type(exc).__name__}@{where}"
            if sig not in self.crashes:
                crash = Crash(sig, data, traceback.format_exc())
                self.crashes[sig] = crash
                self.on_crash(crash)

    def on_crash(self, crash: Crash) -> None:
        """Print and save a new crash (overridable)."""
        crash.saved = save_crash(self, crash)
        print(f"\n[{self.venue}{' rest' if self.rest else ''}] CRASH {crash.signature}\n{crash.traceback}"
              f"saved: {', '.join(str(p) for p in crash.saved)}", flush=True)

    def reproduces_fresh(self, data: bytes) -> bool:
        """Whether ``data`` also crashes adapters built just now (no state from earlier inputs)."""
        saved = (self.loaded, self.bare)
        try:
            self._build()
            self.call(data)
        except self.frame_error:
            return False
        except Exception:  # noqa: BLE001
            return True
        finally:
            self.loaded, self.bare = saved
        return False


def save_crash(target: Target, crash: Crash, directory: Path | None = None) -> list[Path]:
    """The raw input (``.bin``) and a draft regression case (``.json``) under ``fuzz/crashes/<venue>/``."""
    out = (directory or CRASHES) / target.venue
    out.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha1(crash.data).hexdigest()[:12]
    stem = f"{'rest_' if target.rest else 'ws_'}{crash.signature.replace('@', '_').replace(':', '_')}_{digest}"
    raw = out / f"{stem}.bin"
    raw.write_bytes(crash.data)
    _, payload, endpoint = target._decode(crash.data)
    flags = crash.data[0] if crash.data else 0
    case: dict[str, object] = {
        "description": f"fuzz crash {crash.signature} (draft: set expected / expected_error, then move to "
                       f"tests/frames/{target.venue}/cases/)",
        "recv_ts": RECV_TS,
        "instruments": [] if flags & FLAG_BARE else target.corpus.instrument_files,
        "fresh_adapter_reproduces": target.reproduces_fresh(crash.data),
        "traceback": crash.traceback.splitlines(),
    }
    if endpoint is not None:
        body = out / f"{stem}.body"
        body.write_bytes(payload)  # type: ignore[arg-type]
        case["rest"] = {"endpoint": endpoint.name, "body_file": f"<copy {body.name} beside the case>",
                        **({"params": endpoint.params} if endpoint.params else {})}
    else:
        text = payload if isinstance(payload, str) else payload.decode("utf-8", errors="replace")  # type: ignore
        case["frames"] = [text]
        case["expected_error"] = "FILL-IN"
    draft = out / f"{stem}.json"
    draft.write_text(json.dumps(case, indent=2, ensure_ascii=False) + "\n")
    return [raw, draft]


# ------------------------------------------------------------------ the pure-Python mutation loop

_INTERESTING = [b"", b"null", b"true", b"0", b"-1", b"1e309", b"-1e400", b"NaN", b"\"\"", b"[]", b"{}", b"\"nan\"",
                b"\"inf\"", b"99999999999999999999999999", b"\"abc\"", b"[{}]", b"{\"a\":[]}", b"\"-0\"", b"1.5"]


def mutate(data: bytes, rng: random.Random, pool: list[bytes]) -> bytes:
    """One random mutation of ``data`` (bytes flips, cuts, splices, JSON-token swaps)."""
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(8)
        pos = rng.randrange(len(buf) + 1)
        if op == 0 and buf:
            buf[pos % len(buf)] = rng.randrange(256)
        elif op == 1:
            del buf[pos:pos + rng.randint(1, 16)]
        elif op == 2:
            buf[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 4)))
        elif op == 3:
            buf = buf[:pos]
        elif op == 4 and pool:  # splice a piece of another seed
            other = rng.choice(pool)
            a = rng.randrange(len(other) + 1)
            buf[pos:pos] = other[a:a + rng.randint(1, 64)]
        else:  # replace a JSON value (after ':' or ',' or '[') with an interesting token
            starts = [i for i in range(len(buf)) if buf[i] in b":,["][:512]
            if starts:
                i = rng.choice(starts) + 1
                j = i
                while j < len(buf) and buf[j] not in b",}]":
                    j += 1
                if j < len(buf) and buf[i:i + 1] in (b"{", b"["):
                    j = i  # do not cut into a nested value: insert instead
                buf[i:j] = rng.choice(_INTERESTING)
    if buf and rng.random() < 0.1:
        buf[0] = rng.randrange(4)  # flags
    return bytes(buf)


def random_loop(target: Target, runs: int | None = None, seconds: float | None = None, seed: int = 0,
                extra: Iterable[bytes] = ()) -> None:
    """Run ``target`` on every seed, then on random mutations, until ``runs`` inputs or ``seconds``."""
    rng = random.Random(seed)
    pool = seeds(target.corpus, target.rest) + list(extra)
    for data in pool:
        target(data)
    deadline = time.monotonic() + seconds if seconds is not None else None
    done = 0
    while (runs is None or done < runs) and (deadline is None or time.monotonic() < deadline):
        target(mutate(rng.choice(pool), rng, pool))
        done += 1

