"""The RSVP page in a real browser: Debian's Chromium driven by Playwright.

Convoke runs as a live server on 127.0.0.1, the organizer's event is on Radicale. The
browser opens the link (nothing changes on the server), clicks Decline (a plain form POST
with its CSRF token, no JavaScript involved) and sees the confirmation. Screenshots are
saved under ``artifacts/screenshots/`` for a person to look at.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.browser import CHROMIUM_ARGS, SCREENSHOTS, chromium_or_skip
from tests.invitations.rsvp_support import Account, event_body, partstats, rsvp_path, rsvp_token

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

BOB = "bob@x.com"


def test_decline_is_confirmed_in_chromium_when_opening_the_link_changed_nothing(
    live_server: Any, organizer: Account
) -> None:
    chromium = chromium_or_skip()
    from playwright.sync_api import sync_playwright

    uid = f"{uuid.uuid4().hex}@dav.example.org"
    organizer.event_create(
        event_body(
            uid=uid,
            organizer=organizer.email,
            attendees=[(BOB, "NEEDS-ACTION"), ("jimbob@x.com", "NEEDS-ACTION")],
            location="Room 4",
        )
    )
    etag = organizer.stored(uid)[0]
    link = live_server.url + rsvp_path(
        rsvp_token(uid=uid, attendee=BOB, organizer=organizer.email), "accepted"
    )

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(
                viewport={"width": 390, "height": 844},
                java_script_enabled=False,  # the page must work without it
                locale="en-GB",
            )
            page = context.new_page()
            page.goto(link)
            assert page.locator("h1").inner_text() == "Quarterly planning"
            assert page.locator("#rsvp-current").inner_text() == "No answer yet"
            chosen = page.locator("button.chosen")
            assert chosen.count() == 1 and chosen.inner_text() == "Accept"
            page.screenshot(path=str(SCREENSHOTS / "rsvp-opened.png"), full_page=True)
            # Opening the link (and reloading it) stored nothing on the CalDAV server.
            page.reload()
            assert organizer.stored(uid)[0] == etag

            page.get_by_role("button", name="Decline").click()
            page.wait_for_load_state("load")

            confirmation = page.locator("#rsvp-done")
            assert confirmation.is_visible()
            assert "You declined." in confirmation.inner_text()
            assert page.locator("#rsvp-current").inner_text() == "Declined"
            page.screenshot(path=str(SCREENSHOTS / "rsvp-declined.png"), full_page=True)
            context.close()
        finally:
            browser.close()

    assert partstats(organizer.stored(uid)[1])[None] == {
        BOB: "DECLINED",
        "jimbob@x.com": "NEEDS-ACTION",
    }
