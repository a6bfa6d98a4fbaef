"""invitations.emails.email_build: MIME structure, headers, kinds, languages and zones."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
from email.message import EmailMessage
from urllib.parse import parse_qs, urlsplit

import icalendar
import pytest
from django.test import override_settings

from calendars.ical import parse_itip
from invitations.emails import EmailNotRenderable, email_build
from invitations.tokens import rsvp_token_read
from tests.factories import UserFactory
from tests.link_tokens import readable_without_key

from .emails_samples import ATTENDEE, ORGANIZER, request

pytestmark = pytest.mark.django_db

DASH = "\N{EN DASH}"


def build(body: bytes | None = None, **kwargs) -> EmailMessage:
    params = {
        "body": body if body is not None else request(),
        "method": "REQUEST",
        "sender": f"mailto:{ORGANIZER}",
        "recipient": f"mailto:{ATTENDEE}",
        "message_id": "<delivery-1@convoke.test>",
        "language": "en",
        "time_zone": "Europe/Paris",
    }
    params.update(kwargs)
    mail = email_build(**params)
    raw = mail.message().as_bytes()
    return email.message_from_bytes(raw, policy=email.policy.default)


def parts(message: EmailMessage) -> tuple[str, str, EmailMessage]:
    plain = message.get_body(("plain",))
    html = message.get_body(("html",))
    calendar = next(
        p for p in message.iter_attachments() if p.get_content_type() == "text/calendar"
    )
    assert plain is not None and html is not None
    return plain.get_content(), html.get_content(), calendar


def test_mime_structure_follows_rfc_6047_when_itip_is_enabled() -> None:
    message = build()
    assert message.get_content_type() == "multipart/mixed"
    top = list(message.iter_parts())
    assert [p.get_content_type() for p in top] == ["multipart/alternative", "text/calendar"]
    assert [p.get_content_type() for p in top[0].iter_parts()] == ["text/plain", "text/html"]
    calendar = top[1]
    assert calendar.get_filename() == "invite.ics"
    assert calendar.get_param("method") == "REQUEST"
    assert calendar.get_content_charset() == "utf-8"
    assert len(calendar.get_all("Content-Type")) == 1
    body = calendar.get_content()
    assert "\nMETHOD:REQUEST" in body.replace("\r\n", "\n")
    assert (
        icalendar.Calendar.from_ical(body).walk("VEVENT")[0]["UID"] == "planning-2030@example.org"
    )


@override_settings(CALENDAR_ITIP_ENABLED=False)
def test_method_is_left_out_when_itip_is_disabled() -> None:
    _, _, calendar = parts(build())
    assert calendar.get_param("method") is None
    assert "METHOD" not in calendar.get_content()


@override_settings(CALENDAR_INVITATION_FROM_EMAIL="invitations@convoke.test")
def test_headers_carry_organizer_and_stable_message_id_when_built_twice() -> None:
    first, second = build(), build()
    for message in (first, second):
        assert message["Message-ID"] == "<delivery-1@convoke.test>"
        assert message["From"].addresses[0].display_name == "Olivia Organizer"
        assert message["From"].addresses[0].addr_spec == "invitations@convoke.test"
        assert message["Reply-To"].addresses[0].addr_spec == ORGANIZER
        assert message["To"].addresses[0].addr_spec == ATTENDEE
        assert message["Subject"] == "Invitation: Quarterly planning"


def test_message_id_gets_angle_brackets_when_given_bare() -> None:
    assert build(message_id="abc@convoke.test")["Message-ID"] == "<abc@convoke.test>"


@pytest.mark.parametrize(
    ("method", "sequence", "requested_before", "subject"),
    [
        ("REQUEST", 0, False, "Invitation: Quarterly planning"),
        ("REQUEST", 0, True, "Updated invitation: Quarterly planning"),
        ("REQUEST", 2, True, "Updated invitation: Quarterly planning"),
        # Issue 13, finding 2: an attendee added later gets the event's current SEQUENCE,
        # yet it is the first invitation Convoke sends them.
        ("REQUEST", 2, False, "Invitation: Quarterly planning"),
        ("CANCEL", 3, False, "Cancelled: Quarterly planning"),
    ],
)
def test_kind_follows_method_and_whether_a_request_was_sent_before(
    method: str, sequence: int, requested_before: bool, subject: str
) -> None:
    previous = request() if requested_before else None
    message = build(
        request(method=method, sequence=sequence), method=method, previous_body=previous
    )
    assert message["Subject"] == subject


def test_reply_names_attendee_and_answer_when_attendee_accepts() -> None:
    body = request(method="REPLY", attendee_partstat="ACCEPTED")
    message = build(
        body,
        method="REPLY",
        sender=f"mailto:{ATTENDEE}",
        recipient=f"mailto:{ORGANIZER}",
    )
    assert message["Subject"] == "Arthur Attendee accepted: Quarterly planning"
    assert message["Reply-To"].addresses[0].addr_spec == ATTENDEE
    plain, _html, calendar = parts(message)
    assert "Arthur Attendee accepted your invitation" in plain
    assert "/rsvp/" not in plain
    assert calendar.get_param("method") == "REPLY"


def test_rsvp_links_carry_a_token_for_the_recipient_when_method_is_request() -> None:
    plain, html, _ = parts(build())
    links = [line.split(": ", 1)[1] for line in plain.splitlines() if "/rsvp/?" in line]
    assert len(links) == 3
    actions = []
    for link in links:
        url = urlsplit(link)
        assert f"{url.scheme}://{url.netloc}" == "http://testserver"
        assert url.path == "/rsvp/"
        query = parse_qs(url.query)
        actions.append(query["action"][0])
        token = rsvp_token_read(query["token"][0])
        assert (token.uid, token.attendee, token.organizer) == (
            "planning-2030@example.org",
            ATTENDEE,
            ORGANIZER,
        )
        assert token.recurrence_id is None
        assert link.replace("&", "&amp;") in html
    assert actions == ["accepted", "tentative", "declined"]


def test_rsvp_links_reveal_no_address_when_read_without_the_key() -> None:
    # Issue 11, finding 8: URLs end up in proxy logs and browser history.
    plain, _html, _ = parts(build())
    links = [line.split(": ", 1)[1] for line in plain.splitlines() if "/rsvp/?" in line]
    assert links
    for link in links:
        seen = link.encode() + readable_without_key(parse_qs(urlsplit(link).query)["token"][0])
        for secret in (ATTENDEE, ORGANIZER, "planning-2030@example.org"):
            assert secret.encode() not in seen


def test_no_rsvp_links_when_cancelled() -> None:
    plain, html, _ = parts(build(request(method="CANCEL"), method="CANCEL"))
    assert "/rsvp/" not in plain and "/rsvp/" not in html


def test_time_is_shown_in_recipient_zone_with_original_zone_when_they_differ() -> None:
    plain, html, _ = parts(build(time_zone="America/New_York"))
    assert f"Tuesday 12 March 2030, 09:00 {DASH} 10:30 (America/New_York)" in plain
    assert f"Tuesday 12 March 2030, 14:00 {DASH} 15:30 (Europe/Brussels)" in plain
    assert f"09:00 {DASH} 10:30 (America/New_York)" in html


def test_original_zone_is_not_repeated_when_recipient_shares_it() -> None:
    plain, _, _ = parts(build(time_zone="Europe/Brussels"))
    assert plain.count("(Europe/Brussels)") == 1


def test_stored_preferences_of_recipient_win_when_not_given(django_assert_num_queries) -> None:
    UserFactory(email=ATTENDEE, language="de", time_zone="Asia/Tokyo")
    UserFactory(email=ORGANIZER, language="fr", time_zone="Europe/Paris")
    with django_assert_num_queries(1):
        message = build(language=None, time_zone=None)
    plain, _, _ = parts(message)
    assert message["Subject"] == "Einladung: Quarterly planning"
    assert f"Dienstag, 12. März 2030, 22:00 {DASH} 23:30 (Asia/Tokyo)" in plain


def test_organizer_preferences_are_used_when_recipient_is_unknown() -> None:
    UserFactory(email=ORGANIZER.upper(), language="nl", time_zone="Europe/Amsterdam")
    message = build(language=None, time_zone=None)
    plain, _, _ = parts(message)
    assert message["Subject"] == "Uitnodiging: Quarterly planning"
    assert f"dinsdag 12 maart 2030, 14:00 {DASH} 15:30 (Europe/Amsterdam)" in plain


def test_event_zone_and_english_are_used_when_nobody_is_known() -> None:
    message = build(language=None, time_zone=None)
    plain, _, _ = parts(message)
    assert message["Subject"] == "Invitation: Quarterly planning"
    assert f"Tuesday 12 March 2030, 14:00 {DASH} 15:30 (Europe/Brussels)" in plain


def test_no_query_when_language_and_zone_are_given(django_assert_num_queries) -> None:
    with django_assert_num_queries(0):
        build()


def test_not_renderable_naming_the_problem_when_body_is_not_icalendar() -> None:
    with pytest.raises(EmailNotRenderable, match="cannot be read: not iCalendar data"):
        build(b"not a calendar")


def test_value_error_when_method_is_not_deliverable() -> None:
    with pytest.raises(ValueError, match="REQUEST, REPLY or CANCEL"):
        build(method="PUBLISH")


def test_attachment_reparses_to_the_same_event_when_built() -> None:
    body = request()
    _, _, calendar = parts(build(body))
    assert parse_itip(calendar.get_content().encode()).events == parse_itip(body).events


def _tokens(plain: str) -> list:
    links = [line.split(": ", 1)[1] for line in plain.splitlines() if "/rsvp/?" in line]
    return [rsvp_token_read(parse_qs(urlsplit(link).query)["token"][0]) for link in links]


def test_token_names_the_occurrence_when_request_is_for_one_occurrence() -> None:
    body = request(sequence=1, extra="RECURRENCE-ID;TZID=Europe/Brussels:20300312T140000")
    before = request(location="Room 1", extra="RECURRENCE-ID;TZID=Europe/Brussels:20300312T140000")
    message = build(body, previous_body=before)
    plain, _, _ = parts(message)
    assert message["Subject"] == "Updated invitation: Quarterly planning"
    assert "This change concerns the occurrence on Tuesday 12 March 2030" in plain
    assert {t.recurrence_id for t in _tokens(plain)} == {"20300312T130000Z"}


def test_token_expires_after_the_last_occurrence_plus_grace() -> None:
    body = request(extra="RRULE:FREQ=WEEKLY;COUNT=3")
    plain, _, _ = parts(build(body))
    # Third Tuesday: 26 March 2030, 15:30 in Brussels (14:30 UTC), plus 7 days of grace.
    expected = dt.datetime(2030, 4, 2, 14, 30, tzinfo=dt.UTC)
    assert {t.expires_at for t in _tokens(plain)} == {expected}


def test_update_lists_what_changed_when_previous_version_is_known() -> None:
    previous = request(
        start="DTSTART;TZID=Europe/Brussels:20300311T100000",
        end="DTEND;TZID=Europe/Brussels:20300311T110000",
        location="Room 1",
        summary="Planning",
    )
    plain, html, _ = parts(build(request(sequence=1), previous_body=previous))
    assert "What changed" in plain and "What changed" in html
    assert (
        f"The time changed (it was Monday 11 March 2030, 10:00 {DASH} 11:00 (Europe/Paris))."
        in plain
    )
    assert "The place changed (it was Room 1)." in plain
    assert "The title changed (it was Planning)." in plain


def test_request_without_an_earlier_one_is_an_invitation_without_change_list() -> None:
    message = build(request(sequence=3))
    plain, _, _ = parts(message)
    assert message["Subject"] == "Invitation: Quarterly planning"
    assert "What changed" not in plain


def test_cancellation_of_one_occurrence_says_the_series_stands() -> None:
    body = request(method="CANCEL", extra="RECURRENCE-ID;TZID=Europe/Brussels:20300312T140000")
    message = build(body, method="CANCEL")
    plain, _, _ = parts(message)
    assert message["Subject"] == ("Cancelled: Quarterly planning (Tuesday 12 March 2030, 14:00)")
    assert "The rest of the series stands." in plain


def test_one_day_all_day_event_shows_one_date() -> None:
    body = request(start="DTSTART;VALUE=DATE:20300704", end="DTEND;VALUE=DATE:20300705")
    plain, _, _ = parts(build(body, time_zone="Pacific/Auckland"))
    assert "When: Thursday 4 July 2030 (all day)" in plain
    assert "5 July" not in plain


def test_floating_time_is_shown_as_written_and_called_local_time() -> None:
    body = request(start="DTSTART:20300312T090000", end="DTEND:20300312T100000")
    plain, _, _ = parts(build(body, time_zone="Asia/Tokyo"))
    assert f"When: Tuesday 12 March 2030, 09:00 {DASH} 10:00 (local time)" in plain


def test_reply_for_one_occurrence_names_it() -> None:
    body = request(
        method="REPLY",
        attendee_partstat="DECLINED",
        extra="RECURRENCE-ID;TZID=Europe/Brussels:20300312T140000",
    )
    message = build(body, method="REPLY", sender=ATTENDEE, recipient=ORGANIZER, language="fr")
    plain, _, _ = parts(message)
    assert message["Subject"] == "Arthur Attendee a refusé : Quarterly planning"
    assert (
        "Cette réponse concerne l'occurrence du mardi 12 mars 2030, 14:00 (Europe/Paris)." in plain
    )
