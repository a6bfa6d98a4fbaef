"""A newcomer's commands on a fresh copy: ``manage.py`` next to ``make run``, the operator
account, and beat without a ``var/`` folder."""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.embedded import PROJECT_DIR, project_copy

pytestmark = pytest.mark.slow

OPERATOR_EMAIL = "ops@example.org"
OPERATOR_PASSWORD = "Tr4vel-Lantern-Quiet-92"


def _bare_environment(home: Path) -> dict[str, str]:
    """What a developer's shell has: no Convoke variable at all."""
    return {"PATH": os.environ["PATH"], "HOME": str(home), "LANG": "C.UTF-8"}


def _manage(checkout: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=checkout,
        env=_bare_environment(checkout.parent),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def next_to_make_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh copy in which `make run` has generated var/dev.env (its secrets and its CalDAV
    server's password)."""
    checkout = project_copy(tmp_path_factory.mktemp("dev") / "convoke")
    subprocess.run(
        [
            sys.executable,
            "-c",
            "from calendars import devcaldav, devserver; devserver.child_environment(8000); "
            "devcaldav.password_ensure(devserver.DEV_ENV)",
        ],
        cwd=checkout,
        env=_bare_environment(checkout.parent),
        capture_output=True,
        check=True,
        timeout=60,
    )
    assert (checkout / "var" / "dev.env").is_file()
    return checkout


def test_manage_py_next_to_make_run_needs_no_sourced_environment(next_to_make_run: Path) -> None:
    for args in (("migrate", "--noinput"), ("check",)):
        result = _manage(next_to_make_run, *args)
        assert result.returncode == 0, result.stderr
        assert "Traceback" not in result.stderr
    assert (next_to_make_run / "var" / "convoke.sqlite3").is_file()


def test_manage_py_next_to_make_run_uses_make_runs_caldav_server(next_to_make_run: Path) -> None:
    # Issue 13: make run points Convoke at its own Radicale; manage.py next to it does too
    # (no convoke.W001 for a server that is there).
    shown = "from django.conf import settings as s; print(s.CALDAV_URL, s.CALDAV_USERNAME)"
    result = _manage(next_to_make_run, "shell", "-c", shown)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1].split() == ["http://127.0.0.1:8001/", "convoke"]


def _converse(command: list[str], cwd: Path, answers: list[tuple[str, str]]) -> str:
    """Run ``command`` on a terminal, answering each prompt; returns what it printed."""
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        command,
        cwd=cwd,
        env=_bare_environment(cwd.parent),
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        start_new_session=True,
    )
    os.close(terminal)
    transcript = ""
    pending = list(answers)
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([controller], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(controller, 4096).decode(errors="replace")
                except OSError:
                    break  # the command ended and closed its terminal
                if not chunk:
                    break
                transcript += chunk
                if pending and transcript.rstrip().endswith(pending[0][0]):
                    os.write(controller, (pending.pop(0)[1] + "\n").encode())
            elif process.poll() is not None:
                break
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        os.close(controller)
    return transcript


def test_createsuperuser_asks_for_the_email_that_signs_in(next_to_make_run: Path) -> None:
    assert _manage(next_to_make_run, "migrate", "--noinput").returncode == 0
    transcript = _converse(
        [sys.executable, "manage.py", "createsuperuser"],
        next_to_make_run,
        [
            ("Email address:", OPERATOR_EMAIL),
            ("Password:", OPERATOR_PASSWORD),
            ("Password (again):", OPERATOR_PASSWORD),
        ],
    )
    assert "Username" not in transcript
    assert "Superuser created successfully." in transcript, transcript
    signed_in = _manage(
        next_to_make_run,
        "shell",
        "-c",
        "from django.contrib.auth import authenticate; "
        f"u = authenticate(username={OPERATOR_EMAIL!r}, password={OPERATOR_PASSWORD!r}); "
        "print(u is not None and u.is_staff and u.is_superuser)",
    )
    assert signed_in.stdout.strip().splitlines()[-1] == "True", signed_in.stderr


def test_manage_py_without_secrets_in_production_says_what_to_set(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "manage.py", "migrate"],
        cwd=PROJECT_DIR,
        env={**_bare_environment(tmp_path), "DEBUG": "false"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "without SECRET_KEY, CALDAV_INBOUND_API_KEY, FIELD_ENCRYPTION_KEY" in result.stderr


def test_beat_starts_on_a_fresh_clone_without_var(tmp_path: Path) -> None:
    """PostgreSQL and Redis (or any database and broker outside var/): nothing creates var/
    before beat opens its schedule file there."""
    checkout = project_copy(tmp_path / "convoke")
    assert not (checkout / "var").exists()
    env = {
        **_bare_environment(tmp_path),
        "DEBUG": "true",
        "DATABASE_URL": os.environ.get("DATABASE_URL", f"sqlite:///{tmp_path / 'db.sqlite3'}"),
        "CELERY_BROKER_URL": os.environ.get("CELERY_BROKER_URL", "filesystem://"),
        "CELERY_FILESYSTEM_DIR": str(tmp_path / "celery"),
    }
    beat = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "calendars", "beat", "--loglevel=INFO"],
        cwd=checkout,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and beat.poll() is None:
            if list((checkout / "var").glob("celerybeat-schedule*")):
                break
            time.sleep(0.3)
        time.sleep(2)
        assert beat.poll() is None, beat.communicate(timeout=10)[0]
        assert list((checkout / "var").glob("celerybeat-schedule*"))
    finally:
        if beat.poll() is None:
            os.killpg(beat.pid, signal.SIGTERM)
        beat.communicate(timeout=30)
