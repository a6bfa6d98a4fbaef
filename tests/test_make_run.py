"""``make run`` serves from a fresh copy of the project and stops on one Ctrl-C."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from bench.embedded import make_run_environment, project_copy, soak
from tests.conftest import free_port

PROJECT_DIR = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_make_run_serves_healthz_from_a_fresh_copy_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    if shutil.which("make") is None or shutil.which("git") is None:
        pytest.skip("make and git are needed to run `make run`")
    checkout = project_copy(tmp_path / "convoke")
    port = free_port()
    environment = make_run_environment(port)
    runner = subprocess.Popen(
        ["make", "run"],
        cwd=checkout,
        env=environment,
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        body = b""
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and runner.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as r:
                    body = r.read()
                    break
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.5)
        assert b'"status": "ok"' in body, runner.stdout.read() if runner.poll() is not None else ""
        assert (checkout / "var" / "convoke.sqlite3").is_file()
        assert (checkout / "var" / "dev.env").stat().st_mode & 0o077 == 0
    finally:
        os.killpg(runner.pid, signal.SIGINT)
        output, _ = runner.communicate(timeout=60)
    assert runner.returncode is not None
    assert "CALDAV_INBOUND_API_KEY=" in output
    assert "curl -i http://127.0.0.1:" in output
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            os.killpg(runner.pid, 0)  # some process of the group (worker, beat) still lives
        except ProcessLookupError:
            break
        time.sleep(0.2)
    else:
        raise AssertionError("a process started by `make run` outlived Ctrl-C")
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2)


@pytest.mark.slow
def test_make_run_survives_steady_callbacks_and_writes_every_email(tmp_path: Path) -> None:
    """A few minutes of what `make bench-embedded` runs for an hour: the worker, beat and the
    web server stay up, every accepted callback becomes one .eml file, nothing raises."""
    if shutil.which("make") is None or shutil.which("git") is None:
        pytest.skip("make and git are needed to run `make run`")
    if os.environ.get("DATABASE_URL") or os.environ.get("CELERY_BROKER_URL"):
        pytest.skip("make run's embedded default is soaked in CI's first pass")
    seconds = float(os.environ.get("CONVOKE_SOAK_SECONDS", "150"))
    report = soak(project_copy(tmp_path / "convoke"), seconds=seconds, rate=4.0, drain_seconds=120)
    assert report.ok, report.summary() + "\n" + report.output_tail
    assert report.accepted >= seconds * 3
    assert report.tracebacks == 0, report.output_tail
