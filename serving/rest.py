"""A small JSON-over-HTTP helper shared by the REST clients of both servers.

Errors come back as `RestError` carrying the HTTP status and the server's own message, so callers
(and tests) can assert on both, and the `Retry-After` of a refusal for the retry policy.
"""
from __future__ import annotations

import json

import requests


class RestError(RuntimeError):
    def __init__(self, status: int, message: str, retry_after: str | None = None):
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message
        self.retry_after = retry_after  # the Retry-After header of a refusal (serving/retry.py reads it)


def call(session: requests.Session, method: str, url: str, *, timeout: float, **kwargs) -> dict:
    """Send one request; return the decoded JSON body, or raise RestError for a non-2xx answer."""
    response = session.request(method, url, timeout=timeout, **kwargs)
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code >= 300:
        message = response.text or response.reason  # TorchServe answers 413 with an empty body
        if isinstance(body, dict):  # TF Serving: {"error": ...}; TorchServe: {"code", "type", "message"}
            message = body.get("error") or body.get("message") or json.dumps(body)
        raise RestError(response.status_code, message, response.headers.get("Retry-After"))
    if body is None:
        raise RestError(response.status_code, f"the answer is not JSON: {response.text[:200]!r}")
    return body
