"""The Slack notifier over real HTTP: a local server on 127.0.0.1 plays Slack's incoming webhook.

What it proves: the posted payload honours Block Kit's limits; a 429 is retried after its
Retry-After, a 5xx with backoff; a rejected or undeliverable message raises (so Lambda's retries and
then the function's dead-letter queue take over); and the webhook URL never reaches a log line or
an exception. The handler test reads the URL from Secrets Manager on moto, as deployed.
"""

from __future__ import annotations

import importlib.util
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import ModuleType
from typing import Any

import boto3
import pytest

from batchlens import slack, webhook
from batchlens.alerts import build_alert
from batchlens.events import parse_event
from batchlens.local import FakeLambdaContext
from batchlens.preview import with_log
from batchlens.records import JobRecord, normalise
from batchlens.redact import Redactor
from tests.conftest import REPO_ROOT, Json, read_event
from tests.limits import block_kit_problems

pytestmark = pytest.mark.integration

HANDLER_PATH = REPO_ROOT / "functions" / "notify_slack" / "app.py"
#: The part of the local webhook URL that plays the secret, to look for in logs and errors.
SECRET_PATH = "/services/T0LOCAL/B0LOCAL/not-a-real-token"


@dataclass
class Reply:
    status: int = 200
    body: str = "ok"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class FakeSlack:
    """What the local webhook received, and the replies it gives (then 200 ok for ever)."""

    url: str
    replies: list[Reply] = field(default_factory=list)
    received: list[Json] = field(default_factory=list)
    #: Paths asked for with GET (a followed redirect): answered 200, as many servers would.
    gets: list[str] = field(default_factory=list)


@pytest.fixture
def fake_slack() -> Iterator[FakeSlack]:
    state = FakeSlack(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            assert self.path == SECRET_PATH
            assert self.headers["Content-Type"].startswith("application/json")
            state.received.append(json.loads(self.rfile.read(length)))
            reply = state.replies.pop(0) if state.replies else Reply()
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(reply.body.encode())

        def do_GET(self) -> None:
            state.gets.append(self.path)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}{SECRET_PATH}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


class Sleeps:
    """Stands in for time.sleep: records each wait (the retry schedule) without waiting."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def failed_record() -> JobRecord:
    record = normalise(parse_event(read_event("job-failed-oom")))
    log = "\n".join(["[M::process] read 1000000 sequences", "a < b && c > d", "Killed"])
    return with_log(record, log, 20, Redactor())


# --- webhook.post over HTTP ----------------------------------------------------------------------


def test_posted_card_honours_block_kit_limits(fake_slack: FakeSlack) -> None:
    # Given a failed job's card
    payload = slack.render(failed_record())

    # When it is posted to the webhook
    delivery = webhook.post(fake_slack.url, payload)

    # Then Slack received exactly that payload, within Block Kit's limits, in one POST
    assert delivery.status == 200
    assert delivery.attempts == 1
    (received,) = fake_slack.received
    assert received == payload
    assert block_kit_problems(received) == []


def test_429_is_retried_after_retry_after(fake_slack: FakeSlack) -> None:
    # Given Slack rate-limits the first two posts (Retry-After 3, then 1)
    fake_slack.replies = [
        Reply(429, "rate_limited", {"Retry-After": "3"}),
        Reply(429, "rate_limited", {"Retry-After": "1"}),
    ]
    sleeps = Sleeps()

    # When a card is posted
    delivery = webhook.post(fake_slack.url, slack.render(failed_record()), sleep=sleeps)

    # Then it waited exactly what Slack asked, and the third post went through
    assert sleeps.waits == [3.0, 1.0]
    assert delivery.attempts == 3
    assert delivery.waited_seconds == 4.0
    assert len(fake_slack.received) == 3


def test_5xx_is_retried_with_exponential_backoff(fake_slack: FakeSlack) -> None:
    fake_slack.replies = [Reply(500, "oops"), Reply(503, "busy")]
    sleeps = Sleeps()
    delivery = webhook.post(fake_slack.url, {"text": "hi"}, sleep=sleeps)
    assert delivery.attempts == 3
    assert sleeps.waits == [0.5, 1.0]


def test_a_rejected_payload_is_not_retried(fake_slack: FakeSlack) -> None:
    fake_slack.replies = [Reply(400, "invalid_blocks")]
    sleeps = Sleeps()
    with pytest.raises(webhook.WebhookRejected, match="HTTP 400 invalid_blocks") as caught:
        webhook.post(fake_slack.url, {"text": "hi"}, sleep=sleeps)
    assert sleeps.waits == []
    assert len(fake_slack.received) == 1
    assert SECRET_PATH not in str(caught.value)


def test_a_retry_after_beyond_the_bound_fails_at_once(fake_slack: FakeSlack) -> None:
    fake_slack.replies = [Reply(429, "rate_limited", {"Retry-After": "3600"})]
    sleeps = Sleeps()
    with pytest.raises(webhook.WebhookError, match="rate limited by Slack for 3600s"):
        webhook.post(fake_slack.url, {"text": "hi"}, sleep=sleeps)
    assert sleeps.waits == []


def test_retries_are_bounded_and_the_error_never_shows_the_url(
    fake_slack: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    # Given Slack answers 503 for ever
    fake_slack.replies = [Reply(503, "down")] * 10
    sleeps = Sleeps()

    # When a card is posted
    with pytest.raises(webhook.WebhookError) as caught:
        webhook.post(fake_slack.url, {"text": "hi"}, sleep=sleeps)

    # Then it gave up after the policy's attempts, and neither the error nor a log line has the URL
    assert len(fake_slack.received) == webhook.RetryPolicy().max_attempts
    assert "not delivered after 4 attempt(s): HTTP 503 down" in str(caught.value)
    assert SECRET_PATH not in str(caught.value)
    assert SECRET_PATH not in caplog.text


def test_a_deadline_stops_retrying(fake_slack: FakeSlack) -> None:
    import time

    fake_slack.replies = [Reply(429, "rate_limited", {"Retry-After": "20"})]
    with pytest.raises(webhook.WebhookError, match="no time left"):
        webhook.post(fake_slack.url, {"text": "hi"}, sleep=Sleeps(), deadline=time.monotonic() + 5)


def test_no_post_outlives_the_deadline(
    fake_slack: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a deadline 3 s away, nearer than a POST's own timeout (10 s), and a first reply of 503
    fake_slack.replies = [Reply(503, "busy")]
    deadline = time.monotonic() + 3
    timeouts: list[float] = []
    send = webhook._send

    def timed(url: str, data: bytes, timeout: float) -> tuple[int, str, str | None]:
        timeouts.append(timeout)
        return send(url, data, timeout)

    monkeypatch.setattr(webhook, "_send", timed)

    # When the message is posted (and retried once)
    webhook.post(fake_slack.url, {"text": "hi"}, sleep=Sleeps(), deadline=deadline)

    # Then no POST could run past the deadline (it would end as a Lambda timeout, not as the error
    # that names what went wrong): each may take only what is left, less for the retry
    assert len(timeouts) == 2
    assert 3 >= timeouts[0] > timeouts[1] > 0


def test_an_unreachable_webhook_raises_without_the_url() -> None:
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}{SECRET_PATH}"
    with pytest.raises(webhook.WebhookError, match="network error") as caught:
        webhook.post(url, {"text": "hi"}, sleep=Sleeps())
    assert SECRET_PATH not in str(caught.value)


def test_a_url_http_client_refuses_raises_a_webhook_error_without_the_url() -> None:
    # A port that is not a number passes the scheme and host checks; http.client's InvalidURL,
    # which quotes the URL for other faults, must not escape.
    url = f"http://127.0.0.1:notaport{SECRET_PATH}"
    with pytest.raises(webhook.WebhookRejected, match=r"http\.client can send to") as caught:
        webhook.post(url, {"text": "hi"}, sleep=Sleeps())
    assert SECRET_PATH not in str(caught.value)
    assert caught.value.__suppress_context__


def test_a_reply_that_is_not_http_is_retried_as_a_network_error() -> None:
    import socket

    # Given a server on the webhook's port that answers every POST with a line that is not HTTP
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def answer_garbage() -> None:
        for _ in range(webhook.RetryPolicy().max_attempts):
            connection, _address = server.accept()
            with connection:
                connection.recv(65536)
                connection.sendall(b"NOT HTTP AT ALL\r\n\r\n")

    thread = threading.Thread(target=answer_garbage, daemon=True)
    thread.start()
    sleeps = Sleeps()

    # When a card is posted, http.client raises BadStatusLine (an HTTPException, not an OSError)
    with server, pytest.raises(webhook.WebhookError) as caught:
        webhook.post(f"http://127.0.0.1:{port}{SECRET_PATH}", {"text": "hi"}, sleep=sleeps)
    thread.join(timeout=5)

    # Then every attempt was made with backoff, and the error names the fault, not the URL
    assert "network error BadStatusLine" in str(caught.value)
    assert sleeps.waits == [0.5, 1.0, 2.0]
    assert SECRET_PATH not in str(caught.value)


@contextmanager
def stalling_webhook(head: bytes) -> Iterator[tuple[str, list[bytes]]]:
    """A webhook that answers every post with `head` and then stalls in the middle of the
    100-byte body it promised; yields its URL and the posts it received."""
    import socket

    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    posts: list[bytes] = []
    done = threading.Event()

    def answer_and_stall() -> None:
        server.settimeout(2.0)
        connections = []
        for _ in range(webhook.RetryPolicy().max_attempts):
            try:
                connection, _address = server.accept()
            except TimeoutError:
                break
            connections.append(connection)
            posts.append(connection.recv(65536))
            connection.sendall(head + b"Content-Length: 100\r\n\r\nok")
        done.wait(5)
        for connection in connections:
            connection.close()

    thread = threading.Thread(target=answer_and_stall, daemon=True)
    thread.start()
    with server:
        try:
            yield f"http://127.0.0.1:{port}/hook", posts
        finally:
            done.set()
            thread.join(timeout=5)


#: Reading the rest of a stalled body times out after this.
STALL_POLICY = webhook.RetryPolicy(timeout_seconds=0.5)


def test_a_200_whose_body_stalls_is_delivered_once() -> None:
    # Given a webhook that answers 200 and then stalls in the middle of the promised body
    with stalling_webhook(b"HTTP/1.1 200 OK\r\n") as (url, posts):
        # When a card is posted, and reading the rest of the body times out
        delivery = webhook.post(url, {"text": "hi"}, policy=STALL_POLICY, sleep=Sleeps())

    # Then the status line was the answer: delivered, and Slack got the card once, not again
    assert (delivery.status, delivery.attempts) == (200, 1)
    assert len(posts) == 1


def test_a_refusal_whose_body_stalls_is_not_posted_again() -> None:
    # Given a webhook that refuses the card (400) and then stalls in the middle of its body
    with (
        stalling_webhook(b"HTTP/1.1 400 Bad Request\r\n") as (url, posts),
        pytest.raises(webhook.WebhookRejected) as caught,
    ):
        # When a card is posted
        webhook.post(url, {"text": "hi"}, policy=STALL_POLICY, sleep=Sleeps())

    # Then the refusal is final, as with a whole body: not retried as a network error
    assert "400" in str(caught.value)
    assert len(posts) == 1


def test_a_429_whose_body_stalls_still_waits_its_retry_after() -> None:
    # Given a webhook that rate-limits every post for 7 s, then stalls in its body
    sleeps = Sleeps()
    with (
        stalling_webhook(b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 7\r\n") as (url, _),
        pytest.raises(webhook.WebhookError),
    ):
        # When a card is posted
        webhook.post(url, {"text": "hi"}, policy=STALL_POLICY, sleep=sleeps)

    # Then each retry waited the 7 s Slack asked for, not a network error's backoff
    assert sleeps.waits == [7.0] * (STALL_POLICY.max_attempts - 1)


# --- the Lambda handler --------------------------------------------------------------------------


def sns_event(message: str) -> Json:
    """The event SNS gives a subscribed Lambda: one record carrying the `lambda` body."""
    topic = "arn:aws:sns:us-east-1:123456789012:batchlens-alerts"
    return {
        "Records": [
            {
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "EventSubscriptionArn": f"{topic}:0f6e3c9c-1a2b-4c5d-8e9f-0a1b2c3d4e5f",
                "Sns": {
                    "Type": "Notification",
                    "MessageId": "95df01b4-ee98-5cb9-9903-4c221d41eb5e",
                    "TopicArn": topic,
                    "Subject": None,
                    "Message": message,
                    "Timestamp": "2025-03-14T10:08:47.000Z",
                    "SignatureVersion": "1",
                    "Signature": "EXAMPLE",
                    "SigningCertUrl": "https://sns.us-east-1.amazonaws.com/cert.pem",
                    "UnsubscribeUrl": "https://sns.us-east-1.amazonaws.com/unsubscribe",
                    "MessageAttributes": {"alert": {"Type": "String", "Value": "true"}},
                },
            }
        ]
    }


@pytest.fixture
def notifier(
    aws_session: boto3.Session, fake_slack: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> ModuleType:
    """functions/notify_slack/app.py, freshly loaded, its secret in Secrets Manager on moto."""
    secret = aws_session.client("secretsmanager").create_secret(
        Name="batchlens/slack-webhook", SecretString=json.dumps({"webhookUrl": fake_slack.url})
    )
    monkeypatch.setenv("SLACK_WEBHOOK_SECRET_ARN", secret["ARN"])
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "batchlens")
    spec = importlib.util.spec_from_file_location("notify_slack_app_under_test", HANDLER_PATH)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_handler_posts_the_alert_card_from_the_sns_lambda_body(
    notifier: ModuleType, fake_slack: FakeSlack, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the SNS delivery of a failed job's alert (the `lambda` body is the JobRecord JSON)
    record = failed_record()
    message = json.loads(build_alert(record).message)["lambda"]

    # When the notifier handles it
    result = notifier.handler(sns_event(message), FakeLambdaContext())

    # Then Slack received the card rendered from that record, and the URL was never logged
    assert result == {"delivered": [record.job_id]}
    (received,) = fake_slack.received
    assert received == slack.render(record)
    assert block_kit_problems(received) == []
    assert SECRET_PATH not in capsys.readouterr().out


def test_handler_raises_what_it_cannot_deliver_without_leaking_the_url(
    notifier: ModuleType,
    fake_slack: FakeSlack,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given Slack is down
    fake_slack.replies = [Reply(502, "bad gateway")] * 10
    monkeypatch.setattr("time.sleep", lambda seconds: None)
    message = json.loads(build_alert(failed_record()).message)["lambda"]

    # When the notifier handles an alert, then it raises (Lambda retries, then the DLQ)
    with pytest.raises(webhook.WebhookError) as caught:
        notifier.handler(sns_event(message), FakeLambdaContext())

    # And neither the error nor any log line holds the webhook URL
    assert SECRET_PATH not in str(caught.value)
    assert SECRET_PATH not in capsys.readouterr().out


# --- behaviour pinned by a mutation review ---------------------------------------------------


def test_a_retry_after_of_exactly_the_bound_is_honoured(fake_slack: FakeSlack) -> None:
    bound = webhook.RetryPolicy().max_retry_after_seconds
    fake_slack.replies = [Reply(429, "rate_limited", {"Retry-After": f"{bound:.0f}"})]
    sleeps = Sleeps()
    delivery = webhook.post(fake_slack.url, {"text": "hi"}, sleep=sleeps)
    assert sleeps.waits == [bound]
    assert delivery.attempts == 2


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_is_not_taken_for_a_delivery(fake_slack: FakeSlack, status: int) -> None:
    # Given the webhook answers the POST with a redirect to a page that answers a GET with 200
    fake_slack.replies = [Reply(status, "", {"Location": "/elsewhere"})]

    # Then the message is not delivered, and is not sent on to where the redirect points
    with pytest.raises(webhook.WebhookRejected, match=f"HTTP {status}"):
        webhook.post(fake_slack.url, {"text": "hi"}, sleep=Sleeps())
    assert fake_slack.gets == []
    assert len(fake_slack.received) == 1


@pytest.mark.parametrize("header", ["nan", "NaN", "inf", "-inf"])
def test_a_retry_after_that_is_not_a_number_of_seconds_waits_the_default(
    fake_slack: FakeSlack, header: str
) -> None:
    fake_slack.replies = [Reply(429, "rate_limited", {"Retry-After": header})]
    sleeps = Sleeps()
    delivery = webhook.post(fake_slack.url, {"text": "hi"}, sleep=sleeps)
    assert sleeps.waits == [1.0]
    assert delivery.attempts == 2


def test_an_error_body_is_masked_and_bounded_in_the_error(fake_slack: FakeSlack) -> None:
    # Given a reply (from a proxy, say) that quotes a webhook URL and goes on for kilobytes
    leaked = "https://hooks.slack.com/services/T11111111/B22222222/PLANTEDplantedPLANTEDpl"
    fake_slack.replies = [Reply(400, f"invalid_payload for {leaked} " + "x" * 3_000)]
    with pytest.raises(webhook.WebhookRejected) as caught:
        webhook.post(fake_slack.url, {"text": "hi"}, sleep=Sleeps())
    message = str(caught.value)
    assert "PLANTEDplantedPLANTEDpl" not in message
    assert "invalid_payload" in message
    assert len(message) < 300


def test_handler_gives_post_a_deadline_before_the_lambda_timeout(
    notifier: ModuleType, fake_slack: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given 20 s left in the invocation
    deadlines: list[float | None] = []
    post = webhook.post

    def spy(url: str, payload: Json, **kwargs: Any) -> webhook.Delivery:
        deadlines.append(kwargs.get("deadline"))
        return post(url, payload, **kwargs)

    monkeypatch.setattr(notifier.webhook, "post", spy)
    message = json.loads(build_alert(failed_record()).message)["lambda"]
    started = time.monotonic()
    notifier.handler(sns_event(message), FakeLambdaContext(timeout_ms=20_000))

    # Then the POST and its retries must end DEADLINE_MARGIN_SECONDS before the timeout
    (deadline,) = deadlines
    assert deadline is not None
    expected = started + 20 - notifier.DEADLINE_MARGIN_SECONDS
    assert expected - 1 < deadline <= expected + 1
    assert notifier.DEADLINE_MARGIN_SECONDS >= 1


def test_handler_reads_the_secret_through_one_cached_provider(
    notifier: ModuleType, fake_slack: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The provider (and so its cache) lives for the execution environment, read with the
    # configured max age
    assert notifier.secrets() is notifier.secrets()
    settings, provider = notifier.secrets()
    ages: list[Any] = []
    get = provider.get

    def spy(name: str, **kwargs: Any) -> Any:
        ages.append(kwargs.get("max_age"))
        return get(name, **kwargs)

    monkeypatch.setattr(provider, "get", spy)
    message = json.loads(build_alert(failed_record()).message)["lambda"]
    notifier.handler(sns_event(message), FakeLambdaContext())
    assert ages == [settings.slack_secret_max_age]
