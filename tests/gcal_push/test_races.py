"""Decisions racing changes made in Google (issue 16, findings 1, 2 and 4).

The owner deletes the event, or the bookee answers it, in Google; the notification has not
reached Convoke yet (held by the emitter) when the subscriber decides through the API, a
decision link or the console. Google's truth wins: a deleted event is never revived, a
decision that lost the race answers 409 with the booking's real state, and nothing is written
to Google for nothing. Everything runs through the HTTP interface, the real broker and the
fake Google server; the queued tasks run in the test thread (deterministic).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from calendars.booking_tokens import decision_token_make
from calendars.models import Booking, BookingStatus, PublishState, User
from calendars.services import booking_request
from gcal_push.services import calendars_reconcile, channel_create
from tests.factories import UserFactory
from tests.fakes.google_push import ClientTransport, GooglePushEmitter
from tests.fixtures import (
    PushFakeGoogleCalendar,
    TaskQueue,
    Watched,
    owner_create,
    watched_create,
)
from tests.gcal_push.test_sync import BOOKEE, WRITES, slot

pytestmark = pytest.mark.django_db(transaction=True)


@dataclasses.dataclass
class Scene:
    google: PushFakeGoogleCalendar
    queue: TaskQueue
    emitter: GooglePushEmitter
    watched: Watched
    booking: Booking

    @property
    def event_id(self) -> str:
        assert self.booking.google_event_id
        return self.booking.google_event_id

    def event(self) -> dict[str, Any]:
        return self.google.event(self.watched.remote_id, self.event_id) or {}

    def writes(self, since: int = 0) -> list[tuple[str, int | None]]:
        """(operation, status) of every write to Google since ``since`` requests."""
        return [
            (r.operation, r.status) for r in self.google.requests[since:] if r.operation in WRITES
        ]

    def settle(self) -> list[str]:
        ran = self.queue.drain(self.emitter)
        self.booking.refresh_from_db()
        return ran


@pytest.fixture
def scene(google: PushFakeGoogleCalendar, task_queue: TaskQueue) -> Scene:
    """A requested booking whose tentative event is in Google; notifications are held."""
    owner = owner_create(google)
    watched = watched_create(google, owner)[0]
    emitter = GooglePushEmitter(google, ClientTransport(), immediate=False).start()
    channel_create(calendar_id=watched.calendar.pk)
    booking = booking_request(
        schedule_id=watched.schedule.pk,
        attendee_name="Bob Bookee",
        attendee_email=BOOKEE,
        start=slot(),
    )
    scene = Scene(google, task_queue, emitter, watched, booking)
    scene.settle()
    assert (booking.status, booking.publish_state) == ("requested", PublishState.PUBLISHED)
    assert booking.google_etag == scene.event()["etag"]  # the ETag our insert was answered
    yield scene
    emitter.stop()


# --- How the subscriber decides -------------------------------------------------------------


def _api(scene: Scene, action: str) -> tuple[int, str]:
    client = Client()
    client.force_login(scene.watched.owner.user)
    response = client.post(f"/api/v1.0/bookings/{scene.booking.pk}/{action}/")
    body = response.json()
    return response.status_code, body.get("status", "") if response.status_code == 409 else ""


def _link(scene: Scene, action: str) -> tuple[int, str]:
    token = decision_token_make(booking_id=scene.booking.pk, ical_uid=scene.booking.ical_uid)
    response = Client().post("/bookings/decide/", {"token": token, "action": action})
    page = response.content.decode()
    state = next((s for s in ("cancelled", "declined") if f"was {s}" in page), "")
    return response.status_code, state


def _admin(scene: Scene, action: str) -> tuple[int, str]:
    operator: User = UserFactory(is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(operator)
    response = client.post(
        reverse("admin:calendars_booking_changelist"),
        {"action": action, "_selected_action": [scene.booking.pk]},
        follow=True,
    )
    page = response.content.decode()
    refused = f"Not possible: #{scene.booking.pk} is "
    if refused in page:
        return 409, page.split(refused, 1)[1].split(".", 1)[0]
    return response.status_code, ""


CHANNELS: dict[str, Callable[[Scene, str], tuple[int, str]]] = {
    "api": _api,
    "link": _link,
    "admin": _admin,
}


@pytest.mark.parametrize("channel", sorted(CHANNELS))
@pytest.mark.parametrize("action", ["confirm", "deny"])
def test_decision_after_an_unseen_deletion_answers_409_cancelled_and_revives_nothing_when_raced(
    scene: Scene, channel: str, action: str
) -> None:
    requests = len(scene.google.requests)
    mails = len(scene.google.outbox)
    # The owner deletes the event in Google; its notification is still on its way.
    scene.google.event_delete_as_owner(scene.watched.remote_id, scene.event_id)

    status, state = CHANNELS[channel](scene, action)

    assert (status, state) == (409, "cancelled")
    scene.settle()
    assert scene.booking.status == BookingStatus.CANCELLED
    assert scene.booking.publish_state == PublishState.PUBLISHED
    assert scene.event()["status"] == "cancelled"
    assert scene.google.restored == []
    # One read before the decision; nothing written: no patch, no delete of a deleted event.
    assert [r.operation for r in scene.google.requests[requests:]].count("events.get") == 1
    assert scene.writes(requests) == []
    assert scene.google.outbox[mails:] == []  # the bookee got no new invitation
    assert [(t.from_status, t.to_status, t.source) for t in scene.booking.transitions.all()][
        1:
    ] == [("requested", "cancelled", "google_push")]


def test_confirm_raced_by_a_deletion_before_the_publish_keeps_the_event_deleted_when_412(
    scene: Scene,
) -> None:
    assert _api(scene, "confirm") == (200, "")  # Google still showed the event then
    requests = len(scene.google.requests)
    seen = scene.event()["etag"]
    scene.google.event_delete_as_owner(scene.watched.remote_id, scene.event_id)

    scene.settle()

    # The patch carried the ETag Convoke knew: Google refused it (412) instead of restoring
    # the event; the event read back is deleted, so the booking is cancelled.
    [patch] = scene.google.requests_for("events.patch")
    assert (patch.status, patch.headers.get("if-match")) == (412, seen)
    assert scene.writes(requests) == [("events.patch", 412)]
    assert scene.google.restored == []
    assert scene.event()["status"] == "cancelled"
    assert (scene.booking.status, scene.booking.publish_state) == (
        BookingStatus.CANCELLED,
        PublishState.PUBLISHED,
    )
    assert [(t.from_status, t.to_status, t.source) for t in scene.booking.transitions.all()] == [
        ("", "requested", "api"),
        ("requested", "booked", "api"),
        ("booked", "cancelled", "google_push"),
    ]


def test_deny_raced_by_a_deletion_before_the_publish_stays_declined_when_410(
    scene: Scene,
) -> None:
    assert _api(scene, "deny") == (200, "")
    requests = len(scene.google.requests)
    scene.google.event_delete_as_owner(scene.watched.remote_id, scene.event_id)

    scene.settle()

    # The decision came first: the booking stays declined; Google's 410 ends the publish.
    assert scene.writes(requests) == [("events.delete", 410)]
    assert (scene.booking.status, scene.booking.publish_state) == (
        BookingStatus.DECLINED,
        PublishState.PUBLISHED,
    )
    assert scene.booking.google_event_status == "cancelled"


def test_bookee_answer_before_the_publish_is_applied_then_the_patch_repeated_when_412(
    scene: Scene,
) -> None:
    assert _api(scene, "confirm") == (200, "")
    requests = len(scene.google.requests)
    scene.google.attendee_respond(
        scene.watched.remote_id, scene.event_id, email=BOOKEE, response_status="accepted"
    )

    scene.settle()

    assert scene.writes(requests) == [("events.patch", 412), ("events.patch", 200)]
    first, second = scene.google.requests_for("events.patch")
    assert first.headers["if-match"] != second.headers["if-match"]
    assert (scene.booking.status, scene.booking.attendee_partstat) == ("booked", "ACCEPTED")
    event = scene.event()
    assert event["status"] == "confirmed"
    assert {a["email"]: a["responseStatus"] for a in event["attendees"]}[BOOKEE] == "accepted"
    assert scene.booking.google_etag == event["etag"]


def test_decline_before_a_deletion_declines_without_a_call_when_both_arrive_late(
    scene: Scene,
) -> None:
    # The bookee declines, then the owner deletes the event; both notifications are lost.
    # The deleted event still shows the bookee's answer: the decline came first.
    requests = len(scene.google.requests)
    scene.google.attendee_respond(
        scene.watched.remote_id, scene.event_id, email=BOOKEE, response_status="declined"
    )
    scene.google.event_delete_as_owner(scene.watched.remote_id, scene.event_id)
    assert len(scene.emitter.flush(drop=len(scene.emitter.held))) == 0
    assert calendars_reconcile() == 1
    scene.settle()

    assert (scene.booking.status, scene.booking.attendee_partstat) == ("declined", "DECLINED")
    assert scene.booking.publish_state == PublishState.PUBLISHED
    assert scene.writes(requests) == []


def test_get_of_a_decision_link_reads_nothing_from_google_when_opened(scene: Scene) -> None:
    requests = len(scene.google.requests)
    token = decision_token_make(booking_id=scene.booking.pk, ical_uid=scene.booking.ical_uid)
    response = Client().get("/bookings/decide/", {"token": token, "action": "confirm"})
    assert response.status_code == 200
    assert scene.google.requests[requests:] == []
