"""Fixtures for the alert tests: a webhook receiver on 127.0.0.1, rules from a clean table."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import tests.jobs.alerts.kinds  # noqa: F401 - registers the alert test kinds
from jobs.alerts import webhook
from jobs.alerts.dead_workers import forget_dead_workers
from jobs.alerts.models import AlertRule

SECRET = "test-webhook-secret"


class Receiver:
    """A real HTTP server the test starts; it keeps every POST (headers and raw body)."""

    def __init__(self) -> None:
        self.posts: list[dict] = []
        received = self.posts

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append({"headers": dict(self.headers), "body": body})
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/alerts"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def bodies(self) -> list[dict]:
        return [json.loads(post["body"]) for post in self.posts]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(settings):
    server = Receiver()
    settings.JOBS_ALERT_WEBHOOK_URL = server.url
    settings.JOBS_ALERT_WEBHOOK_SECRET = SECRET
    yield server
    server.close()


@pytest.fixture
def closed_port_url() -> str:
    """A 127.0.0.1 address where nothing listens (a receiver that is down)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/hooks/alerts"


@pytest.fixture
def quick_webhook_retries(settings):
    """The delivery kind re-registered with no backoff (a burst worker runs every retry)."""
    settings.JOBS_ALERT_WEBHOOK_BACKOFF = (0,)
    settings.JOBS_ALERT_WEBHOOK_MAX_ATTEMPTS = 3
    webhook.register()
    yield
    del settings.JOBS_ALERT_WEBHOOK_BACKOFF  # back to the project's policy, registered again
    del settings.JOBS_ALERT_WEBHOOK_MAX_ATTEMPTS
    webhook.register()


@pytest.fixture
def only_rule(redis_conn):
    """A table with just the rule the test makes (the defaults are tested on their own)."""
    AlertRule.objects.all().delete()
    forget_dead_workers()

    def make(**fields) -> AlertRule:
        fields.setdefault("name", "test-rule")
        fields.setdefault("cooldown_seconds", 0)
        return AlertRule.objects.create(**fields)

    return make
