"""Convoke as production runs it: gunicorn with DEBUG off, the README's settings, real HTTP.

One migrated SQLite database and one ``collectstatic`` per session; each server gets a copy
of the database and its own environment, and is stopped at the end of its test.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import free_port

PROJECT_DIR = Path(__file__).resolve().parents[2]
STARTUP_SECONDS = 60

# The README's production settings (operations section), with generated-looking secrets.
PRODUCTION_ENV = {
    "DEBUG": "false",
    "SECRET_KEY": "q7Lm2Xr9Tz4Wb8Nk1Vd5Hs3Jy6Pc0Fg_Ua-Ee4Rt8Io2Op6As1Df5Gh9Jk3Lz7Xc",
    "CALDAV_INBOUND_API_KEY": "Zk3vQ9_xTq2LwR8mYb5NcJ1hUe7sPa4dGo6iKf0tVn-X",
    "FIELD_ENCRYPTION_KEY": "dGVzdC1maWVsZC1lbmNyeXB0aW9uLWtleS0zMmJ5dGU=",
    "APP_URL": "https://convoke.example.org",
    "ALLOWED_HOSTS": "convoke.example.org,web",
    "EMAIL_HOST": "127.0.0.1",
}


def base_environment(scratch: Path) -> dict[str, str]:
    return {
        "PATH": os.environ["PATH"],
        "HOME": str(scratch),
        "DJANGO_SETTINGS_MODULE": "calendars.settings",
        "CELERY_FILESYSTEM_DIR": str(scratch / "celery"),
        "PYTHONUNBUFFERED": "1",
    }


def manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@dataclass
class Prepared:
    database: Path
    static_root: Path


@pytest.fixture(scope="session")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Prepared:
    scratch = tmp_path_factory.mktemp("production")
    env = {
        **base_environment(scratch),
        **PRODUCTION_ENV,
        "DATABASE_URL": f"sqlite:///{scratch / 'template.sqlite3'}",
        "STATIC_ROOT": str(scratch / "static"),
    }
    for args in (("migrate", "--noinput"), ("collectstatic", "--noinput")):
        result = manage(env, *args)
        assert result.returncode == 0, result.stderr
    return Prepared(database=scratch / "template.sqlite3", static_root=scratch / "static")


@dataclass
class Server:
    url: str
    process: subprocess.Popen[str]

    def request(
        self,
        path: str,
        *,
        host: str = "convoke.example.org",
        method: str = "GET",
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        """One request on a new connection; redirects are not followed."""
        request = urllib.request.Request(
            self.url + path, data=body, method=method, headers={"Host": host, **(headers or {})}
        )
        opener = urllib.request.build_opener(_NoRedirect)
        try:
            with opener.open(request, timeout=20) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def _wait_healthy(server: Server) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            break
        try:
            status, _, _ = server.request("/healthz", host="127.0.0.1")
            if status == 200:
                return
        except (urllib.error.URLError, ConnectionError):
            pass
        time.sleep(0.3)
    server.process.terminate()
    output, _ = server.process.communicate(timeout=30)
    raise AssertionError(f"gunicorn did not become healthy:\n{output}")


@pytest.fixture
def production_server(prepared: Prepared, tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Start gunicorn (DEBUG off, README settings, ``overrides`` on top) on 127.0.0.1."""
    started: list[Server] = []

    def start(**overrides: str) -> Server:
        database = tmp_path / f"db{len(started)}.sqlite3"
        shutil.copy(prepared.database, database)
        port = free_port()
        env = {
            **base_environment(tmp_path),
            **PRODUCTION_ENV,
            "DATABASE_URL": f"sqlite:///{database}",
            "STATIC_ROOT": str(prepared.static_root),
            **overrides,
        }
        process = subprocess.Popen(
            [
                *(sys.executable, "-m", "gunicorn", "calendars.wsgi:application"),
                *("--bind", f"127.0.0.1:{port}", "--timeout", "30"),
            ],
            cwd=PROJECT_DIR,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        server = Server(url=f"http://127.0.0.1:{port}", process=process)
        started.append(server)
        _wait_healthy(server)
        return server

    yield start
    for server in started:
        if server.process.poll() is None:
            os.killpg(server.process.pid, signal.SIGTERM)
        try:
            server.process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.process.pid, signal.SIGKILL)
            server.process.communicate()
