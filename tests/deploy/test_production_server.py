"""gunicorn with DEBUG off and the README's production settings, over real HTTP."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from tests.deploy.conftest import PRODUCTION_ENV, PROJECT_DIR, Server, base_environment

pytestmark = pytest.mark.slow

CALLBACK = "/api/v1.0/caldav-scheduling-callback/"


def _compose_health_url(service: str) -> str:
    compose = yaml.safe_load((PROJECT_DIR / "compose.yml").read_text())
    command = " ".join(compose["services"][service]["healthcheck"]["test"])
    match = re.search(r"http://[^'\"\s]+", command)
    assert match, command
    return match.group(0)


def test_healthz_answers_compose_health_check_when_allowed_hosts_names_the_public_host(
    production_server: Callable[..., Server],
) -> None:
    """compose.yml checks web at http://127.0.0.1:8000/healthz; the README's ALLOWED_HOSTS
    (convoke.example.org,web) does not list 127.0.0.1, which must not matter."""
    url = _compose_health_url("web")
    assert url.startswith("http://127.0.0.1:8000/")
    server = production_server()
    status, headers, body = server.request(
        url.removeprefix("http://127.0.0.1:8000"), host="127.0.0.1:8000"
    )
    assert status == 200, body
    assert json.loads(body)["status"] == "ok"
    assert "no-cache" in headers["Cache-Control"]
    # Host validation still guards every other page.
    assert server.request("/admin/login/", host="127.0.0.1")[0] == 400
    assert server.request("/admin/login/")[0] == 200


def test_admin_gets_its_css_with_debug_off(production_server: Callable[..., Server]) -> None:
    server = production_server()
    status, _, page = server.request("/admin/login/")
    assert status == 200
    stylesheets = re.findall(rb'href="(/static/[^"]+\.css)"', page)
    assert b"/static/admin/css/base.css" in stylesheets
    for href in stylesheets:
        status, headers, css = server.request(href.decode())
        assert status == 200, href
        assert headers["Content-Type"].startswith("text/css")
        assert css


def test_https_redirect_and_hsts_when_configured(production_server: Callable[..., Server]) -> None:
    server = production_server(
        SECURE_SSL_REDIRECT="true",
        SECURE_HSTS_SECONDS="31536000",
        SECURE_HSTS_INCLUDE_SUBDOMAINS="true",
        NUM_PROXIES="1",
    )
    status, headers, _ = server.request("/admin/login/")
    assert status == 301
    assert headers["Location"] == "https://convoke.example.org/admin/login/"
    # Through the proxy (Caddy says X-Forwarded-Proto: https): the page, with HSTS.
    status, headers, _ = server.request("/admin/login/", headers={"X-Forwarded-Proto": "https"})
    assert status == 200
    assert headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    # A callback over plain http would be redirected, and a redirected POST is lost.
    status, _, _ = server.request(CALLBACK, method="POST", body=b"x")
    assert status == 301
    # Health checks are answered over plain http.
    assert server.request("/healthz", host="127.0.0.1:8000")[0] == 200


def test_callback_over_plain_http_inside_the_network_when_allowed(
    production_server: Callable[..., Server],
) -> None:
    server = production_server(SECURE_SSL_REDIRECT="true", CALLBACK_ALLOW_HTTP="true")
    status, _, body = server.request(
        CALLBACK,
        host="web:8000",
        method="POST",
        headers={"Content-Type": "text/calendar"},
        body=(PROJECT_DIR / "samples" / "invitation.ics").read_bytes(),
    )
    assert status == 401, body  # reached the view: no API key was sent
    assert server.request("/admin/login/", host="web")[0] == 301


def test_booking_throttle_is_shared_by_web_processes_and_counts_the_client_behind_the_proxy(
    production_server: Callable[..., Server], tmp_path: Path
) -> None:
    """Two gunicorn workers, 30/hour: 62 requests from one client get 30 through, whichever
    worker answers; behind Caddy (NUM_PROXIES=1) each client has its own allowance, and
    what a client writes into X-Forwarded-For itself does not change who it is."""
    server = production_server(
        WEB_CONCURRENCY="2",
        CACHE_URL=f"filecache://{tmp_path / 'cache'}",
        NUM_PROXIES="1",
        BOOKING_REQUEST_THROTTLE_RATE="30/hour",
    )
    path = "/api/v1.0/schedules/no-such-schedule/bookings/"

    def post(forwarded_for: str) -> int:
        return server.request(
            path,
            method="POST",
            headers={"Content-Type": "application/json", "X-Forwarded-For": forwarded_for},
            body=b"{}",
        )[0]

    statuses = [post("203.0.113.7") for _ in range(62)]
    assert statuses.count(429) == 32, statuses
    assert post("198.51.100.4, 203.0.113.7") == 429  # a forged first entry changes nothing
    assert post("198.51.100.9") != 429  # another client behind the same proxy


def test_several_web_processes_with_a_per_process_cache_fail_the_checks(tmp_path: Path) -> None:
    env = {**base_environment(tmp_path), **PRODUCTION_ENV, "WEB_CONCURRENCY": "2"}
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode != 0
    assert "(convoke.E014)" in result.stderr and "CACHE_URL" in result.stderr


def test_gunicorn_without_secrets_stops_with_what_to_set_and_no_traceback(tmp_path: Path) -> None:
    env = {**base_environment(tmp_path), "DEBUG": "false"}
    result = subprocess.run(
        [sys.executable, "-m", "gunicorn", "calendars.wsgi:application", "--bind", "127.0.0.1:0"],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "without SECRET_KEY, CALDAV_INBOUND_API_KEY, FIELD_ENCRYPTION_KEY" in result.stderr
