"""Transport: I/O for exchange sessions (WebSocket sessions, rate-limited REST); knows no exchange.

Imports only the stdlib, aiohttp and websockets. The daemon hands it URLs, frames and callables
built from the adapters.
"""

from streamer.transport.backoff import backoff, classify, classify_status
from streamer.transport.rest import (
    MAX_BODY_BYTES,
    BodyTooLarge,
    RateLimited,
    RestClient,
    RestError,
    RestResponse,
    TokenBucket,
    VenueLimits,
    VenueStats,
    gather_limited,
    parse_retry_after,
)
from streamer.transport.ws import StreamStats, WsSession, WsStats, default_ws_backoff, wall_ms

__all__ = [
    "MAX_BODY_BYTES",
    "BodyTooLarge",
    "RateLimited",
    "RestClient",
    "RestError",
    "RestResponse",
    "StreamStats",
    "TokenBucket",
    "VenueLimits",
    "VenueStats",
    "WsSession",
    "WsStats",
    "backoff",
    "classify",
    "classify_status",
    "default_ws_backoff",
    "gather_limited",
    "parse_retry_after",
    "wall_ms",
]
