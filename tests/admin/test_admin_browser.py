"""The console in a real browser: Debian's Chromium driven by Playwright against a live server.

An operator logs in, reads the index panel, filters the deliveries by dead, retries one (it
goes out to the SMTP sink), previews an email and opens a booking's timeline. Screenshots
are saved as ``artifacts/screenshots/admin-*.png`` for a person to look at.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from calendars.models import BookingStatus, BookingTransition, TransitionSource
from invitations.models import Delivery, DeliveryStatus
from tests.admin.support import delivery_create, message_create
from tests.browser import CHROMIUM_ARGS, SCREENSHOTS, chromium_or_skip
from tests.factories import BookingFactory, UserFactory
from tests.fakes.smtp import SmtpSink

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "operator correct horse battery"


def test_operator_filters_dead_deliveries_retries_one_and_reads_a_timeline_in_chromium(
    live_server: Any, smtp_sink: SmtpSink
) -> None:
    chromium = chromium_or_skip()
    from playwright.sync_api import sync_playwright

    operator = UserFactory(
        email="console.operator@example.org",
        is_staff=True,
        is_superuser=True,
        time_zone="Europe/Paris",
        password=PASSWORD,
    )
    first_dead = delivery_create(
        status=DeliveryStatus.DEAD, attempts=10, last_error="SMTP server answered 550 to DATA"
    )
    second_dead = delivery_create(status=DeliveryStatus.DEAD, attempts=10, last_error="gave up")
    pending = delivery_create(status=DeliveryStatus.PENDING)
    booking = BookingFactory(status=BookingStatus.BOOKED, title="Design review")
    at = booking.created_at
    BookingTransition.objects.create(
        booking=booking, from_status="", to_status="requested", source="api", at=at
    )
    BookingTransition.objects.create(
        booking=booking,
        from_status="requested",
        to_status="booked",
        source=TransitionSource.EMAIL_LINK,
        at=at + dt.timedelta(minutes=3),
    )
    reply = message_create(uid=booking.ical_uid, method="REPLY")
    delivery_create(message=reply, status=DeliveryStatus.SENT, attempts=1)
    base = live_server.url

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 900})
            page = context.new_page()
            page.goto(f"{base}/admin/")
            page.fill("#id_username", operator.email)
            page.fill("#id_password", PASSWORD)
            page.click("input[type=submit]")
            page.wait_for_load_state("load")
            assert page.locator("#cv-panel-title").inner_text() == "What needs attention"
            assert page.locator("#cv-deliveries-dead").inner_text() == "2"
            page.screenshot(path=str(SCREENSHOTS / "admin-index.png"), full_page=True)

            # Filter the deliveries by dead, from the list's own filter.
            page.goto(f"{base}/admin/invitations/delivery/")
            page.locator("#changelist-filter a", has_text="Dead").first.click()
            page.wait_for_load_state("load")
            assert "status__exact=dead" in page.url
            rows = page.locator("#result_list tbody tr")
            assert rows.count() == 2
            assert "SMTP server answered 550 to DATA" in page.locator("#result_list").inner_text()
            page.screenshot(path=str(SCREENSHOTS / "admin-deliveries-dead.png"), full_page=True)

            # Retry one of them now.
            page.check(f"input.action-select[value='{first_dead.pk}']")
            page.select_option("select[name=action]", "retry_now")
            page.locator("button[name=index]").first.click()
            page.wait_for_load_state("load")
            message = page.locator("ul.messagelist").inner_text()
            assert f"1 deliveries queued for sending: #{first_dead.pk}" in message
            # The dead filter is kept: only the other dead delivery is left.
            assert page.locator("#result_list tbody tr").count() == 1
            page.screenshot(path=str(SCREENSHOTS / "admin-deliveries-retried.png"), full_page=True)

            # The email of the other one, previewed and not sent.
            page.goto(f"{base}/admin/invitations/delivery/{second_dead.pk}/preview/")
            frame = page.locator("iframe#cv-html")
            assert frame.get_attribute("sandbox") == ""
            assert "BEGIN:VCALENDAR" in page.locator("pre.cv-attachment").inner_text()
            page.screenshot(path=str(SCREENSHOTS / "admin-delivery-preview.png"), full_page=True)

            # A booking's timeline.
            page.goto(f"{base}/admin/calendars/booking/")
            page.get_by_role("link", name="Design review").click()
            page.wait_for_load_state("load")
            timeline = page.locator("#cv-timeline")
            assert timeline.is_visible()
            kinds = page.locator("table.cv-timeline tbody tr td:nth-child(2)").all_inner_texts()
            assert kinds.count("transition") == 2
            assert "message" in kinds and "delivery" in kinds
            assert "requested → booked" in timeline.inner_text()
            timeline.scroll_into_view_if_needed()
            page.screenshot(path=str(SCREENSHOTS / "admin-booking-timeline.png"), full_page=True)
            context.close()
        finally:
            browser.close()

    statuses = dict(Delivery.objects.values_list("pk", "status"))
    assert statuses[first_dead.pk] == DeliveryStatus.SENT
    assert statuses[second_dead.pk] == DeliveryStatus.DEAD
    assert statuses[pending.pk] == DeliveryStatus.PENDING
    assert [m.message_id for m in smtp_sink.messages] == [first_dead.message_id_header]
