"""``make run`` serves from a fresh copy of the project and stops on one Ctrl-C."""

from __future__ import annotations

import email
import email.message
import email.policy
import http.cookiejar
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

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


# --- The whole loop (issue 13, finding 6) ---------------------------------------------------


def _emails(folder: Path) -> list[email.message.EmailMessage]:
    """Every email written under ``folder`` (one .eml file each)."""
    found = []
    for path in sorted(folder.glob("*.eml")) if folder.is_dir() else []:
        parsed = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        found.append(parsed)  # type: ignore[arg-type]
    return found


def _email_to(folder: Path, address: str, subject: str, timeout: float = 90) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for message in _emails(folder):
            if address in str(message["To"]) and subject in str(message["Subject"]):
                return message
        time.sleep(0.5)
    seen = [(str(m["To"]), str(m["Subject"])) for m in _emails(folder)]
    raise AssertionError(f"no email to {address} about {subject!r} in {folder}: {seen}")


def _printed_curl(output: str) -> str:
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("curl -i "))
    command = []
    for line in lines[start:]:
        command.append(line)
        if not line.endswith("\\"):
            break
    return "\n".join(command)


@pytest.mark.slow
def test_make_run_completes_the_rsvp_loop_from_the_sample_to_the_organizers_reply(
    tmp_path: Path,
) -> None:
    """A newcomer's first minutes: make run, paste the printed curl, open the invitation in
    var/mail/, accept on the page, and find the organizer's REPLY email in var/mail/."""
    for tool in ("make", "git", "curl"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is needed for this walk through `make run`")
    checkout = project_copy(tmp_path / "convoke")
    port = free_port()
    while not _port_free(port + 1):
        port = free_port()
    # make run starts its own CalDAV server only when the shell names none.
    environment = {
        key: value
        for key, value in make_run_environment(port).items()
        if not key.startswith("CALDAV_")
    }
    log = tmp_path / "make-run.log"
    with log.open("w") as output:
        runner = subprocess.Popen(
            ["make", "run"],
            cwd=checkout,
            env=environment,
            start_new_session=True,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 240
        while "curl -i " not in log.read_text() or "Ctrl-C stops" not in log.read_text():
            assert runner.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.5)
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5):
                    break
            except (urllib.error.URLError, ConnectionError):
                assert runner.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.5)
        mail = checkout / "var" / "mail"

        # 1. The printed curl posts the sample invitation; Bob's invitation is written.
        posted = subprocess.run(
            ["bash", "-c", _printed_curl(log.read_text())],
            cwd=checkout,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert " 202 " in posted.stdout.splitlines()[0], posted.stdout + posted.stderr
        invitation = _email_to(mail, "bob@example.net", "Invitation: Project kick-off")
        text = invitation.get_body(("plain",)).get_content()
        [accept] = re.findall(r"http://127\.0\.0\.1:\d+/rsvp/\?token=\S+&action=accepted", text)

        # 2. The link opens the page (a GET changes nothing); its button POSTs the answer.
        jar = http.cookiejar.CookieJar()
        browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        with browser.open(accept, timeout=30) as page:
            form = page.read().decode()
        fields = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', form))
        assert {"csrfmiddlewaretoken", "token"} <= set(fields), form
        fields["action"] = "accepted"
        posted_form = urllib.parse.urlencode(fields).encode()
        with browser.open(accept.split("?", 1)[0], data=posted_form, timeout=30) as answered:
            done = answered.read().decode()
        assert "You accepted." in done, done
        assert "who is sent an email about it" in done

        # 3. The organizer's REPLY email is in var/mail/.
        reply = _email_to(mail, "alice@example.org", "Bob Durand accepted: Project kick-off")
        calendar = next(p for p in reply.walk() if p.get_content_type() == "text/calendar")
        assert "METHOD:REPLY" in calendar.get_content()
    finally:
        os.killpg(runner.pid, signal.SIGINT)
        runner.wait(timeout=60)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            os.killpg(runner.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.2)
    else:
        raise AssertionError("a process started by `make run` (Radicale?) outlived Ctrl-C")


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True
