"""``GET/POST /rsvp/`` against Radicale: what the page shows, what a POST stores, every refusal.

The CalDAV server is a real Radicale on 127.0.0.1 (one organizer account per test); when a
test must see or shape the requests Convoke makes, a proxy sits in between
(:class:`~tests.invitations.rsvp_support.DavProxy`).
"""

from __future__ import annotations

import datetime as dt
import html
import json
import uuid
import zoneinfo
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.test import Client

from calendars.models import BookingStatus, BookingTransition, TransitionSource
from invitations.models import Delivery
from scheduling.models import SchedulingMessage
from tests.factories import BookingFactory, UserFactory
from tests.fakes.radicale import RadicaleAccounts
from tests.invitations.rsvp_support import (
    Account,
    DavProxy,
    event_body,
    future,
    partstats,
    rsvp_path,
    rsvp_token,
)

pytestmark = pytest.mark.django_db

BOB = "bob@x.com"
JIMBOB = "jimbob@x.com"


def _strings(language: str) -> dict[str, str]:
    with open(django_settings.TRANSLATIONS_JSON_PATH, encoding="utf-8") as handle:
        return json.load(handle)[language]


def _text(response: Any) -> str:
    return html.unescape(response.content.decode("utf-8"))


@pytest.fixture
def event(organizer: Account) -> str:
    """A one-off event a month ahead with bob@x.com and jimbob@x.com; returns its UID."""
    uid = f"{uuid.uuid4().hex}@dav.example.org"
    organizer.event_create(
        event_body(
            uid=uid,
            organizer=organizer.email,
            attendees=[(BOB, "NEEDS-ACTION"), (JIMBOB, "NEEDS-ACTION")],
            location="Room 4",
        )
    )
    return uid


def _token(organizer: Account, uid: str, attendee: str = BOB, **options: Any) -> str:
    return rsvp_token(uid=uid, attendee=attendee, organizer=organizer.email, **options)


def _post(client: Client, token: str, action: str, **extra: Any) -> Any:
    return client.post("/rsvp/", {"token": token, "action": action}, **extra)


# --- GET ---------------------------------------------------------------------------------------


def test_get_shows_event_answer_and_three_buttons_when_link_is_opened(
    client: Client, organizer: Account, event: str
) -> None:
    UserFactory(email=BOB, language="en", time_zone="America/New_York")
    start = future()

    response = client.get(rsvp_path(_token(organizer, event), "tentative"))

    assert response.status_code == 200
    page = _text(response)
    assert "Quarterly planning" in page
    assert "Room 4" in page
    assert f"Alice Martin <{organizer.email}>" in page
    # The invitee's zone: 14:00 in Paris is 08:00 or 09:00 in New York.
    shown = start.astimezone(zoneinfo.ZoneInfo("America/New_York"))
    assert f"{shown.hour:02d}:00" in page and "America/New_York" in page
    assert 'id="rsvp-current" data-partstat="NEEDS-ACTION">No answer yet<' in page
    for action, label in (("accepted", "Accept"), ("tentative", "Maybe"), ("declined", "Decline")):
        assert f'name="action" value="{action}"' in page and f">{label}</button>" in page
    assert 'value="tentative" class="chosen"' in page
    assert 'value="accepted" class="chosen"' not in page
    assert "<script" not in page.lower()
    assert response["Referrer-Policy"] == "same-origin"
    assert "no-cache" in response["Cache-Control"] or "max-age=0" in response["Cache-Control"]


def test_get_changes_nothing_when_a_scanner_opens_every_link_repeatedly(
    client: Client, dav_proxy: DavProxy, organizer: Account, event: str
) -> None:
    etag_before = organizer.stored(event)[0]
    token = _token(organizer, event)

    for action in ("accepted", "tentative", "declined") * 3:
        assert client.get(rsvp_path(token, action)).status_code == 200

    assert organizer.stored(event)[0] == etag_before
    assert dav_proxy.count("PUT") == 0 and dav_proxy.count("DELETE") == 0
    assert Delivery.objects.filter(method="REPLY").count() == 0


def test_head_is_refused_without_touching_anything_when_a_scanner_uses_it(
    client: Client, dav_proxy: DavProxy, organizer: Account, event: str
) -> None:
    response = client.head(rsvp_path(_token(organizer, event)))

    assert response.status_code == 405
    assert dav_proxy.requests_seen == []


def test_get_shows_no_highlight_when_link_has_no_action(
    client: Client, organizer: Account, event: str
) -> None:
    response = client.get("/rsvp/?token=" + _token(organizer, event))

    assert response.status_code == 200
    assert 'class="chosen"' not in response.content.decode()


# --- POST --------------------------------------------------------------------------------------


def test_post_sets_partstat_of_that_attendee_only_when_bob_accepts(
    client: Client, organizer: Account, event: str
) -> None:
    response = _post(client, _token(organizer, event), "accepted")

    assert response.status_code == 200, _text(response)
    assert "You accepted." in _text(response)
    assert 'data-partstat="ACCEPTED"' in _text(response)
    assert partstats(organizer.stored(event)[1])[None] == {BOB: "ACCEPTED", JIMBOB: "NEEDS-ACTION"}


def test_post_changes_only_jimbob_when_jimbob_declines(
    client: Client, organizer: Account, event: str
) -> None:
    response = _post(client, _token(organizer, event, attendee=JIMBOB), "declined")

    assert response.status_code == 200
    assert partstats(organizer.stored(event)[1])[None] == {BOB: "NEEDS-ACTION", JIMBOB: "DECLINED"}


def test_post_is_refused_when_address_is_only_a_substring_of_an_attendee(
    client: Client, organizer: Account, event: str
) -> None:
    etag = organizer.stored(event)[0]

    for address in ("ob@x.com", "bob@x.co", "x.com", "mbob@x.com"):
        response = _post(client, _token(organizer, event, attendee=address), "accepted")
        assert response.status_code == 403, address

    assert organizer.stored(event)[0] == etag


def test_post_matches_the_address_case_insensitively_when_case_differs(
    client: Client, organizer: Account
) -> None:
    uid = f"{uuid.uuid4().hex}@dav.example.org"
    organizer.event_create(
        event_body(uid=uid, organizer=organizer.email, attendees=[("Bob@X.com", "NEEDS-ACTION")])
    )

    response = _post(client, _token(organizer, uid, attendee="BOB@x.COM"), "accepted")

    assert response.status_code == 200
    assert partstats(organizer.stored(uid)[1])[None] == {BOB: "ACCEPTED"}


def test_post_changes_the_answer_when_the_invitee_changes_their_mind(
    client: Client, organizer: Account, event: str
) -> None:
    token = _token(organizer, event)
    _post(client, token, "accepted")

    response = _post(client, token, "declined")

    assert response.status_code == 200
    assert "You declined." in _text(response)
    assert partstats(organizer.stored(event)[1])[None][BOB] == "DECLINED"


def test_post_writes_and_sends_nothing_when_the_answer_is_already_recorded(
    client: Client,
    dav_proxy: DavProxy,
    organizer: Account,
    event: str,
    django_capture_on_commit_callbacks: Any,
) -> None:
    token = _token(organizer, event)
    _post(client, token, "accepted")
    puts, replies = dav_proxy.count("PUT"), Delivery.objects.filter(method="REPLY").count()

    response = _post(client, token, "accepted")

    assert response.status_code == 200
    assert "This was already your answer" in _text(response)
    assert dav_proxy.count("PUT") == puts == 1
    assert Delivery.objects.filter(method="REPLY").count() == replies == 1


def test_post_stores_a_reply_for_the_organizer_when_the_server_does_not_schedule(
    client: Client, organizer: Account, event: str, settings: Any
) -> None:

    _post(client, _token(organizer, event), "tentative")

    # Convoke's own REPLY goes straight into the outbox (no scheduling message is faked).
    assert not SchedulingMessage.objects.exists()
    delivery = Delivery.objects.get()
    assert (delivery.kind, delivery.method, delivery.sender, delivery.recipient) == (
        "itip",
        "REPLY",
        BOB,
        organizer.email,
    )
    assert partstats(bytes(delivery.body)) == {None: {BOB: "TENTATIVE"}}
    assert b"METHOD:REPLY" in bytes(delivery.body)


def test_post_writes_the_organizers_copy_and_our_reply_when_the_server_does_not_schedule(
    client: Client, organizer: Account, radicale_accounts: RadicaleAccounts, settings: Any
) -> None:
    # Convoke could act as the attendee (an API key), and the attendee has a copy, but
    # Radicale does not schedule: written there, the answer would reach nobody.
    attendee = radicale_accounts.account_new(f"bob-{uuid.uuid4().hex[:8]}@x.com")
    attendee.calendar_create("Calendar")
    uid = f"{uuid.uuid4().hex}@dav.example.org"
    body = event_body(
        uid=uid, organizer=organizer.email, attendees=[(attendee.email, "NEEDS-ACTION")]
    )
    organizer.event_create(body)
    attendee.event_create(body, calendar="Calendar")
    proxy = DavProxy(
        upstream=organizer.server_url,
        api_key="outbound-key-for-tests-0123456789",
        passwords={organizer.email: organizer.password, attendee.email: attendee.password},
    )
    proxy.start()
    try:
        settings.CALDAV_URL = proxy.url
        settings.CALDAV_OUTBOUND_API_KEY = proxy.api_key
        settings.CALDAV_USERNAME = settings.CALDAV_CALENDAR_HOME_TEMPLATE = ""
        token = rsvp_token(uid=uid, attendee=attendee.email, organizer=organizer.email)

        response = client.post("/rsvp/", {"token": token, "action": "accepted"})
    finally:
        proxy.stop()

    assert response.status_code == 200
    assert "who is sent an email about it" in _text(response)
    assert partstats(organizer.stored(uid)[1])[None][attendee.email] == "ACCEPTED"
    assert partstats(attendee.stored(uid, calendar="Calendar")[1])[None] == {
        attendee.email: "NEEDS-ACTION"
    }
    assert Delivery.objects.filter(method="REPLY", recipient=organizer.email).count() == 1


def test_post_declines_the_booking_when_the_event_is_a_booking(
    client: Client, organizer: Account
) -> None:
    booking = BookingFactory(attendee_email=BOB, status=BookingStatus.BOOKED)
    organizer.event_create(
        event_body(
            uid=booking.ical_uid, organizer=organizer.email, attendees=[(BOB, "NEEDS-ACTION")]
        )
    )

    response = _post(client, _token(organizer, booking.ical_uid), "declined")

    assert response.status_code == 200
    booking.refresh_from_db()
    assert booking.status == BookingStatus.DECLINED
    assert booking.attendee_partstat == "DECLINED"
    transition = BookingTransition.objects.filter(booking=booking).latest("id")
    assert transition.source == TransitionSource.EMAIL_LINK


def test_post_records_a_bookings_answer_once_and_stores_our_reply_when_the_server_does_not_schedule(
    client: Client, organizer: Account, settings: Any
) -> None:
    booking = BookingFactory(attendee_email=BOB, status=BookingStatus.REQUESTED)
    organizer.event_create(
        event_body(
            uid=booking.ical_uid, organizer=organizer.email, attendees=[(BOB, "NEEDS-ACTION")]
        )
    )

    response = _post(client, _token(organizer, booking.ical_uid), "accepted")

    assert response.status_code == 200
    answers = BookingTransition.objects.filter(booking=booking, detail__partstat="ACCEPTED")
    assert [t.source for t in answers] == [TransitionSource.EMAIL_LINK]
    # Our REPLY is in the outbox, about the booking's event; it was not fed back through the
    # scheduling callback as if it had come from outside.
    reply = Delivery.objects.get(method="REPLY")
    assert (reply.uid, reply.sender, reply.recipient) == (booking.ical_uid, BOB, organizer.email)
    assert not SchedulingMessage.objects.exists()


def test_post_requires_the_csrf_token_when_checks_are_enforced(
    organizer: Account, event: str
) -> None:
    browser = Client(enforce_csrf_checks=True)
    token = _token(organizer, event)
    etag = organizer.stored(event)[0]

    refused = _post(browser, token, "accepted")

    assert refused.status_code == 403
    assert organizer.stored(event)[0] == etag
    page = browser.get(rsvp_path(token))
    csrf = page.content.decode().split('name="csrfmiddlewaretoken" value="')[1].split('"')[0]
    accepted = browser.post(
        "/rsvp/", {"token": token, "action": "accepted", "csrfmiddlewaretoken": csrf}
    )
    assert accepted.status_code == 200
    assert partstats(organizer.stored(event)[1])[None][BOB] == "ACCEPTED"


def test_post_shows_503_and_keeps_nothing_when_the_server_does_not_keep_the_answer(
    client: Client, dav_proxy: DavProxy, organizer: Account, event: str
) -> None:
    dav_proxy.swallow_puts = True

    response = _post(client, _token(organizer, event), "accepted")

    assert response.status_code == 503
    assert partstats(organizer.stored(event)[1])[None][BOB] == "NEEDS-ACTION"
    assert Delivery.objects.filter(method="REPLY").count() == 0


# --- Errors, in two languages -----------------------------------------------------------------


LANGUAGES = [("en", "en-GB,en;q=0.8"), ("fr", "fr-FR,fr;q=0.9")]


@pytest.mark.parametrize(("language", "accept"), LANGUAGES)
def test_bad_token_gets_400_in_the_browser_language_when_token_is_garbage(
    client: Client, language: str, accept: str
) -> None:
    response = client.get("/rsvp/?token=garbage&action=accepted", HTTP_ACCEPT_LANGUAGE=accept)

    assert response.status_code == 400
    assert _strings(language)["rsvp.error.invalid_link.title"] in _text(response)
    assert f'<html lang="{language}">' in response.content.decode()


@pytest.mark.parametrize(("language", "accept"), LANGUAGES)
def test_tampered_token_gets_400_when_one_character_changed(
    client: Client, organizer: Account, event: str, language: str, accept: str
) -> None:
    token = _token(organizer, event)
    tampered = token[:-3] + ("A" if token[-3] != "A" else "B") + token[-2:]

    for method in (client.get, client.post):
        data = {"token": tampered, "action": "accepted"}
        response = method("/rsvp/", data, HTTP_ACCEPT_LANGUAGE=accept)
        assert response.status_code == 400
        assert _strings(language)["rsvp.error.invalid_link.title"] in _text(response)
    assert partstats(organizer.stored(event)[1])[None][BOB] == "NEEDS-ACTION"


@pytest.mark.parametrize(("language", "accept"), LANGUAGES)
def test_expired_token_gets_410_when_past_its_expiry(
    client: Client, organizer: Account, event: str, language: str, accept: str
) -> None:
    token = _token(organizer, event, expires_in=dt.timedelta(seconds=-1))

    response = _post(client, token, "accepted", HTTP_ACCEPT_LANGUAGE=accept)

    assert response.status_code == 410
    assert _strings(language)["rsvp.error.expired_link.title"] in _text(response)
    assert partstats(organizer.stored(event)[1])[None][BOB] == "NEEDS-ACTION"


@pytest.mark.parametrize(("language", "accept"), LANGUAGES)
def test_unknown_action_gets_400_when_action_is_not_an_answer(
    client: Client, organizer: Account, event: str, language: str, accept: str
) -> None:
    token = _token(organizer, event)

    for action in ("maybe", "ACCEPTED", "<script>alert(1)</script>", "x" * 5000):
        response = _post(client, token, action, HTTP_ACCEPT_LANGUAGE=accept)
        assert response.status_code == 400
        assert _strings(language)["rsvp.error.bad_action.title"] in _text(response)
        assert "<script>alert" not in response.content.decode()
    assert partstats(organizer.stored(event)[1])[None][BOB] == "NEEDS-ACTION"


@pytest.mark.parametrize(("language", "accept"), LANGUAGES)
def test_deleted_event_gets_404_when_organizer_removed_it(
    client: Client, organizer: Account, event: str, language: str, accept: str
) -> None:
    organizer.delete(event)

    for response in (
        client.get(rsvp_path(_token(organizer, event)), HTTP_ACCEPT_LANGUAGE=accept),
        _post(client, _token(organizer, event), "accepted", HTTP_ACCEPT_LANGUAGE=accept),
    ):
        assert response.status_code == 404
        assert _strings(language)["rsvp.error.not_found.title"] in _text(response)


@pytest.mark.parametrize(("language", "accept"), LANGUAGES)
def test_cancelled_event_gets_404_when_status_is_cancelled(
    client: Client, organizer: Account, language: str, accept: str
) -> None:
    uid = f"{uuid.uuid4().hex}@dav.example.org"
    organizer.event_create(
        event_body(
            uid=uid,
            organizer=organizer.email,
            attendees=[(BOB, "NEEDS-ACTION")],
            status="CANCELLED",
        )
    )

    response = _post(client, _token(organizer, uid), "accepted", HTTP_ACCEPT_LANGUAGE=accept)

    assert response.status_code == 404
    assert _strings(language)["rsvp.error.not_found.title"] in _text(response)


@pytest.mark.parametrize(("language", "accept"), LANGUAGES)
def test_event_over_gets_410_when_it_ended(
    client: Client, organizer: Account, language: str, accept: str
) -> None:
    uid = f"{uuid.uuid4().hex}@dav.example.org"
    organizer.event_create(
        event_body(
            uid=uid,
            organizer=organizer.email,
            attendees=[(BOB, "NEEDS-ACTION")],
            start=future(days=-3),
        )
    )
    etag = organizer.stored(uid)[0]

    for response in (
        client.get(rsvp_path(_token(organizer, uid)), HTTP_ACCEPT_LANGUAGE=accept),
        _post(client, _token(organizer, uid), "accepted", HTTP_ACCEPT_LANGUAGE=accept),
    ):
        assert response.status_code == 410
        assert _strings(language)["rsvp.error.over.title"] in _text(response)
    assert organizer.stored(uid)[0] == etag


@pytest.mark.parametrize(("language", "accept"), LANGUAGES)
def test_not_an_attendee_gets_403_when_organizer_removed_the_invitee(
    client: Client, organizer: Account, event: str, language: str, accept: str
) -> None:
    token = _token(organizer, event, attendee="carol@example.net")

    response = _post(client, token, "accepted", HTTP_ACCEPT_LANGUAGE=accept)

    assert response.status_code == 403
    assert _strings(language)["rsvp.error.not_attendee.title"] in _text(response)


@pytest.mark.parametrize(("language", "accept"), LANGUAGES)
def test_page_is_503_with_try_again_and_nothing_written_when_the_server_is_down(
    client: Client,
    dav_proxy: DavProxy,
    organizer: Account,
    event: str,
    language: str,
    accept: str,
) -> None:
    etag = organizer.stored(event)[0]
    dav_proxy.unavailable = True

    response = _post(client, _token(organizer, event), "accepted", HTTP_ACCEPT_LANGUAGE=accept)

    assert response.status_code == 503
    assert response["Retry-After"] == "60"
    strings = _strings(language)
    assert strings["rsvp.error.unavailable.title"] in _text(response)
    assert strings["rsvp.error.unavailable.retry"] in _text(response)
    assert organizer.stored(event)[0] == etag
    assert Delivery.objects.filter(method="REPLY").count() == 0


def test_unreachable_server_gets_503_when_nothing_listens(
    client: Client, organizer: Account, event: str, settings: Any, unused_port: int
) -> None:
    settings.CALDAV_URL = f"http://127.0.0.1:{unused_port}/"
    settings.CALDAV_CALENDAR_HOME_TEMPLATE = f"http://127.0.0.1:{unused_port}/{{email}}/"

    response = client.get(rsvp_path(_token(organizer, event)))

    assert response.status_code == 503


@pytest.mark.parametrize(("language", "accept"), LANGUAGES)
@pytest.mark.parametrize("method", ["get", "post"])
def test_page_says_answers_cannot_be_recorded_when_no_caldav_server_is_configured(
    client: Client, settings: Any, language: str, accept: str, method: str
) -> None:
    # Issue 13, finding 6: not "try again in a moment", which could never help.
    settings.CALDAV_URL = ""
    token = rsvp_token(uid="u@example.org", attendee=BOB, organizer="alice@example.org")

    if method == "get":
        response = client.get(rsvp_path(token), HTTP_ACCEPT_LANGUAGE=accept)
    else:
        response = _post(client, token, "accepted", HTTP_ACCEPT_LANGUAGE=accept)

    assert response.status_code == 503
    assert "Retry-After" not in response
    strings = _strings(language)
    assert strings["rsvp.error.not_configured.title"] in _text(response)
    assert strings["rsvp.error.unavailable.title"] not in _text(response)
    assert strings["rsvp.error.unavailable.retry"] not in _text(response)


def test_page_follows_the_account_language_when_the_browser_asks_another(
    client: Client, organizer: Account, event: str
) -> None:
    UserFactory(email=BOB, language="de", time_zone="Europe/Berlin")

    response = client.get(rsvp_path(_token(organizer, event)), HTTP_ACCEPT_LANGUAGE="fr")

    assert response.status_code == 200
    assert _strings("de")["rsvp.button.declined"] in _text(response)
    assert '<html lang="de">' in response.content.decode()


def test_request_gets_400_when_the_token_is_missing_oversized_or_binary(client: Client) -> None:
    assert client.get("/rsvp/").status_code == 400
    assert client.post("/rsvp/", {"action": "accepted"}).status_code == 400
    assert client.get("/rsvp/?token=" + "a" * 10_000 + "&action=accepted").status_code == 400
    assert client.post("/rsvp/", {"token": "\x00\u202e", "action": "accepted"}).status_code == 400


def test_queries_stay_constant_when_the_page_is_opened_and_answered(
    client: Client,
    organizer: Account,
    event: str,
    settings: Any,
    django_assert_max_num_queries: Any,
) -> None:
    token = _token(organizer, event)

    # the invitee's preferences (2) and whether a Google booking holds this UID (1)
    with django_assert_max_num_queries(3):
        assert client.get(rsvp_path(token)).status_code == 200
    # preferences (2), Google booking (1), booking (1), previous REPLY (1), then the pipeline's
    # REPLY, delivery, booking check and metric with their savepoints (11): a constant,
    # whatever the event.
    with django_assert_max_num_queries(16):
        assert _post(client, token, "accepted").status_code == 200
