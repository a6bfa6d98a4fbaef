"""A pytest plugin that scans everything our own loggers wrote during the whole suite.

Convoke promises never to log a key, a token or an email address (docs/style.md rules 10 and 13).
Every process of the run (the controller and each xdist worker) writes the records of the
``calendars``, ``scheduling``, ``invitations`` and ``gcal_push`` loggers, at every level, to a
file in one scratch folder; when the session ends, the controller scans those files for the
test secrets and for anything shaped like an email address, and fails the run, listing the
offending lines, when it finds one.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
from pathlib import Path

import pytest

OUR_LOGGERS = ("calendars", "scheduling", "invitations", "gcal_push")
SCAN_DIR_VARIABLE = "CONVOKE_LOG_SCAN_DIR"
EMAIL_ADDRESS = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")

# Fixtures add the secrets they hand to the code under test (API keys, OAuth tokens, ...).
SENSITIVE_VALUES: set[str] = set()


def _is_controller(config: pytest.Config) -> bool:
    return not hasattr(config, "workerinput")


def pytest_configure(config: pytest.Config) -> None:
    if _is_controller(config):
        os.environ[SCAN_DIR_VARIABLE] = tempfile.mkdtemp(prefix="convoke-logscan-")
    scan_dir = Path(os.environ[SCAN_DIR_VARIABLE])
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    handler = logging.FileHandler(scan_dir / f"{worker}.log", encoding="utf-8")
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    for name in OUR_LOGGERS:
        logger = logging.getLogger(name)
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)


def _secrets() -> set[str]:
    from django.conf import settings

    from tests.settings import TEST_FIELD_ENCRYPTION_KEY, TEST_INBOUND_API_KEY

    values = {TEST_INBOUND_API_KEY, TEST_FIELD_ENCRYPTION_KEY, settings.SECRET_KEY}
    values |= SENSITIVE_VALUES
    return {value for value in values if len(value) >= 8}


def scan_lines(lines: list[str], secrets: set[str]) -> list[str]:
    """The offending lines: those holding a secret or an email address."""
    findings: list[str] = []
    for line in lines:
        if any(secret in line for secret in secrets):
            findings.append(f"secret in log: {line[:200]}")
        elif EMAIL_ADDRESS.search(line):
            findings.append(f"email address in log: {line[:200]}")
    return findings


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not _is_controller(session.config):
        return
    scan_dir = Path(os.environ.get(SCAN_DIR_VARIABLE, ""))
    if not scan_dir.is_dir():
        return
    secrets = _secrets()
    findings: list[str] = []
    lines_scanned = 0
    for path in sorted(scan_dir.glob("*.log")):
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        lines_scanned += len(lines)
        findings += scan_lines(lines, secrets)
    shutil.rmtree(scan_dir, ignore_errors=True)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(
            f"log scan: {lines_scanned} line(s) from our loggers, {len(findings)} finding(s)"
        )
        for finding in findings[:50]:
            reporter.write_line(f"  {finding}", red=True)
    if findings:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
