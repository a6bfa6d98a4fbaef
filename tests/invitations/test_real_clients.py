"""Real mail clients' parsers read every kind of calendar part Convoke sends as it meant them.

Issue 13, build item 8: the ``text/calendar`` part of each email kind (invitation, update,
one-occurrence change, cancellation, reply; zoned, all-day, recurring) is read by

- **ical.js**, the library of Thunderbird's calendar (npm, run with the machine's Node.js;
  ``tests/clients/icaljs_read.mjs``), and
- **libical**, Evolution's library (Debian's ``gir1.2-ical-3.0`` through PyGObject, under the
  system's python3; ``tests/clients/libical_read.py``),

and each must find the METHOD, UID, SEQUENCE, organizer, attendees with PARTSTAT, start and
end (the same instants, in the zone Convoke meant) that the test states. Absent parsers skip
with the command that installs them; ``make test`` installs ical.js when npm is there, and
``.ci/run`` installs both, then sets ``CONVOKE_REAL_CLIENTS=required``, under which an absent
parser fails the test instead of skipping it (CI never passes without them unnoticed).
"""

from __future__ import annotations

import email
import email.policy
import functools
import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from calendars.ical import reply_build
from invitations.emails import email_build

from .emails_samples import ATTENDEE, ORGANIZER, request

pytestmark = pytest.mark.django_db

CLIENTS_DIR = Path(__file__).resolve().parents[1] / "clients"
SYSTEM_PYTHON = "/usr/bin/python3"
BEA = "bea@example.net"
ZONE = "Europe/Brussels"


@functools.cache
def _libical_python() -> str | None:
    if not Path(SYSTEM_PYTHON).is_file():
        return None
    probe = subprocess.run(
        [SYSTEM_PYTHON, "-c", "import gi; gi.require_version('ICalGLib', '3.0')"],
        capture_output=True,
        timeout=30,
        check=False,
    )
    return SYSTEM_PYTHON if probe.returncode == 0 else None


def _absent(reason: str) -> None:
    """Skip, or fail where the parsers were installed for this run (``.ci/run``)."""
    if os.environ.get("CONVOKE_REAL_CLIENTS") == "required":
        pytest.fail(f"{reason} (CONVOKE_REAL_CLIENTS=required: .ci/run installed it)")
    pytest.skip(reason)


def _read_with(reader: str, path: Path) -> dict[str, Any]:
    if reader == "ical.js":
        node = shutil.which("node")
        if node is None:
            _absent("ical.js cannot run: Node.js is absent (apt-get install nodejs npm)")
        if not (CLIENTS_DIR / "node_modules" / "ical.js").is_dir():
            _absent("ical.js is absent: npm ci --prefix tests/clients (make test runs it)")
        command = [str(node), str(CLIENTS_DIR / "icaljs_read.mjs"), str(path)]
    else:
        python = _libical_python()
        if python is None:
            _absent(
                f"libical is absent from {SYSTEM_PYTHON}: apt-get install gir1.2-ical-3.0 "
                "python3-gi"
            )
        command = [str(python), str(CLIENTS_DIR / "libical_read.py"), str(path)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, f"{reader} could not read the part: {done.stderr[-2000:]}"
    return dict(json.loads(done.stdout))


@dataclass(frozen=True)
class Meant:
    """What Convoke meant by one VEVENT of the part."""

    sequence: int
    attendees: dict[str, str]
    start: dict[str, str | None]
    end: dict[str, str | None]
    recurrence_id: dict[str, str | None] | None = None
    rrule: dict[str, str] = field(default_factory=dict)
    uid: str = "planning-2030@example.org"
    organizer: str = ORGANIZER


def _at(utc: str) -> dict[str, str | None]:
    return {"utc": utc, "date": None, "zone": ZONE}


def _day(date: str) -> dict[str, str | None]:
    return {"utc": None, "date": date, "zone": None}


GUESTS = {ATTENDEE: "NEEDS-ACTION", BEA: "ACCEPTED"}
MARCH_12 = (_at("2030-03-12T13:00:00Z"), _at("2030-03-12T14:30:00Z"))


def _stored_for_reply() -> bytes:
    """The organizer's copy an answer was written into (what reply_build reads)."""
    return request(attendee_partstat="ACCEPTED").replace(b"METHOD:REQUEST\r\n", b"")


CASES: dict[str, tuple[str, bytes, bytes | None, list[Meant]]] = {
    "invitation, zoned": ("REQUEST", request(), None, [Meant(0, GUESTS, *MARCH_12)]),
    "update, zoned": (
        "REQUEST",
        request(sequence=2, location="Room 9"),
        request(),
        [Meant(2, GUESTS, *MARCH_12)],
    ),
    "one occurrence changed": (
        "REQUEST",
        request(
            sequence=1,
            start="DTSTART;TZID=Europe/Brussels:20300319T160000",
            end="DTEND;TZID=Europe/Brussels:20300319T170000",
            extra="RECURRENCE-ID;TZID=Europe/Brussels:20300319T140000",
        ),
        request(extra="RRULE:FREQ=WEEKLY;COUNT=6"),
        [
            Meant(
                1,
                GUESTS,
                _at("2030-03-19T15:00:00Z"),
                _at("2030-03-19T16:00:00Z"),
                recurrence_id=_at("2030-03-19T13:00:00Z"),
            )
        ],
    ),
    "cancellation": (
        "CANCEL",
        request(method="CANCEL", sequence=3),
        None,
        [Meant(3, GUESTS, *MARCH_12)],
    ),
    "all-day": (
        "REQUEST",
        request(start="DTSTART;VALUE=DATE:20300312", end="DTEND;VALUE=DATE:20300314"),
        None,
        [Meant(0, GUESTS, _day("2030-03-12"), _day("2030-03-14"))],
    ),
    "recurring": (
        "REQUEST",
        request(extra="RRULE:FREQ=WEEKLY;BYDAY=TU;UNTIL=20300630T215959Z"),
        None,
        [
            Meant(
                0,
                GUESTS,
                *MARCH_12,
                rrule={"FREQ": "WEEKLY", "BYDAY": "TU", "UNTIL": "20300630T215959Z"},
            )
        ],
    ),
    "reply (Convoke's own)": (
        "REPLY",
        reply_build(_stored_for_reply(), attendee=ATTENDEE, recurrence_id=None),
        None,
        [Meant(0, {ATTENDEE: "ACCEPTED"}, *MARCH_12)],
    ),
}


def _calendar_part(method: str, body: bytes, previous: bytes | None) -> bytes:
    sender, recipient = (ATTENDEE, ORGANIZER) if method == "REPLY" else (ORGANIZER, ATTENDEE)
    mail = email_build(
        body=body,
        method=method,
        sender=sender,
        recipient=recipient,
        message_id="<clients@convoke.test>",
        language="en",
        time_zone="America/New_York",
        previous_body=previous,
    )
    message = email.message_from_bytes(mail.message().as_bytes(), policy=email.policy.default)
    [part] = [p for p in message.walk() if p.get_content_type() == "text/calendar"]
    assert part.get_param("method") == method
    return bytes(part.get_payload(decode=True))


def _rule(text: str | None) -> dict[str, str]:
    if not text:
        return {}
    return dict(item.split("=", 1) for item in text.split(";"))


@pytest.mark.parametrize("reader", ["ical.js", "libical"])
@pytest.mark.parametrize("case", CASES)
def test_a_real_clients_parser_reads_what_convoke_meant(
    tmp_path: Path, reader: str, case: str
) -> None:
    method, body, previous, meant = CASES[case]
    path = tmp_path / "invite.ics"
    path.write_bytes(_calendar_part(method, body, previous))

    read = _read_with(reader, path)

    assert read["method"] == method
    assert len(read["events"]) == len(meant)
    for event, expected in zip(read["events"], meant, strict=True):
        assert event["uid"] == expected.uid
        assert event["sequence"] == expected.sequence
        assert event["organizer"] == expected.organizer
        assert event["attendees"] == expected.attendees
        assert event["start"] == expected.start, f"{reader} start"
        assert event["end"] == expected.end, f"{reader} end"
        assert event["recurrence_id"] == expected.recurrence_id
        assert _rule(event["rrule"]) == expected.rrule


@pytest.mark.parametrize(("mode", "outcome"), [("", "skipped"), ("required", "failed")])
def test_an_absent_parser_skips_with_its_reason_and_fails_where_ci_installed_it(
    monkeypatch: pytest.MonkeyPatch, mode: str, outcome: str
) -> None:
    monkeypatch.setenv("CONVOKE_REAL_CLIENTS", mode)
    monkeypatch.setattr(shutil, "which", lambda name: None)  # no Node.js on this "machine"

    with pytest.raises(BaseException) as raised:
        _read_with("ical.js", Path("/nonexistent.ics"))

    kind = {"skipped": pytest.skip.Exception, "failed": pytest.fail.Exception}[outcome]
    assert type(raised.value) is kind
    assert "Node.js is absent (apt-get install nodejs npm)" in str(raised.value)
