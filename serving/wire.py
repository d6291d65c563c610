"""One prediction request as bytes, from the client that speaks its protocol, for tools that send it themselves.

Every server client (serving/*/client.py) has `wire(batch) -> Wire`: the burst tool opens a crowd
of asyncio connections and sends these bytes on each, so the wire format of each protocol lives in
its client only, never in a tool.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Wire:
    """kind "rest": POST `body` to the URL `address` with the headers `extra`; `rows_of(decoded JSON)`.
    kind "grpc": call `method` (its full path) on host:port `address` with metadata `extra`;
    `rows_of(reply bytes)`. Either way `rows_of` gives the answer's rows of probabilities."""
    kind: str
    address: str
    body: bytes
    extra: dict | tuple
    rows_of: Callable
    method: str = ""
