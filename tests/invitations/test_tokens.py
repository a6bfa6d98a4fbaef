"""invitations.tokens: sealed (encrypted), purpose-bound, expiring RSVP tokens."""

from __future__ import annotations

import datetime as dt

import pytest
from django.conf import settings as django_settings
from django.core import signing
from django.test import override_settings

from calendars.link_tokens import token_seal
from invitations import tokens
from invitations.tokens import (
    RsvpTokenExpired,
    RsvpTokenInvalid,
    rsvp_token_expiry,
    rsvp_token_make,
    rsvp_token_read,
)
from tests.link_tokens import readable_without_key

NOW = dt.datetime(2030, 3, 1, 12, tzinfo=dt.UTC)


def settings_key() -> str:
    return str(django_settings.SECRET_KEY)


@pytest.fixture
def frozen_now(monkeypatch: pytest.MonkeyPatch) -> dt.datetime:
    # tokens._now is the module's documented seam for the current time.
    monkeypatch.setattr(tokens, "_now", lambda: NOW)
    return NOW


def make(**overrides) -> str:
    values = {
        "uid": "uid-1@example.org",
        "attendee": "Attendee@Example.net",
        "organizer": "organizer@example.org",
        "recurrence_id": None,
        "expires_at": NOW + dt.timedelta(days=10),
    }
    values.update(overrides)
    return rsvp_token_make(**values)


def test_token_round_trips_when_valid(frozen_now: dt.datetime) -> None:
    token = rsvp_token_read(make(recurrence_id="20300312T130000Z"))
    assert token.uid == "uid-1@example.org"
    assert token.attendee == "attendee@example.net"
    assert token.organizer == "organizer@example.org"
    assert token.recurrence_id == "20300312T130000Z"
    assert token.expires_at == NOW + dt.timedelta(days=10)


def test_expired_is_told_apart_from_invalid_when_past_expiry(frozen_now: dt.datetime) -> None:
    with pytest.raises(RsvpTokenExpired) as info:
        rsvp_token_read(make(expires_at=NOW - dt.timedelta(seconds=1)))
    assert info.value.token.uid == "uid-1@example.org"


@pytest.mark.parametrize(
    "token",
    ["", "abc", "a" * 5000, "not:a:token", ".eJw:1:2"],
)
def test_invalid_when_token_is_garbage(frozen_now: dt.datetime, token: str) -> None:
    with pytest.raises(RsvpTokenInvalid):
        rsvp_token_read(token)


def test_invalid_when_one_character_is_changed(frozen_now: dt.datetime) -> None:
    token = make()
    position = len(token) // 2
    flipped = token[:position] + ("A" if token[position] != "A" else "B") + token[position + 1 :]
    with pytest.raises(RsvpTokenInvalid):
        rsvp_token_read(flipped)


def test_invalid_when_signed_with_another_salt(frozen_now: dt.datetime) -> None:
    other = signing.TimestampSigner(salt="convoke.bookings.decision").sign_object(
        {"v": 1, "u": "x", "a": "a", "o": "o", "r": None, "e": 2**40}, compress=True
    )
    with pytest.raises(RsvpTokenInvalid):
        rsvp_token_read(other)


def test_invalid_when_secret_key_changes(frozen_now: dt.datetime) -> None:
    token = make()
    with (
        override_settings(SECRET_KEY="another-secret-key-entirely-0123456789"),
        pytest.raises(RsvpTokenInvalid),
    ):
        rsvp_token_read(token)


def test_naive_expiry_is_refused_when_making() -> None:
    with pytest.raises(ValueError, match="aware"):
        make(expires_at=dt.datetime(2030, 1, 1))


@override_settings(RSVP_TOKEN_GRACE_DAYS=3, RSVP_TOKEN_OPEN_SERIES_DAYS=100)
def test_expiry_is_last_end_plus_grace_or_fixed_for_endless_series() -> None:
    end = dt.datetime(2030, 5, 1, 10, tzinfo=dt.UTC)
    assert rsvp_token_expiry(last_end=end) == end + dt.timedelta(days=3)
    assert rsvp_token_expiry(last_end=None, now=NOW) == NOW + dt.timedelta(days=100)


def test_token_reveals_no_address_and_no_uid_when_read_without_the_key(
    frozen_now: dt.datetime,
) -> None:
    token = make()
    seen = readable_without_key(token)
    for secret in (b"attendee@example.net", b"organizer@example.org", b"uid-1@example.org"):
        assert secret not in seen


def test_token_of_the_signed_format_reveals_the_attendee_when_read_without_the_key() -> None:
    # Why tokens are sealed now (issue 11, finding 8): the format before was readable JSON.
    legacy = signing.TimestampSigner(salt=tokens.SALT).sign_object(
        {"v": 1, "u": "u", "a": "attendee@example.net", "o": "o@x", "r": None, "e": 2**40},
        compress=True,
    )
    assert b"attendee@example.net" in readable_without_key(legacy)


def test_link_sent_before_tokens_were_sealed_works_until_its_own_expiry(
    frozen_now: dt.datetime,
) -> None:
    def legacy(expires_at: dt.datetime) -> str:
        return signing.TimestampSigner(salt=tokens.SALT).sign_object(
            {
                "v": 1,
                "u": "uid-1@example.org",
                "a": "attendee@example.net",
                "o": "organizer@example.org",
                "r": "20300312T130000Z",
                "e": int(expires_at.timestamp()),
            },
            compress=True,
        )

    token = rsvp_token_read(legacy(NOW + dt.timedelta(days=1)))
    assert (token.uid, token.attendee, token.recurrence_id) == (
        "uid-1@example.org",
        "attendee@example.net",
        "20300312T130000Z",
    )
    with pytest.raises(RsvpTokenExpired) as info:
        rsvp_token_read(legacy(NOW - dt.timedelta(seconds=1)))
    assert info.value.token.organizer == "organizer@example.org"


def test_invalid_when_sealed_for_booking_decisions(frozen_now: dt.datetime) -> None:
    other = token_seal(
        purpose="convoke.bookings.decision",
        claims={"u": "x", "a": "a", "o": "o", "r": None},
        expires_at=NOW + dt.timedelta(days=1),
    )
    with pytest.raises(RsvpTokenInvalid):
        rsvp_token_read(other)


def test_old_secret_key_still_opens_tokens_when_it_is_a_fallback(frozen_now: dt.datetime) -> None:
    token = make()
    with override_settings(
        SECRET_KEY="the-new-secret-key-0123456789abcdef", SECRET_KEY_FALLBACKS=[settings_key()]
    ):
        assert rsvp_token_read(token).uid == "uid-1@example.org"
