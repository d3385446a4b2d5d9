"""Slack incoming-webhook I/O: POST one payload, retry what Slack asks to retry, raise the rest.

Standard library only (`urllib.request`), so the layer gains no dependency. A 429 is retried after
the `Retry-After` seconds Slack sends (up to a bound), a 5xx or a network error after an exponential
backoff; any other answer is final. Whatever is not delivered raises `WebhookError`, so the
notifier's asynchronous invocation fails and Lambda moves the event to the function's dead-letter
queue. The webhook URL is a secret: no exception, log line or return value ever contains it.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import logging
import math
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

from batchlens.redact import Redactor

logger = logging.getLogger("batchlens")

_SECRET_KEYS = ("webhookUrl", "webhook_url", "url", "WEBHOOK_URL")
_ERROR_BODY_MAX = 200


class WebhookError(Exception):
    """The message was not delivered (the text never holds the URL)."""


class WebhookRejected(WebhookError):
    """Slack refused the message (a 4xx other than 429): sending it again cannot help."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard to try: bounded attempts, backoff and the longest `Retry-After` honoured."""

    max_attempts: int = 4
    backoff_seconds: float = 0.5
    max_backoff_seconds: float = 8.0
    max_retry_after_seconds: float = 30.0
    timeout_seconds: float = 10.0


@dataclass(frozen=True, slots=True)
class Delivery:
    """A delivered message: the HTTP status, how many POSTs it took and how long it waited."""

    status: int
    attempts: int
    waited_seconds: float


def is_loopback_host(host: str | None) -> bool:
    """`localhost`, or an address of this machine's loopback: all of 127.0.0.0/8 (Debian names
    its own host 127.0.1.1) and ::1."""
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a name other than localhost: it could resolve anywhere
        return False


def check_url(url: str) -> str:
    """`url` if it can be a webhook: https, or http on loopback (local tests and demos)."""
    url = url.strip()
    parts = urlsplit(url)
    secure = parts.scheme == "https"
    local = parts.scheme == "http" and is_loopback_host(parts.hostname)
    if not parts.netloc or not (secure or local):
        raise WebhookError("the webhook URL in the secret is not an https:// URL")
    # http.client refuses a space, a control or a non-ASCII character with an error that quotes
    # the URL's path, the secret part of a webhook ("…/XXXX #alerts" pasted into the secret).
    if not all("!" <= char <= "~" for char in url):
        raise WebhookError("the webhook URL in the secret has a space or a non-ASCII character")
    return url


def url_from_secret(value: str | bytes | Mapping[str, Any]) -> str:
    """The webhook URL from a secret's value: the URL itself, or JSON with a `webhookUrl` key."""
    if isinstance(value, bytes):
        value = value.decode("utf-8")
    if isinstance(value, str) and value.strip().startswith("{"):
        try:
            value = json.loads(value)
        except ValueError:
            raise WebhookError("the webhook secret is neither a URL nor JSON") from None
    if isinstance(value, Mapping):
        found = next((value[key] for key in _SECRET_KEYS if isinstance(value.get(key), str)), None)
        if found is None:
            raise WebhookError(f"the webhook secret's JSON has none of the keys {_SECRET_KEYS}")
        value = found
    return check_url(str(value))


def retry_after_seconds(header: str | None, default: float = 1.0) -> float:
    """`Retry-After` as seconds: a number of seconds or an HTTP date."""
    if not header:
        return default
    try:
        seconds = float(header.strip())
    except ValueError:
        pass
    else:  # "nan" and "inf" parse as floats; time.sleep refuses NaN
        return max(seconds, 0.0) if math.isfinite(seconds) else default
    try:
        when = parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return default
    return max(when.timestamp() - time.time(), 0.0)


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """urllib re-sends a POST answered 301, 302 or 303 as a GET without its body, and a 200 to
    that GET would count as delivered: a redirect is an answer here (an HTTPError), never taken.
    Taking it would also let an https URL lead to plain http."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


def _send(url: str, data: bytes, timeout: float) -> tuple[int, str, str | None]:
    request = urllib.request.Request(  # noqa: S310 - check_url allows https (and loopback http) only
        url,
        data=data,
        method="POST",
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            # The status line is the answer: Slack has taken the card whatever its body does
            # next, and a retry after a stalled or cut body would post it twice.
            return int(response.status), _body(response), None
    except urllib.error.HTTPError as error:
        # Likewise a refusal: a stalled body must not turn a 4xx into a network error that is
        # retried (re-posting a rejected card), nor lose a 429's Retry-After.
        body = _body(error) if error.fp else ""
        return int(error.code), body, error.headers.get("Retry-After") if error.headers else None


def _body(response: Any) -> str:
    """The start of an answer's body, or "" when it stalls or breaks off."""
    try:
        return str(response.read(4096).decode("utf-8", "replace"))
    except (OSError, http.client.HTTPException):
        return ""


def _clean(body: str) -> str:
    # Slack answers short codes ("invalid_blocks"); mask anyway, since this text gets logged.
    return Redactor().text(" ".join(body.split())[:_ERROR_BODY_MAX])[0]


def post(
    url: str,
    payload: Mapping[str, Any],
    *,
    policy: RetryPolicy | None = None,
    sleep: Callable[[float], None] | None = None,
    deadline: float | None = None,
) -> Delivery:
    """POST `payload` as JSON to the webhook; retry 429 after Retry-After and 5xx with backoff.

    `deadline` (a `time.monotonic()` value) stops retrying early enough to fail cleanly before the
    function times out. Raises `WebhookRejected` for a final 4xx, `WebhookError` otherwise.
    """
    policy = policy or RetryPolicy()
    url = check_url(url)
    data = json.dumps(payload).encode("utf-8")
    waited = 0.0
    last = "nothing sent"
    for attempt in range(1, policy.max_attempts + 1):
        timeout = policy.timeout_seconds
        if deadline is not None:  # the POST itself must end by the deadline too, not only waits
            timeout = max(min(timeout, deadline - time.monotonic()), 0.05)
        try:
            status, body, retry_after = _send(url, data, timeout)
        except (http.client.InvalidURL, ValueError):
            # InvalidURL (and a UnicodeEncodeError) quote the URL: name the problem, never the text.
            raise WebhookRejected("the webhook URL is not one http.client can send to") from None
        except (urllib.error.URLError, TimeoutError, OSError, http.client.HTTPException) as exc:
            # URLError's text is its reason ("Connection refused"), never the URL; keep the class.
            reason = getattr(exc, "reason", exc)
            last = f"network error {type(exc).__name__} ({type(reason).__name__})"
            wait = min(policy.backoff_seconds * 2 ** (attempt - 1), policy.max_backoff_seconds)
        else:
            if 200 <= status < 300:
                return Delivery(status=status, attempts=attempt, waited_seconds=waited)
            last = f"HTTP {status} {_clean(body)}".strip()
            if status == 429:
                wait = retry_after_seconds(retry_after)
                if wait > policy.max_retry_after_seconds:
                    raise WebhookError(f"rate limited by Slack for {wait:.0f}s ({last})")
            elif status >= 500:
                wait = min(policy.backoff_seconds * 2 ** (attempt - 1), policy.max_backoff_seconds)
            else:
                raise WebhookRejected(f"Slack refused the message: {last}")
        if attempt == policy.max_attempts:
            break
        if deadline is not None and time.monotonic() + wait >= deadline:
            last += "; no time left to retry"
            break
        logger.warning(
            "Slack webhook: %s; retrying in %.1fs", last, wait, extra={"attempt": attempt}
        )
        (sleep or time.sleep)(wait)
        waited += wait
    raise WebhookError(f"not delivered after {attempt} attempt(s): {last}")
