"""The whole-suite log scan finds secrets and addresses, and passes clean lines."""

from __future__ import annotations

import logging

from tests.log_scan import SCAN_DIR_VARIABLE, scan_lines


def test_scan_finds_secrets_and_addresses_but_passes_identifiers() -> None:
    lines = [
        "scheduling INFO callback accepted message=12 delivery=7",
        "scheduling WARNING callback refused reason=bad_key key=test-inbound-key-4c1f",
        "invitations INFO delivery sent to bob@example.net",
        "invitations INFO delivery sent delivery=7 recipient=<redacted>",
    ]
    findings = scan_lines(lines, {"test-inbound-key-4c1f"})
    assert findings == [
        "secret in log: " + lines[1],
        "email address in log: " + lines[2],
    ]


def test_our_loggers_write_to_the_scan_folder(caplog: object) -> None:
    import os
    from pathlib import Path

    logging.getLogger("calendars.test_probe").debug("probe line id=%d", 1)
    folder = Path(os.environ[SCAN_DIR_VARIABLE])
    written = "".join(path.read_text() for path in folder.glob("*.log"))
    assert "calendars.test_probe DEBUG probe line id=1" in written
