"""Connecting a Google account end to end: our pages, the fake's consent page and token endpoint."""

from __future__ import annotations

import base64
import hashlib
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.db import connection
from django.test import Client

from calendars.models import Calendar, GoogleAccount, Provider, Schedule
from calendars.providers import google
from gcal_push.credentials import google_client
from tests.factories import UserFactory
from tests.fakes.google_calendar import FakeGoogleCalendar
from tests.log_scan import SENSITIVE_VALUES

pytestmark = pytest.mark.django_db

SUBJECT = "117000000000000000001"
EMAIL = "ada@example.org"


@pytest.fixture
def fake(google_fake: FakeGoogleCalendar) -> FakeGoogleCalendar:
    google_fake.account_add(
        subject=SUBJECT, email=EMAIL, calendars=("team@group.calendar.google.com",)
    )
    google_fake.calendar_add(
        calendar_id="holidays@group.v.calendar.google.com",
        subject=SUBJECT,
        summary="Holidays",
        access_role="reader",
    )
    return google_fake


@pytest.fixture
def client() -> Client:
    client = Client()
    client.force_login(UserFactory(email="subscriber@example.org"))
    return client


def consent(client: Client) -> tuple[str, dict[str, str]]:
    """Open /google/connect/, then the fake's consent page; return where Google sends us back."""
    response = client.get("/google/connect/")
    assert response.status_code == 302
    authorize = response["Location"]
    google_response = requests.get(authorize, allow_redirects=False, timeout=5)
    assert google_response.status_code == 302
    back = urlsplit(google_response.headers["Location"])
    return authorize, {k: v[0] for k, v in parse_qs(back.query).items()}


def test_connect_stores_encrypted_credentials_and_writable_calendars_when_consent_is_given(
    fake: FakeGoogleCalendar, client: Client
) -> None:
    authorize, back = consent(client)
    query = {k: v[0] for k, v in parse_qs(urlsplit(authorize).query).items()}
    assert authorize.startswith(fake.auth_uri)
    assert query["access_type"] == "offline" and query["response_type"] == "code"
    assert query["code_challenge_method"] == "S256" and len(query["state"]) >= 32
    assert set(query["scope"].split()) == set(google.SCOPES)
    assert query["redirect_uri"] == "http://testserver/google/callback/"

    response = client.get("/google/callback/", back)
    assert response.status_code == 200, response.content
    assert "Google Calendar connected" in response.content.decode()

    exchange = fake.requests_for("oauth.token")[0].body
    assert exchange["grant_type"] == "authorization_code"
    verifier = exchange["code_verifier"]
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
    assert challenge.decode() == query["code_challenge"]

    account = GoogleAccount.objects.get(subject=SUBJECT)
    credentials = account.credentials
    assert credentials["refresh_token"] and credentials["token"]
    SENSITIVE_VALUES.update({credentials["refresh_token"], credentials["token"]})
    assert set(account.scopes) == set(google.SCOPES)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT credentials FROM calendars_googleaccount WHERE id = %s", [account.pk]
        )
        raw = cursor.fetchone()[0]
    assert credentials["refresh_token"] not in raw and credentials["token"] not in raw
    calendars = Calendar.objects.filter(google_account=account)
    assert {(c.remote_id, c.provider, c.connected) for c in calendars} == {
        (EMAIL, Provider.GOOGLE, True),
        ("team@group.calendar.google.com", Provider.GOOGLE, True),
    }
    # The stored credentials work: the adapter reads the calendar list with them.
    assert {e.id for e in google_client(account).calendar_list()} >= {EMAIL}


def test_callback_with_wrong_state_stores_nothing_when_state_is_forged(
    fake: FakeGoogleCalendar, client: Client
) -> None:
    _, back = consent(client)
    response = client.get("/google/callback/", {**back, "state": "forged-state-value"})
    assert response.status_code == 400
    assert not GoogleAccount.objects.exists()
    assert fake.requests_for("oauth.token") == []


def test_callback_replayed_gets_400_when_flow_was_used(
    fake: FakeGoogleCalendar, client: Client
) -> None:
    _, back = consent(client)
    assert client.get("/google/callback/", back).status_code == 200
    replay = client.get("/google/callback/", back)
    assert replay.status_code == 400
    assert len(fake.requests_for("oauth.token")) == 1


def test_callback_from_another_session_gets_400_when_not_started_there(
    fake: FakeGoogleCalendar, client: Client
) -> None:
    _, back = consent(client)
    stranger = Client()
    stranger.force_login(UserFactory())
    assert stranger.get("/google/callback/", back).status_code == 400
    assert not GoogleAccount.objects.exists()


def test_refused_consent_gets_400_when_user_declines(
    fake: FakeGoogleCalendar, client: Client
) -> None:
    fake.consent_set(denied=True)
    _, back = consent(client)
    assert back["error"] == "access_denied"
    response = client.get("/google/callback/", back)
    assert response.status_code == 400
    assert "did not give Convoke access" in response.content.decode()


def test_narrow_consent_is_refused_and_revoked_when_scopes_are_missing(
    fake: FakeGoogleCalendar, client: Client
) -> None:
    fake.consent_set(scopes=["openid", google.SCOPE_EMAIL, google.SCOPE_EVENTS])
    _, back = consent(client)
    response = client.get("/google/callback/", back)
    assert response.status_code == 400
    assert not GoogleAccount.objects.exists()
    assert fake.grants_revoked(subject=SUBJECT)


def test_account_of_another_user_gets_409_when_connected_twice(
    fake: FakeGoogleCalendar, client: Client
) -> None:
    _, back = consent(client)
    assert client.get("/google/callback/", back).status_code == 200
    other = Client()
    other.force_login(UserFactory())
    _, back = consent(other)
    assert other.get("/google/callback/", back).status_code == 409
    assert GoogleAccount.objects.count() == 1


def test_token_endpoint_outage_gets_503_when_google_fails(
    fake: FakeGoogleCalendar, client: Client
) -> None:
    fake.fault_add(operation="oauth.token", status=503, body={"error": "internal_failure"})
    _, back = consent(client)
    assert client.get("/google/callback/", back).status_code == 503
    assert not GoogleAccount.objects.exists()


def test_reconnect_after_revocation_reconnects_calendars_when_consent_is_given_again(
    fake: FakeGoogleCalendar, client: Client, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    from gcal_push.revocation import google_account_revoked_record

    _, back = consent(client)
    client.get("/google/callback/", back)
    account = GoogleAccount.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        assert google_account_revoked_record(account_id=account.pk)
        assert not google_account_revoked_record(account_id=account.pk)
    assert not Calendar.objects.filter(connected=True).exists()
    _, back = consent(client)
    assert client.get("/google/callback/", back).status_code == 200
    account.refresh_from_db()
    assert not account.revoked and account.credentials["refresh_token"]
    assert Calendar.objects.filter(google_account=account, connected=True).count() == 2


def test_calendar_gone_from_list_is_disconnected_when_account_reconnects(
    fake: FakeGoogleCalendar, client: Client
) -> None:
    _, back = consent(client)
    client.get("/google/callback/", back)
    fake.calendars["team@group.calendar.google.com"].deleted = True
    _, back = consent(client)
    client.get("/google/callback/", back)
    team = Calendar.objects.get(remote_id="team@group.calendar.google.com")
    assert not team.connected
    assert Calendar.objects.get(remote_id=EMAIL).connected


def test_anonymous_visitor_is_sent_to_login_when_connecting(fake: FakeGoogleCalendar) -> None:
    response = Client().get("/google/connect/")
    assert response.status_code == 302 and "login" in response["Location"]
    assert fake.requests == []


def test_oversized_callback_parameters_get_400_when_hostile(
    fake: FakeGoogleCalendar, client: Client
) -> None:
    consent(client)
    response = client.get("/google/callback/", {"state": "s" * 10_000, "code": "c"})
    assert response.status_code == 400
    assert fake.requests_for("oauth.token") == []


def test_connect_without_client_id_gets_503_when_not_configured(
    client: Client,
    settings,  # type: ignore[no-untyped-def]
) -> None:
    settings.GOOGLE_CLIENT_ID = ""
    response = client.get("/google/connect/")
    assert response.status_code == 503


def test_schedule_calendar_reconnected_is_listed_when_schedule_uses_it(
    fake: FakeGoogleCalendar, client: Client
) -> None:
    _, back = consent(client)
    client.get("/google/callback/", back)
    calendar = Calendar.objects.get(remote_id=EMAIL)
    Schedule.objects.create(owner=calendar.owner, calendar=calendar, slug="ada")
    _, back = consent(client)
    response = client.get("/google/callback/", back)
    assert response.status_code == 200 and EMAIL in response.content.decode()
