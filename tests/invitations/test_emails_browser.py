"""Each kind's HTML in headless Chromium at 360 px and 1200 px (issue 4, browser test).

Nothing may be wider than the viewport, the three RSVP buttons must be visible on REQUEST
emails, and no network request may leave the page (no remote images, fonts or scripts).
Screenshots are saved under ``artifacts/screenshots/`` for a person to look at.
"""

from __future__ import annotations

import email
import email.policy
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from invitations.emails import email_build

from .emails_samples import ATTENDEE, ORGANIZER, request

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
WIDTHS = (360, 1200)
LONG_URL = "https://meet.example.org/j/" + "a1b2c3d4e5" * 8 + "?pwd=" + "Zx9" * 12

DESCRIPTION = (
    "Agenda:\\n1. Numbers for the quarter\\n2. Hiring plan\\n\\nDial-in: "
    + LONG_URL
    + "\\nReference: Donaudampfschifffahrtsgesellschaftskapitän"
)


def _html(kind: str, language: str) -> str:
    summary = "Quarterly planning with the extended leadership team and regional leads"
    cases = {
        "invitation": (
            request(
                summary=summary, description=DESCRIPTION, extra=f"X-GOOGLE-CONFERENCE:{LONG_URL}"
            ),
            "REQUEST",
            None,
        ),
        "update": (
            request(
                summary=summary,
                sequence=1,
                description=DESCRIPTION,
                extra="RRULE:FREQ=WEEKLY;BYDAY=TU;UNTIL=20300630T215959Z",
            ),
            "REQUEST",
            request(summary="Planning", location="Room 1"),
        ),
        "cancellation": (
            request(
                method="CANCEL",
                summary=summary,
                extra="RECURRENCE-ID;TZID=Europe/Brussels:20300312T140000",
            ),
            "CANCEL",
            None,
        ),
        "reply": (request(method="REPLY", attendee_partstat="TENTATIVE"), "REPLY", None),
    }
    body, method, previous = cases[kind]
    sender, recipient = (ATTENDEE, ORGANIZER) if method == "REPLY" else (ORGANIZER, ATTENDEE)
    mail = email_build(
        body=body,
        method=method,
        sender=sender,
        recipient=recipient,
        message_id=f"<{kind}@browser.test>",
        language=language,
        time_zone="America/New_York",
        previous_body=previous,
    )
    message = email.message_from_bytes(mail.message().as_bytes(), policy=email.policy.default)
    return message.get_body(("html",)).get_content()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield instance
        instance.close()


OVERFLOWING = """() => {
    const limit = document.documentElement.clientWidth;
    const wide = [];
    for (const element of document.querySelectorAll('body *')) {
        const box = element.getBoundingClientRect();
        if (box.width > 0 && (box.right > limit + 0.5 || box.left < -0.5)) {
            wide.push(element.tagName + '.' + element.className + ' ' + Math.round(box.right));
        }
    }
    return {scroll: document.documentElement.scrollWidth, limit: limit, wide: wide};
}"""


# WCAG 2 contrast of every element that holds text, against the first opaque background
# behind it.
LOW_CONTRAST = """() => {
    const rgb = (value) => value.match(/[\\d.]+/g).map(Number);
    const luminance = ([r, g, b]) => {
        const [R, G, B] = [r, g, b].map((c) => {
            c /= 255;
            return c <= 0.03928 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4);
        });
        return 0.2126 * R + 0.7152 * G + 0.0722 * B;
    };
    const background = (element) => {
        for (let node = element; node; node = node.parentElement) {
            const color = getComputedStyle(node).backgroundColor;
            const parts = rgb(color);
            if (parts.length === 3 || parts[3] > 0) return parts.slice(0, 3);
        }
        return [255, 255, 255];
    };
    const low = [];
    for (const element of document.querySelectorAll('body *')) {
        const own = [...element.childNodes].some(
            (n) => n.nodeType === 3 && n.textContent.trim());
        if (!own) continue;
        const fg = luminance(rgb(getComputedStyle(element).color).slice(0, 3));
        const bg = luminance(background(element));
        const ratio = (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05);
        if (ratio < 4.5) {
            low.push(element.tagName + '.' + element.className + ' ' + ratio.toFixed(2));
        }
    }
    return low;
}"""


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("kind", ["invitation", "update", "cancellation", "reply"])
@pytest.mark.parametrize("language", ["en", "de"])
def test_email_html_fits_the_screen_when_opened_in_chromium(
    browser, kind: str, language: str, width: int
) -> None:
    html = _html(kind, language)
    context = browser.new_context(viewport={"width": width, "height": 900})
    requests: list[str] = []
    context.on("request", lambda r: requests.append(r.url))
    page = context.new_page()
    try:
        page.set_content(html, wait_until="load")
        result = page.evaluate(OVERFLOWING)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{kind}-{language}-{width}.png"), full_page=True)
        assert result["scroll"] <= result["limit"], result
        assert result["wide"] == [], result["wide"]
        assert page.evaluate(LOW_CONTRAST) == []
        buttons = page.locator("a.button")
        if kind in ("invitation", "update"):
            assert buttons.count() == 3
            for index in range(3):
                button = buttons.nth(index)
                assert button.is_visible()
                box = button.bounding_box()
                assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width
                assert "/rsvp/?token=" in (button.get_attribute("href") or "")
        else:
            assert buttons.count() == 0
        assert page.locator("html").get_attribute("lang") == language
        assert page.locator("script").count() == 0
        # about:blank is the page itself; anything else would be a remote resource.
        assert [url for url in requests if not url.startswith(("about:", "data:"))] == []
    finally:
        context.close()
