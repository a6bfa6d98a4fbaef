"""The delivery benchmark's load client (bench/callback.py) posts callbacks Convoke accepts.

The client builds each callback's HTTP request as bytes before a phase and sends it over a raw
socket, so what it sends is checked here against the real callback view (over a socket, the
test server's) and its answers are read right, refusals and dead ports included.
"""

from __future__ import annotations

import importlib.util
import socket
import sys
import threading
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

import pytest

from invitations.models import Delivery
from scheduling.models import SchedulingMessage
from tests.settings import TEST_INBOUND_API_KEY

BENCH = Path(__file__).resolve().parent.parent / "bench"


@pytest.fixture(scope="module")
def bench_callback() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_callback", BENCH / "callback.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_callback"] = module
    spec.loader.exec_module(module)
    return module


def _port(live_server: Any) -> int:
    port = urlsplit(live_server.url).port
    assert port is not None
    return port


@pytest.mark.django_db(transaction=True)
def test_prebuilt_callbacks_are_accepted_and_stored_by_the_real_view(
    live_server: Any, bench_callback: ModuleType
) -> None:
    requests = bench_callback.prebuild(key=TEST_INBOUND_API_KEY, salt=3, rate=4, seconds=1)
    assert len(requests) == 5
    statuses = [bench_callback.request_status(_port(live_server), request) for request in requests]
    assert statuses == [202] * 5
    assert SchedulingMessage.objects.count() == 5  # distinct callbacks: none deduplicated
    assert Delivery.objects.count() == 5


@pytest.mark.django_db(transaction=True)
def test_a_refusal_is_read_as_its_status(live_server: Any, bench_callback: ModuleType) -> None:
    request = bench_callback.callback_request(0, key="not-the-key", salt=0)
    assert bench_callback.request_status(_port(live_server), request) == 401
    assert SchedulingMessage.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_the_paced_load_posts_every_callback_once_and_counts_them(
    live_server: Any, bench_callback: ModuleType
) -> None:
    prebuilt = bench_callback.prebuild(key=TEST_INBOUND_API_KEY, salt=5, rate=10, seconds=0.3)
    load = bench_callback.post_load(
        port=_port(live_server),
        key=TEST_INBOUND_API_KEY,
        clients=2,
        seconds=0.6,
        rate=10,
        salt=5,
        prebuilt=prebuilt,
    )
    # 6 callbacks at 10/s over 0.6 s: the first 4 prebuilt, the last 2 built when sent.
    assert load.statuses == {202: 6}
    assert len(load.latencies) == 6
    assert SchedulingMessage.objects.count() == 6


def test_a_port_nobody_listens_on_reads_as_status_0(bench_callback: ModuleType) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    assert bench_callback.request_status(port, b"POST / HTTP/1.1\r\n\r\n", timeout=2) == 0


def test_an_answer_that_is_not_http_reads_as_status_0(bench_callback: ModuleType) -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]

        def answer() -> None:
            accepted, _ = server.accept()
            with accepted:
                accepted.recv(1024)
                accepted.sendall(b"220 an SMTP server\r\n")

        thread = threading.Thread(target=answer)
        thread.start()
        assert bench_callback.request_status(port, b"POST / HTTP/1.1\r\n\r\n", timeout=2) == 0
        thread.join(timeout=5)
