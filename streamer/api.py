"""HTTP: ``/metrics``, ``/healthz``, ``/readyz`` and JSON state, on an aiohttp AppRunner in the daemon's loop.

Binds 127.0.0.1 by default; binding another address logs a warning (the
endpoints are read-only but reveal what the daemon tracks), a louder one when no token is set.

Optional bearer token (``http.token`` / ``STREAMER_HTTP_TOKEN``): when set, every endpoint except
``/healthz`` (liveness probes carry no credentials) answers 401 with ``WWW-Authenticate: Bearer``
unless the request has ``Authorization: Bearer <token>``; ``/metrics`` included. Prometheus sends it
with ``authorization: {type: Bearer, credentials_file: /path/to/token}`` (or ``credentials:``) in the
scrape config.

Only GET (and HEAD) routes exist, nothing changes state: any other method is 405. Request bodies are
capped at 64 KiB (``client_max_size``; larger is 413) and headers by aiohttp's own line/field limits.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Callable, Mapping
from typing import Any

import orjson
from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

log = logging.getLogger("streamer.api")

JsonSource = Callable[[], Mapping[str, Any]]

MAX_REQUEST_BYTES = 64 * 1024
LOOPBACK = ("127.0.0.1", "localhost", "::1")
OPEN_PATHS = frozenset({"/healthz"})


def _json(data: object, status: int = 200) -> web.Response:
    return web.Response(
        body=orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS),
        status=status,
        content_type="application/json",
    )


class HttpApi:
    """The daemon's HTTP endpoint.

    Args:
        registry: the daemon's Prometheus registry.
        readiness: returns ``(ready, detail)``; detail lists what is not ready yet.
        state: JSON-able live state per name (``/state/<name>``), e.g. ``funding``, ``sessions``.
        host, port: where to listen; port 0 picks a free port (read ``port`` after ``start``).
        token: bearer token required on every endpoint except ``/healthz``; empty = no token.
    """

    def __init__(
        self,
        registry: CollectorRegistry,
        readiness: Callable[[], tuple[bool, Mapping[str, Any]]],
        state: Mapping[str, JsonSource],
        host: str = "127.0.0.1",
        port: int = 9464,
        token: str = "",
    ) -> None:
        self.registry = registry
        self._token = token.encode()
        self.readiness = readiness
        self.state = state
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None
        self.scrapes = 0

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_REQUEST_BYTES, middlewares=[self._auth])
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/state", self._state_index)
        app.router.add_get("/state/{name}", self._state)
        app.router.add_get("/", self._index)
        return app

    @property
    def token_required(self) -> bool:
        return bool(self._token)

    def _authorized(self, request: web.Request) -> bool:
        scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer":
            return False
        return hmac.compare_digest(credentials.strip().encode(), self._token)

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
        links = ["/metrics", "/healthz", "/readyz", *(f"/state/{n}" for n in self.state)]
        return web.Response(text="streamer\n" + "\n".join(links) + "\n")

    async def start(self) -> None:
        """Listen; sets ``port`` to the bound port."""
        if self.host not in LOOPBACK:
            if self._token:
                log.warning("HTTP API bound to %s: reachable from other hosts (bearer token required)", self.host)
            else:
                log.warning("HTTP API bound to %s: reachable from other hosts WITHOUT a token; anyone who can "
                            "reach it reads /metrics and /state (set http.token or STREAMER_HTTP_TOKEN)", self.host)
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        server = site._server
        if server is not None and getattr(server, "sockets", None):
            self.port = server.sockets[0].getsockname()[1]
        log.info("HTTP on http://%s:%d (/metrics /healthz /readyz /state)%s", self.host, self.port,
                 ", bearer token required" if self._token else "")

    async def stop(self) -> None:
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
