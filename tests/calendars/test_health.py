"""``GET /healthz``: 200 with JSON when every part answers, 503 naming the failing part."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.test import Client
from pytest_django import Settings as SettingsWrapper

from tests.conftest import free_port

PROJECT_DIR = Path(__file__).resolve().parents[2]


@pytest.mark.django_db
def test_healthz_is_ok_when_database_answers(client: Client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    assert response.json()["database"] == "ok"
    assert response["Cache-Control"].startswith("max-age=0")


@pytest.mark.django_db
def test_healthz_is_503_naming_the_broker_when_it_does_not_answer(
    client: Client, settings: SettingsWrapper
) -> None:
    settings.CELERY_BROKER_CONFIGURED = True
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{free_port()}/0"
    settings.CELERY_BROKER_TRANSPORT = None
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {}
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "database": "ok",
        "broker": "unavailable",
        "failing": ["broker"],
    }


@pytest.mark.django_db
def test_healthz_refuses_other_methods(client: Client) -> None:
    assert client.post("/healthz").status_code == 405


@pytest.mark.slow
def test_healthz_is_503_naming_the_database_when_it_does_not_answer(tmp_path: Path) -> None:
    port = free_port()
    environment = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "DEBUG": "true",
        "DJANGO_SETTINGS_MODULE": "calendars.settings",
        "CELERY_FILESYSTEM_DIR": str(tmp_path / "celery"),
        # Nothing listens on this port: every connection is refused.
        "DATABASE_URL": f"postgres://convoke:convoke@127.0.0.1:{free_port()}/convoke",
    }
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "calendars.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
        ],
        cwd=PROJECT_DIR,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        status, body = None, b""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as r:
                    status, body = r.status, r.read()
            except urllib.error.HTTPError as error:
                status, body = error.code, error.read()
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.2)
                continue
            break
        assert status == 503
        assert b'"failing": ["database"]' in body
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=20)
