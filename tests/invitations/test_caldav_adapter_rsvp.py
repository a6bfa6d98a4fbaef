"""The CalDAV adapter's RSVP half against Radicale: discovery, find by UID, conditional writes.

Every test talks HTTP to a real Radicale on 127.0.0.1 (directly, or through
:class:`~tests.invitations.rsvp_support.DavProxy` when something must happen between two
requests).
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import unquote

import pytest

from calendars.ical import parse_itip
from calendars.providers import ProviderNotConfigured, caldav
from tests.invitations.rsvp_support import (
    Account,
    DavProxy,
    event_body,
)

BOB = "bob@x.com"


def _uid() -> str:
    return f"{uuid.uuid4().hex}@dav.example.org"


def test_event_find_searches_every_calendar_when_event_is_not_in_the_first(
    organizer: Account,
) -> None:
    uid = _uid()
    body = event_body(uid=uid, organizer=organizer.email, attendees=[(BOB, "NEEDS-ACTION")])
    url = organizer.event_create(body, calendar="Work")

    found = caldav.event_find(user_email=organizer.email, uid=uid)

    assert found is not None
    assert unquote(found.url) == unquote(url)
    assert unquote(found.calendar_url) == unquote(organizer.calendars["Work"])
    # Radicale stores its own serialisation of what it was given: compare the content.
    assert parse_itip(found.data).events == parse_itip(body).events
    assert found.etag == organizer.stored(uid)[0]


def test_event_find_discovers_the_calendars_from_the_principal_when_no_template(
    organizer: Account, settings: Any
) -> None:
    settings.CALDAV_CALENDAR_HOME_TEMPLATE = ""
    uid = _uid()
    organizer.event_create(
        event_body(uid=uid, organizer=organizer.email, attendees=[(BOB, "NEEDS-ACTION")]),
        calendar="Work",
    )

    found = caldav.event_find(user_email=organizer.email, uid=uid)

    assert found is not None
    assert unquote(found.calendar_url) == unquote(organizer.calendars["Work"])


def test_event_find_returns_none_when_no_calendar_has_the_uid(organizer: Account) -> None:
    assert caldav.event_find(user_email=organizer.email, uid=_uid()) is None


def test_event_find_matches_the_whole_uid_when_another_uid_contains_it(
    organizer: Account,
) -> None:
    uid = _uid()
    organizer.event_create(
        event_body(uid="prefix-" + uid, organizer=organizer.email, attendees=[(BOB, "ACCEPTED")])
    )

    assert caldav.event_find(user_email=organizer.email, uid=uid) is None


def test_event_modify_puts_with_if_match_and_reads_back_when_change_returns_bytes(
    dav_proxy: DavProxy, organizer: Account
) -> None:
    uid = _uid()
    body = event_body(uid=uid, organizer=organizer.email, attendees=[(BOB, "NEEDS-ACTION")])
    organizer.event_create(body)
    etag_before = organizer.stored(uid)[0]

    result = caldav.event_modify(
        user_email=organizer.email,
        uid=uid,
        change=lambda data: data.replace(b"Quarterly planning", b"Quarterly review"),
    )

    assert result.changed and result.attempts == 1
    assert result.before.etag == etag_before
    etag_after, stored = organizer.stored(uid)
    assert result.after.etag == etag_after != etag_before
    assert b"Quarterly review" in stored
    assert parse_itip(result.after.data).events == parse_itip(stored).events
    puts = [seen for seen in dav_proxy.requests_seen if seen[0] == "PUT"]
    assert len(puts) == 1
    assert {k.lower(): v for k, v in puts[0][2].items()}["if-match"] == etag_before


def test_event_modify_writes_nothing_when_change_returns_none(
    dav_proxy: DavProxy, organizer: Account
) -> None:
    uid = _uid()
    organizer.event_create(event_body(uid=uid, organizer=organizer.email, attendees=[]))
    etag = organizer.stored(uid)[0]

    result = caldav.event_modify(user_email=organizer.email, uid=uid, change=lambda data: None)

    assert not result.changed
    assert dav_proxy.count("PUT") == 0
    assert organizer.stored(uid)[0] == etag


def test_event_modify_reapplies_on_a_fresh_read_when_put_gets_412(
    dav_proxy: DavProxy, organizer: Account
) -> None:
    uid = _uid()
    organizer.event_create(event_body(uid=uid, organizer=organizer.email, attendees=[]))
    dav_proxy.before_put = lambda: organizer.replace(
        uid, lambda data: data.replace(b"SEQUENCE:0", b"LOCATION:Room 4\r\nSEQUENCE:0")
    )
    seen: list[bytes] = []

    def change(data: bytes) -> bytes:
        seen.append(data)
        return data.replace(b"Quarterly planning", b"Quarterly review")

    result = caldav.event_modify(user_email=organizer.email, uid=uid, change=change)

    assert result.attempts == 2
    assert len(seen) == 2 and b"Room 4" not in seen[0] and b"Room 4" in seen[1]
    stored = organizer.stored(uid)[1]
    assert b"Room 4" in stored and b"Quarterly review" in stored


def test_event_modify_gives_up_when_every_put_gets_412(
    dav_proxy: DavProxy, organizer: Account
) -> None:
    uid = _uid()
    organizer.event_create(event_body(uid=uid, organizer=organizer.email, attendees=[]))
    edits = iter(range(100))

    def change(data: bytes) -> bytes:
        # Someone else writes between each of our reads and our PUT.
        number = next(edits)
        organizer.replace(
            uid, lambda d: d.replace(b"SEQUENCE:", f"X-EDIT-{number}:1\r\nSEQUENCE:".encode())
        )
        return data.replace(b"Quarterly planning", b"Ours")

    with pytest.raises(caldav.CalDAVPreconditionFailed):
        caldav.event_modify(user_email=organizer.email, uid=uid, change=change, attempts=3)

    assert dav_proxy.count("PUT") == 3
    assert b"Ours" not in organizer.stored(uid)[1]


def test_event_modify_raises_not_found_when_the_uid_is_unknown(organizer: Account) -> None:
    with pytest.raises(caldav.CalDAVNotFound):
        caldav.event_modify(user_email=organizer.email, uid=_uid(), change=lambda data: data)


def test_event_modify_refuses_when_the_new_bytes_carry_method(organizer: Account) -> None:
    uid = _uid()
    organizer.event_create(event_body(uid=uid, organizer=organizer.email, attendees=[]))

    with pytest.raises(ValueError, match="METHOD"):
        caldav.event_modify(
            user_email=organizer.email,
            uid=uid,
            change=lambda data: data.replace(b"VERSION:2.0", b"VERSION:2.0\r\nMETHOD:REQUEST"),
        )


def test_event_find_raises_unavailable_when_the_server_answers_503(
    dav_proxy: DavProxy, organizer: Account
) -> None:
    dav_proxy.unavailable = True

    with pytest.raises(caldav.CalDAVUnavailable) as caught:
        caldav.event_find(user_email=organizer.email, uid=_uid())

    assert caught.value.__cause__ is not None


def test_event_find_raises_unavailable_when_nothing_listens(
    organizer: Account, settings: Any, unused_port: int
) -> None:
    settings.CALDAV_URL = f"http://127.0.0.1:{unused_port}/"
    settings.CALDAV_CALENDAR_HOME_TEMPLATE = f"http://127.0.0.1:{unused_port}/{{email}}/"

    with pytest.raises(caldav.CalDAVUnavailable) as caught:
        caldav.event_find(user_email=organizer.email, uid=_uid())

    assert caught.value.reason == "caldav_connection"


def test_event_find_raises_refused_when_the_password_is_wrong(
    organizer: Account, settings: Any
) -> None:
    settings.CALDAV_PASSWORD = "not-the-password"

    with pytest.raises(caldav.CalDAVRefused):
        caldav.event_find(user_email=organizer.email, uid=_uid())


def test_event_find_raises_not_configured_when_no_credentials(settings: Any) -> None:
    settings.CALDAV_URL = "http://127.0.0.1:9/"
    settings.CALDAV_USERNAME = ""
    settings.CALDAV_OUTBOUND_API_KEY = ""

    with pytest.raises(ProviderNotConfigured):
        caldav.event_find(user_email="alice@example.org", uid=_uid())


def test_event_modify_acts_as_the_forwarded_user_when_an_api_key_is_configured(
    organizer: Account, settings: Any
) -> None:
    # La Suite's server trusts X-Api-Key + X-Forwarded-User; the proxy plays that part.
    proxy = DavProxy(
        upstream=organizer.server_url,
        api_key="outbound-key-5e2c9d",
        passwords={organizer.email: organizer.password},
    )
    proxy.start()
    try:
        settings.CALDAV_URL = proxy.url
        settings.CALDAV_CALENDAR_HOME_TEMPLATE = ""  # discovered through the principal
        settings.CALDAV_USERNAME = ""
        settings.CALDAV_OUTBOUND_API_KEY = "outbound-key-5e2c9d"
        uid = _uid()
        organizer.event_create(event_body(uid=uid, organizer=organizer.email, attendees=[]))

        result = caldav.event_modify(
            user_email=organizer.email,
            uid=uid,
            change=lambda data: data.replace(b"Quarterly planning", b"Via API key"),
        )
    finally:
        proxy.stop()

    assert result.changed
    assert b"Via API key" in organizer.stored(uid)[1]
    assert proxy.requests_seen
    for _method, _path, headers in proxy.requests_seen:
        lowered = {k.lower(): v for k, v in headers.items()}
        assert lowered["x-forwarded-user"] == organizer.email
        assert "authorization" not in lowered


def test_calendar_home_on_another_host_than_caldav_url_is_used_when_templated(
    organizer: Account, settings: Any, unused_port: int
) -> None:
    settings.CALDAV_URL = f"http://127.0.0.1:{unused_port}/"  # nothing listens there
    uid = _uid()
    organizer.event_create(event_body(uid=uid, organizer=organizer.email, attendees=[]))

    found = caldav.event_find(user_email=organizer.email, uid=uid)

    assert found is not None and found.etag == organizer.stored(uid)[0]
