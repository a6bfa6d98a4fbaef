"""calendars.providers.caldav.server_schedules: asked of the server (RFC 6638 section 2)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from calendars.providers import caldav
from tests.fakes.radicale import RadicaleServer
from tests.fakes.sabre import SabreLike


def test_radicale_announces_no_scheduling(radicale: RadicaleServer) -> None:
    assert caldav.server_schedules(user_email="organizer@example.org") is False


def test_a_sabre_like_server_announces_scheduling_and_is_asked_once(sabre: SabreLike) -> None:
    organizer = sabre.user_add()

    assert caldav.server_schedules(user_email=organizer) is True
    assert caldav.server_schedules(user_email=organizer) is True

    assert sabre.count("OPTIONS") == 1


@pytest.fixture
def answering(settings: Any) -> Iterator[list[int]]:
    """A server that answers OPTIONS with the status the test puts first in the list."""
    statuses: list[int] = [405]

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return

        def do_OPTIONS(self) -> None:
            self.send_response(statuses[0])
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings.CALDAV_URL = f"http://127.0.0.1:{server.server_address[1]}/"
    settings.CALDAV_USERNAME, settings.CALDAV_PASSWORD = "convoke", "pw"
    settings.CALDAV_OUTBOUND_API_KEY = ""
    try:
        yield statuses
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("status", [404, 405, 501])
def test_a_server_without_options_announces_nothing(answering: list[int], status: int) -> None:
    answering[0] = status
    assert caldav.server_schedules(user_email="organizer@example.org") is False


def test_a_failing_server_is_unavailable_not_a_guess(answering: list[int]) -> None:
    answering[0] = 503
    with pytest.raises(caldav.CalDAVUnavailable):
        caldav.server_schedules(user_email="organizer@example.org")
