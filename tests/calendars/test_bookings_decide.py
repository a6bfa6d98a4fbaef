"""The subscriber's Confirm / Deny links: GET shows, POST decides, tokens are signed and expire."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core import mail, signing
from django.test import Client
from django.utils import timezone

from calendars import services
from calendars.booking_tokens import decision_token_make
from calendars.models import Booking, BookingStatus, Schedule, TransitionSource
from tests.calendars.test_bookings_google import request_booking, transitions
from tests.factories import BookingFactory
from tests.fakes.google_calendar import FakeGoogleCalendar
from tests.fixtures import Commit
from tests.link_tokens import readable_without_key

pytestmark = pytest.mark.django_db

DECIDE = "/bookings/decide/"


@pytest.fixture
def booking(google_schedule: Schedule, commit: Commit, settings) -> Booking:  # type: ignore[no-untyped-def]
    settings.GOOGLE_INVITE_ENABLED = True
    return request_booking(commit, google_schedule)


def links_from_email() -> dict[str, str]:
    [message] = [m for m in mail.outbox if "/bookings/decide/" in m.body]
    urls = re.findall(r"https?://\S+/bookings/decide/\?\S+", message.body)
    return {parse_qs(urlsplit(u).query)["action"][0]: u for u in urls}


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def test_get_shows_booking_and_changes_nothing_when_link_is_opened(
    booking: Booking, google_fake: FakeGoogleCalendar
) -> None:
    calls = len(google_fake.requests)
    links = links_from_email()
    assert set(links) == {"confirm", "deny"}
    for _ in range(3):  # mail scanners open links, sometimes several times
        response = Client().get(path_of(links["confirm"]))
        assert response.status_code == 200
    page = response.content.decode()
    assert "Bob Bookee" in page and "bookee@example.net" in page
    assert 'method="post"' in page and "Confirm" in page
    booking.refresh_from_db()
    assert booking.status == BookingStatus.REQUESTED
    assert len(transitions(booking)) == 1
    assert len(google_fake.requests) == calls


def test_post_confirms_and_patches_google_when_button_is_pressed(
    booking: Booking, google_fake: FakeGoogleCalendar, commit: Commit
) -> None:
    client = Client(enforce_csrf_checks=True)
    url = path_of(links_from_email()["confirm"])
    page = client.get(url).content.decode()
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    token = re.search(r'name="token" value="([^"]+)"', page)
    assert csrf and token
    with commit():
        response = client.post(
            url,
            {"csrfmiddlewaretoken": csrf.group(1), "token": token.group(1), "action": "confirm"},
        )
    assert response.status_code == 200
    assert "Booking confirmed" in response.content.decode()
    booking.refresh_from_db()
    assert booking.status == BookingStatus.BOOKED
    assert transitions(booking)[-1] == ("requested", "booked", "email_link")
    assert google_fake.api_calls()[-1] == ("events.patch", "all", "confirmed")


def test_post_without_csrf_token_is_refused_when_enforced(booking: Booking) -> None:
    url = path_of(links_from_email()["deny"])
    response = Client(enforce_csrf_checks=True).post(url, {"action": "deny"})
    assert response.status_code == 403
    booking.refresh_from_db()
    assert booking.status == BookingStatus.REQUESTED


def test_post_denies_and_deletes_event_when_deny_link_is_used(
    booking: Booking, google_fake: FakeGoogleCalendar, commit: Commit
) -> None:
    url = path_of(links_from_email()["deny"])
    with commit():
        response = Client().post(url)
    assert response.status_code == 200 and "Booking declined" in response.content.decode()
    booking.refresh_from_db()
    assert booking.status == BookingStatus.DECLINED
    assert google_fake.api_calls()[-1] == ("events.delete", "all", None)


def test_confirming_a_declined_booking_gets_409_when_it_is_too_late(
    booking: Booking, commit: Commit
) -> None:
    links = links_from_email()
    with commit():
        services.booking_deny(booking_id=booking.pk, source=TransitionSource.API)
    get = Client().get(path_of(links["confirm"]))
    assert get.status_code == 200
    assert "This booking was declined." in get.content.decode()
    assert 'method="post"' not in get.content.decode()
    response = Client().post(path_of(links["confirm"]))
    assert response.status_code == 409
    assert "This booking was declined. Nothing was changed." in response.content.decode()
    booking.refresh_from_db()
    assert booking.status == BookingStatus.DECLINED


def test_pressing_confirm_twice_confirms_once_when_repeated(
    booking: Booking, google_fake: FakeGoogleCalendar, commit: Commit
) -> None:
    url = path_of(links_from_email()["confirm"])
    for _ in range(2):
        with commit():
            assert Client().post(url).status_code == 200
    assert len(google_fake.requests_for("events.patch")) == 1
    booking.refresh_from_db()
    assert len(transitions(booking)) == 2


@pytest.mark.parametrize(
    "query",
    [
        "action=confirm",
        "action=confirm&token=",
        "action=confirm&token=garbage",
        "action=confirm&token=" + "A" * 5000,
    ],
)
def test_bad_token_gets_400_when_link_is_broken(booking: Booking, query: str) -> None:
    response = Client().get(f"{DECIDE}?{query}")
    assert response.status_code == 400
    assert "This link is not valid" in response.content.decode()


def test_token_signed_for_another_purpose_gets_400_when_reused(booking: Booking) -> None:
    forged = signing.dumps({"b": booking.pk, "u": booking.ical_uid}, salt="convoke.rsvp")
    assert Client().post(f"{DECIDE}?action=confirm&token={forged}").status_code == 400
    tampered = decision_token_make(booking_id=booking.pk, ical_uid=booking.ical_uid)[:-2] + "xx"
    assert Client().post(f"{DECIDE}?action=confirm&token={tampered}").status_code == 400
    booking.refresh_from_db()
    assert booking.status == BookingStatus.REQUESTED


def test_expired_token_gets_410_like_an_expired_rsvp_link_when_too_old(
    booking: Booking, settings: Any
) -> None:
    settings.BOOKING_DECISION_TOKEN_MAX_AGE_DAYS = 0  # expires as it is made
    token = decision_token_make(booking_id=booking.pk, ical_uid=booking.ical_uid)
    response = Client().post(f"{DECIDE}?action=confirm&token={token}")
    assert response.status_code == 410
    assert "This link has expired" in response.content.decode()
    booking.refresh_from_db()
    assert booking.status == BookingStatus.REQUESTED


def test_unknown_action_gets_400_when_link_is_edited(booking: Booking) -> None:
    token = decision_token_make(booking_id=booking.pk, ical_uid=booking.ical_uid)
    response = Client().get(f"{DECIDE}?action=delete&token={token}")
    assert response.status_code == 400 and "Unknown action" in response.content.decode()


def test_deleted_booking_gets_404_when_link_is_opened(db: None) -> None:
    token = decision_token_make(booking_id=987654, ical_uid="gone@convoke")
    assert Client().get(f"{DECIDE}?action=confirm&token={token}").status_code == 404


def test_past_booking_gets_410_when_link_is_opened(db: None) -> None:
    past = BookingFactory(start=timezone.now() - dt.timedelta(days=2))
    token = decision_token_make(booking_id=past.pk, ical_uid=past.ical_uid)
    response = Client().post(f"{DECIDE}?action=confirm&token={token}")
    assert response.status_code == 410
    past.refresh_from_db()
    assert past.status == BookingStatus.REQUESTED


def test_page_speaks_the_subscribers_language_when_not_english(booking: Booking) -> None:
    booking.organizer.language = "fr"
    booking.organizer.save()
    response = Client().get(path_of(links_from_email()["deny"]))
    page = response.content.decode()
    assert "Refuser ce rendez-vous ?" in page and 'lang="fr"' in page


def test_hostile_names_are_escaped_when_shown(db: None) -> None:
    hostile = BookingFactory(
        attendee_name='<script>alert("x")</script>', description="<img src=x onerror=1>"
    )
    token = decision_token_make(booking_id=hostile.pk, ical_uid=hostile.ical_uid)
    page = Client().get(f"{DECIDE}?action=confirm&token={token}").content.decode()
    assert "<script>alert" not in page and "&lt;script&gt;" in page
    assert "<img src=x" not in page


def test_subscriber_email_is_translated_and_links_work_when_language_is_german(
    google_schedule: Schedule,
    commit: Commit,
    settings,  # type: ignore[no-untyped-def]
) -> None:
    settings.GOOGLE_INVITE_ENABLED = True
    google_schedule.owner.language = "de"
    google_schedule.owner.save()
    request_booking(commit, google_schedule)
    [message] = mail.outbox
    assert message.subject == "Neue Buchungsanfrage von Bob Bookee"
    html = message.alternatives[0].content
    assert "Bestätigen" in html and "Ablehnen" in html
    assert Client().get(path_of(links_from_email()["confirm"])).status_code == 200


def test_link_sent_before_tokens_were_sealed_still_decides_until_it_is_too_old(
    booking: Booking, settings: Any
) -> None:
    legacy = signing.dumps(
        {"b": booking.pk, "u": booking.ical_uid}, salt="convoke.bookings.decision", compress=True
    )
    page = Client().get(f"{DECIDE}?action=confirm&token={legacy}")
    assert page.status_code == 200
    settings.BOOKING_DECISION_TOKEN_MAX_AGE_DAYS = 0
    assert Client().get(f"{DECIDE}?action=confirm&token={legacy}").status_code == 410


def test_token_names_no_booking_and_no_uid_when_read_without_the_key(booking: Booking) -> None:
    token = decision_token_make(booking_id=booking.pk, ical_uid=booking.ical_uid)
    assert booking.ical_uid not in token
    assert booking.ical_uid.encode() not in readable_without_key(token)
