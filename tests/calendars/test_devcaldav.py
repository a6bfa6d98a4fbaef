"""make run's own CalDAV server (calendars.devcaldav): Radicale with the sample's event."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import icalendar
import pytest
import requests

from calendars import devcaldav
from tests.conftest import PROJECT_DIR, free_port

TEMPLATE = PROJECT_DIR / "samples" / "invitation.ics"
NOW = dt.datetime(2027, 3, 1, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[int, str]]:
    dev_env = tmp_path / "dev.env"
    dev_env.write_text("SECRET_KEY=x\n")
    password = devcaldav.password_ensure(dev_env)
    assert devcaldav.password_ensure(dev_env) == password  # generated once
    port = free_port()
    process = devcaldav.start(tmp_path / "radicale", port, password)
    try:
        yield port, password
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_the_sample_is_dated_two_weeks_ahead_at_the_same_time_and_kept_until_over(
    tmp_path: Path,
) -> None:
    copy = tmp_path / "sample.ics"

    data, written = devcaldav._sample_dated(TEMPLATE, copy, NOW)

    event = icalendar.Calendar.from_ical(data).events[0]
    assert written and event.start.date() == dt.date(2027, 3, 15)
    assert (event.start.hour, str(event.start.tzinfo)) == (14, "Europe/Paris")
    assert event.end - event.start == dt.timedelta(hours=1)
    assert b"METHOD:REQUEST" in data
    assert devcaldav._sample_dated(TEMPLATE, copy, NOW + dt.timedelta(days=13)) == (data, False)
    later, written = devcaldav._sample_dated(TEMPLATE, copy, NOW + dt.timedelta(days=20))
    assert written and icalendar.Calendar.from_ical(later).events[0].start.date() == dt.date(
        2027, 4, 4
    )


def test_the_sample_event_is_stored_once_and_an_answer_on_it_survives_a_restart(
    server: tuple[int, str], tmp_path: Path
) -> None:
    port, password = server
    copy = tmp_path / "sample.ics"
    url = f"{devcaldav.base_url(port)}alice@example.org/calendar/{devcaldav.SAMPLE_OBJECT}"
    auth = (devcaldav.SERVICE_ACCOUNT, password)

    devcaldav.sample_store(port=port, password=password, template=TEMPLATE, copy=copy)
    stored = requests.get(url, auth=auth, timeout=10)
    assert stored.status_code == 200 and b"METHOD" not in stored.content
    answered = stored.content.replace(b"PARTSTAT=NEEDS-ACTION", b"PARTSTAT=ACCEPTED")
    requests.put(url, data=answered, auth=auth, timeout=10).raise_for_status()
    devcaldav.sample_store(port=port, password=password, template=TEMPLATE, copy=copy)

    assert b"PARTSTAT=ACCEPTED" in requests.get(url, auth=auth, timeout=10).content
    assert requests.get(url, auth=("alice@example.org", "guess"), timeout=10).status_code == 401


def test_a_taken_port_is_named_instead_of_a_traceback(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(devcaldav.DevCalDAVError, match=f"port {port}"):
            devcaldav.start(tmp_path / "radicale", port, "pw")
