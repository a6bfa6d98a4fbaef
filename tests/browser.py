"""What the real-browser tests share: Debian's Chromium driven by Playwright.

Playwright's own browser download does not work on our machines; the tests launch the
system's ``chromium`` with the flags a headless run as root on a closed network needs, and
save their screenshots under ``artifacts/screenshots/`` (not tracked).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

SCREENSHOTS = Path(__file__).resolve().parent.parent / "artifacts" / "screenshots"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def chromium_or_skip() -> str:
    """The path of Debian's chromium; skips the test with a reason when it is not installed."""
    path = shutil.which("chromium")
    if path is None:
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium)")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return path
