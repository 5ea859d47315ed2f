"""HTTP: ``/metrics``, ``/healthz``, ``/readyz``, JSON state, and the live dashboard (``/`` + ``/events`` SSE).

Runs on an aiohttp AppRunner in the daemon's loop.

Binds 127.0.0.1 by default; binding another address logs a warning (the
endpoints are read-only but reveal what the daemon tracks), a louder one when no token is set.

Optional bearer token (``http.token`` / ``STREAMER_HTTP_TOKEN``): when set, every endpoint except
``/healthz`` (liveness probes carry no credentials) answers 401 with ``WWW-Authenticate: Bearer``
unless the request has ``Authorization: Bearer <token>``; ``/metrics`` included. Prometheus sends it
with ``authorization: {type: Bearer, credentials_file: /path/to/token}`` (or ``credentials:``) in the
scrape config. A browser's EventSource cannot send headers, so the dashboard's two paths, ``/`` and
``/events``, also accept the token as ``?token=<token>`` (compared in constant time; every other path
ignores the query). The page takes it from its own URL and passes it on to ``/events``; the server
never writes it into a response.

``/`` is the dashboard page (HTML, JS and CSS from ``streamer/web/static``, inlined into one response,
with a Content-Security-Policy that allows only that inline script and same-origin connections).
``/events`` is its Server-Sent Events stream (``streamer.web.hub``): a bounded buffer per browser, so
a slow one never slows the daemon; 503 once ``max_clients`` are connected.

Only GET (and HEAD) routes exist, nothing changes state: any other method is 405. Request bodies are
capped at 64 KiB (``client_max_size``; larger is 413) and headers by aiohttp's own line/field limits.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
from collections.abc import Callable, Mapping
from importlib import resources
from typing import Any

import orjson
from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from streamer.web.hub import EventHub

log = logging.getLogger("streamer.api")

JsonSource = Callable[[], Mapping[str, Any]]

MAX_REQUEST_BYTES = 64 * 1024
LOOPBACK = ("127.0.0.1", "localhost", "::1")
OPEN_PATHS = frozenset({"/healthz"})
QUERY_TOKEN_PATHS = frozenset({"/", "/events"})
"""Paths that also accept ``?token=`` (a browser's EventSource cannot send an Authorization header)."""


def dashboard_page() -> tuple[bytes, str]:
    """The dashboard: ``index.html`` with ``dashboard.css`` and ``dashboard.js`` inlined, and its CSP header."""
    static = resources.files("streamer.web") / "static"
    html = (static / "index.html").read_text("utf-8")
    css = (static / "dashboard.css").read_text("utf-8")
    js = (static / "dashboard.js").read_text("utf-8")
    script_hash = base64.b64encode(hashlib.sha256(js.encode()).digest()).decode()
    style_hash = base64.b64encode(hashlib.sha256(css.encode()).digest()).decode()
    page = html.replace("/*DASHBOARD_CSS*/", css).replace("/*DASHBOARD_JS*/", js)
    csp = (f"default-src 'none'; script-src 'sha256-{script_hash}'; style-src 'sha256-{style_hash}'; "
           "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; "
           "frame-ancestors 'none'")
    return page.encode(), csp


def _json(data: object, status: int = 200) -> web.Response:
    return web.Response(
        body=orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS),
        status=status,
        content_type="application/json",
    )


def _log_failure(task: asyncio.Task[None]) -> None:
    """A background task ended by an exception (a bug): say so at once, not at interpreter exit."""
    if not task.cancelled() and task.exception() is not None:
        log.error("%s failed; the dashboard stream has stopped", task.get_name(), exc_info=task.exception())


class HttpApi:
    """The daemon's HTTP endpoint.

    Args:
        registry: the daemon's Prometheus registry.
        readiness: returns ``(ready, detail)``; detail lists what is not ready yet.
        state: JSON-able live state per name (``/state/<name>``), e.g. ``funding``, ``sessions``.
        host, port: where to listen; port 0 picks a free port (read ``port`` after ``start``).
        token: bearer token required on every endpoint except ``/healthz``; empty = no token.
        events: the dashboard's SSE hub; without it ``/events`` is 404 (the page then shows no data).
    """

    def __init__(
        self,
        registry: CollectorRegistry,
        readiness: Callable[[], tuple[bool, Mapping[str, Any]]],
        state: Mapping[str, JsonSource],
        host: str = "127.0.0.1",
        port: int = 9464,
        token: str = "",
        events: EventHub | None = None,
    ) -> None:
        self.registry = registry
        self._token = token.encode()
        self.readiness = readiness
        self.state = state
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None
        self.scrapes = 0
        self.events = events
        self._events_task: asyncio.Task[None] | None = None
        self._page: tuple[bytes, str] | None = None

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_REQUEST_BYTES, middlewares=[self._auth])
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/state", self._state_index)
        app.router.add_get("/state/{name}", self._state)
        app.router.add_get("/", self._index)
        app.router.add_get("/events", self._events)
        return app

    @property
    def token_required(self) -> bool:
        return bool(self._token)

    def _authorized(self, request: web.Request) -> bool:
        scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(credentials.strip().encode(), self._token):
            return True
        if request.path in QUERY_TOKEN_PATHS and "token" in request.query:
            return hmac.compare_digest(request.query["token"].encode(), self._token)
        return False

    @web.middleware
    async def _auth(self, request: web.Request, handler: Callable[..., Any]) -> web.StreamResponse:
        if request.content_length is not None and request.content_length > MAX_REQUEST_BYTES:
            raise web.HTTPRequestEntityTooLarge(max_size=MAX_REQUEST_BYTES, actual_size=request.content_length)
        if self._token and request.path not in OPEN_PATHS and not self._authorized(request):
            return web.json_response({"error": "unauthorized: send Authorization: Bearer <token>"}, status=401,
                                     headers={"WWW-Authenticate": 'Bearer realm="streamer"'})
        return await handler(request)

    async def _metrics(self, request: web.Request) -> web.Response:
        self.scrapes += 1
        body = generate_latest(self.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def _readyz(self, request: web.Request) -> web.Response:
        ready, detail = self.readiness()
        return _json({"ready": ready, **detail}, status=200 if ready else 503)

    async def _state_index(self, request: web.Request) -> web.Response:
        return _json({"endpoints": [f"/state/{name}" for name in self.state]})

    async def _state(self, request: web.Request) -> web.Response:
        source = self.state.get(request.match_info["name"])
        if source is None:
            return _json({"error": f"no state named {request.match_info['name']!r}", "known": list(self.state)}, 404)
        return _json(source())

    async def _index(self, request: web.Request) -> web.Response:
        if self._page is None:
            self._page = dashboard_page()
        body, csp = self._page
        return web.Response(body=body, content_type="text/html", charset="utf-8", headers={
            "Content-Security-Policy": csp, "Referrer-Policy": "no-referrer", "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff"})

    async def _events(self, request: web.Request) -> web.StreamResponse:
        if self.events is None:
            return _json({"error": "no event stream in this process"}, 404)
        if request.method == "HEAD":  # headers only: a HEAD must not hold a stream open
            return web.Response(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"})
        client = self.events.connect()
        if client is None:
            return _json({"error": f"too many dashboard clients (max {self.events.max_clients})"}, 503)
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store",
                                           "X-Accel-Buffering": "no"})
        try:
            await resp.prepare(request)
            await resp.write(b"retry: 2000\n\n")
            while not client.closed:
                await client.wait()
                frames = client.take()
                if frames:
                    # waits while this browser's socket is full; the hub keeps buffering (bounded) meanwhile
                    await resp.write(b"".join(frames))
        except (ConnectionResetError, ConnectionError):
            pass  # the browser went away
        finally:
            self.events.disconnect(client)
        return resp

    async def start(self) -> None:
        """Listen; sets ``port`` to the bound port."""
        if self.host not in LOOPBACK:
            if self._token:
                log.warning("HTTP API bound to %s: reachable from other hosts (bearer token required)", self.host)
            else:
                log.warning("HTTP API bound to %s: reachable from other hosts WITHOUT a token; anyone who can "
                            "reach it reads /metrics and /state (set http.token or STREAMER_HTTP_TOKEN)", self.host)
        if self.events is not None:
            self._events_task = asyncio.create_task(self.events.run(), name="http:sse")
            self._events_task.add_done_callback(_log_failure)
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        server = site._server
        if server is not None and getattr(server, "sockets", None):
            self.port = server.sockets[0].getsockname()[1]
        log.info("HTTP on http://%s:%d (dashboard / and /events, /metrics /healthz /readyz /state)%s",
                 self.host, self.port,
                 ", bearer token required" if self._token else "")

    async def stop(self) -> None:
        if self.events is not None:
            self.events.close()  # open /events streams end, so the runner's shutdown does not wait on them
        if self._events_task is not None:
            self._events_task.cancel()
            await asyncio.wait([self._events_task])
            self._events_task = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def run(self) -> None:
        """Serve until cancelled."""
        await self.start()
        try:
            await asyncio.Event().wait()
        finally:
            await self.stop()
