"""Hostile calendar data cannot inject headers or markup (issue 4, item 6 and tests)."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
from email.message import EmailMessage
from html.parser import HTMLParser

import icalendar
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from calendars.ical import parse_itip
from invitations.emails import DESCRIPTION_MAX_CHARS, email_build

from .emails_samples import ATTENDEE, ORGANIZER, request

pytestmark = pytest.mark.django_db


def build(body: bytes, **kwargs) -> tuple[EmailMessage, bytes]:
    params = {
        "body": body,
        "method": "REQUEST",
        "sender": ORGANIZER,
        "recipient": ATTENDEE,
        "message_id": "<injection@convoke.test>",
        "language": "en",
        "time_zone": "Europe/Paris",
    }
    params.update(kwargs)
    raw = email_build(**params).message().as_bytes()
    return email.message_from_bytes(raw, policy=email.policy.default), raw


def headers_block(raw: bytes) -> str:
    return raw.split(b"\n\n", 1)[0].decode("ascii")


def bodies(message: EmailMessage) -> tuple[str, str]:
    return (
        message.get_body(("plain",)).get_content(),
        message.get_body(("html",)).get_content(),
    )


TEMPLATE_TAGS = {
    "html", "head", "meta", "title", "body", "div", "table", "tbody", "tr", "td", "th",
    "p", "h1", "span", "ul", "li", "a", "br", "em", "strong",
}  # fmt: skip


def _tags(html: str) -> set[str]:
    class Collector(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.tags: set[str] = set()

        def handle_starttag(self, tag: str, attrs: list) -> None:
            self.tags.add(tag)

    collector = Collector()
    collector.feed(html)
    return collector.tags


def test_summary_with_cr_lf_cannot_add_a_header() -> None:
    body = request(summary="Lunch\\nBcc: victim@evil.example\\NX-Injected: yes")
    assert "\n" in parse_itip(body).primary.summary  # the value really holds line breaks
    message, raw = build(body)
    assert message["Subject"] == "Invitation: Lunch Bcc: victim@evil.example X-Injected: yes"
    assert message["Bcc"] is None and message["X-Injected"] is None
    names = [line.split(":")[0].lower() for line in headers_block(raw).splitlines()]
    assert "bcc" not in names and "x-injected" not in names


def test_organizer_name_with_line_breaks_cannot_add_a_header() -> None:
    # RFC 6868: ^n in a parameter value is a line break.
    body = request().replace(
        b"ORGANIZER;CN=Olivia Organizer:",
        b'ORGANIZER;CN="Olivia^nBcc: victim@evil.example":',
    )
    message, _raw = build(body)
    assert message["Bcc"] is None
    assert message["From"].addresses[0].display_name == "Olivia Bcc: victim@evil.example"
    assert len(message["From"].addresses) == 1


def test_organizer_address_with_junk_falls_back_to_the_sender() -> None:
    body = request().replace(
        b"ORGANIZER;CN=Olivia Organizer:mailto:organizer@example.org",
        b"ORGANIZER;CN=Olivia Organizer:mailto:a@b.example,victim@evil.example",
    )
    message, _ = build(body)
    assert [a.addr_spec for a in message["Reply-To"].addresses] == [ORGANIZER]


@pytest.mark.parametrize("value", ["a@b.example\r\nBcc: c@d.example", "not an address", ""])
def test_recipient_with_line_breaks_or_no_address_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match="recipient"):
        build(request(), recipient=value)


def test_message_id_with_line_breaks_stays_one_header() -> None:
    message, _raw = build(request(), message_id="<abc@x>\r\nBcc: victim@evil.example")
    assert message["Bcc"] is None
    assert message["Message-ID"] == "<abc@x>"


def test_html_and_script_in_description_are_escaped_in_html() -> None:
    hostile = '<script>alert(1)</script><img src=x onerror="alert(2)"><a href="javascript:x">y</a>'
    body = request(description=hostile, location='<b onmouseover="alert(3)">Room</b>')
    plain, html = bodies(build(body)[0])
    assert "<script" not in html.lower()
    assert "<img" not in html.lower()
    assert '<a href="javascript' not in html.lower()
    assert "&lt;a href=" in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;b onmouseover=" in html
    assert hostile in plain  # the plain text says the same, as text


def test_url_that_is_not_http_is_not_linked() -> None:
    body = request(extra="URL:javascript:alert(1)\nCONFERENCE;VALUE=URI:data:text/html,x")
    plain, html = bodies(build(body)[0])
    assert "javascript:" not in html and "javascript:" not in plain
    assert "data:text" not in html


def test_huge_description_is_shortened_in_body_and_kept_in_attachment() -> None:
    text = "0123456789" * 10_240  # 100 KiB
    message, raw = build(request(description=text))
    plain, _html = bodies(message)
    assert len(plain) < DESCRIPTION_MAX_CHARS + 5_000
    assert "The description is shortened" in plain
    calendar = next(p for p in message.iter_attachments())
    assert parse_itip(calendar.get_content().encode()).primary.description == text
    assert len(raw) < 250_000


def test_right_to_left_and_emoji_text_survive_in_every_part() -> None:
    summary = "اجتماع الفريق 📅 פגישה"
    message, _ = build(request(summary=summary, location="مكتب 🏢"))
    plain, html = bodies(message)
    assert message["Subject"] == f"Invitation: {summary}"
    assert summary in plain and summary in html
    assert 'dir="auto"' in html
    calendar = next(p for p in message.iter_attachments())
    assert parse_itip(calendar.get_content().encode()).primary.summary == summary


def test_subject_is_capped_when_summary_is_very_long() -> None:
    message, _ = build(request(summary="x" * 5000))
    subject = " ".join(message["Subject"].split())
    assert len(subject) <= 200 and subject.endswith("…")


def test_html_has_no_script_and_no_remote_resources() -> None:
    _, html = bodies(build(request())[0])
    assert _tags(html) <= TEMPLATE_TAGS
    lowered = html.lower()
    assert "<script" not in lowered and "<img" not in lowered and "<link" not in lowered
    assert "src=" not in lowered and "@import" not in lowered


# Any text iCalendar can carry: everything but control characters (RFC 5545 3.3.11), plus
# line breaks and tabs, which TEXT escapes.
text_values = st.text(
    alphabet=st.characters(
        codec="utf-8", exclude_categories=["Cs", "Cc"], include_characters="\n\r\t"
    ),
    max_size=300,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(summary=text_values, description=text_values, name=text_values, location=text_values)
def test_any_text_in_the_event_gives_a_safe_email(
    summary: str, description: str, name: str, location: str
) -> None:
    calendar = icalendar.Calendar()
    calendar.add("PRODID", "-//tests//EN")
    calendar.add("VERSION", "2.0")
    calendar.add("METHOD", "REQUEST")
    event = icalendar.Event()
    event.add("UID", "property@example.org")
    event.add("DTSTAMP", dt.datetime(2030, 1, 1, tzinfo=dt.UTC))
    event.add("DTSTART", dt.datetime(2030, 3, 12, 13, tzinfo=dt.UTC))
    event.add("SUMMARY", summary)
    event.add("DESCRIPTION", description)
    event.add("LOCATION", location)
    organizer = icalendar.vCalAddress(f"mailto:{ORGANIZER}")
    organizer.params["CN"] = icalendar.vText(name)
    event.add("ORGANIZER", organizer)
    event.add("ATTENDEE", icalendar.vCalAddress(f"mailto:{ATTENDEE}"))
    calendar.add_component(event)
    message, raw = build(calendar.to_ical())
    head = headers_block(raw)
    names = [line.split(":")[0].lower() for line in head.splitlines() if line[:1] not in " \t"]
    assert sorted(names) == sorted(
        [
            "mime-version",
            "content-type",
            "subject",
            "from",
            "to",
            "reply-to",
            "date",
            "message-id",
        ]
    )
    assert "\n" not in message["Subject"] and "\r" not in message["Subject"]
    assert len(message["From"].addresses) == 1
    _plain, html = bodies(message)
    assert _tags(html) <= TEMPLATE_TAGS  # the event's text added no element
