"""The subscribers' sign-in page: translated, CSRF-protected, and where /google/connect/ leads."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"


def test_login_page_speaks_the_browser_language() -> None:
    response = Client().get("/accounts/login/", HTTP_ACCEPT_LANGUAGE="de-DE,de;q=0.9")
    assert response.status_code == 200
    assert '<html lang="de">' in response.content.decode()
    assert "Passwort" in response.content.decode()


def test_login_signs_in_and_follows_next_when_credentials_are_right() -> None:
    user = UserFactory()
    client = Client()
    response = client.post(
        "/accounts/login/",
        {"username": user.email, "password": PASSWORD, "next": "/api/v1.0/calendars/"},
    )
    assert response.status_code == 302
    assert response["Location"] == "/api/v1.0/calendars/"
    assert client.get("/api/v1.0/calendars/").status_code == 200


def test_login_refuses_a_wrong_password_with_a_translated_message() -> None:
    user = UserFactory()
    response = Client().post(
        "/accounts/login/",
        {"username": user.email, "password": "nope"},
        HTTP_ACCEPT_LANGUAGE="fr",
    )
    assert response.status_code == 200
    assert "mot de passe est incorrect" in response.content.decode()
    assert "sessionid" not in response.cookies


def test_login_refuses_a_post_without_csrf_token() -> None:
    user = UserFactory()
    client = Client(enforce_csrf_checks=True)
    response = client.post("/accounts/login/", {"username": user.email, "password": PASSWORD})
    assert response.status_code == 403


def test_google_connect_sends_anonymous_visitors_to_sign_in() -> None:
    response = Client().get("/google/connect/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=/google/connect/")
