"""System checks for a La Suite deployment (docs/design.md section 2).

``manage.py check --deploy`` names what is wrong before the first invitation fails. Each
problem has its own id; the message says what to set.

| id | what |
| --- | --- |
| convoke.E001 | CALDAV_INBOUND_API_KEY missing, under 32 characters or a placeholder (deploy) |
| convoke.E002 | APP_URL missing or not an absolute http(s) URL (deploy) |
| convoke.E003 | the host of APP_URL (where the callback is reached) not in ALLOWED_HOSTS (deploy) |
| convoke.E004 | translations file missing or unreadable |
| convoke.E005 | translations file not valid JSON of the expected shape |
| convoke.E006 | a supported language missing from the translations file |
| convoke.E007 | a key used by templates or code missing in some language |
| convoke.E008 | the Messages API half-configured |
| convoke.E009 | no mail route in production (deploy) |
| convoke.E010 | GOOGLE_INVITE_ENABLED without client id, secret or an https webhook URL |
| convoke.E011 | FIELD_ENCRYPTION_KEY not a list of Fernet keys |
| convoke.E012 | a secret required in production unset (only `manage.py check` gets this far) |
| convoke.E013 | SECRET_KEY is a placeholder (deploy) |
| convoke.E014 | several web processes (WEB_CONCURRENCY) with a per-process cache |
| convoke.W001 | no CalDAV server configured: RSVP answers cannot be recorded (deploy) |
| convoke.W002 | a retired variable still set (CALDAV_SERVER_SCHEDULES) (deploy) |
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.core.exceptions import ImproperlyConfigured
from django.http.request import validate_host
from django.template import Engine, TemplateSyntaxError

from calendars import crypto, translations

MIN_API_KEY_LENGTH = 32


# Words of the placeholders people copy from examples (.env.example has none of them now).
PLACEHOLDER_WORDS = ("change-me", "changeme", "change_me", "replace-me", "example", "placeholder")
MIN_DISTINCT_CHARACTERS = 8


def looks_like_placeholder(value: str) -> bool:
    """A value copied from documentation, or too uniform to have been generated."""
    lowered = value.lower()
    return any(word in lowered for word in PLACEHOLDER_WORDS) or (
        len(set(value)) < MIN_DISTINCT_CHARACTERS
    )


PROCESS_LOCAL_CACHES = (
    "django.core.cache.backends.locmem.LocMemCache",
    "django.core.cache.backends.dummy.DummyCache",
)


GENERATE_HINT = "python3 -c 'import secrets; print(secrets.token_urlsafe(48))'"


@register(Tags.security, deploy=True)
def check_inbound_api_key(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    key = settings.CALDAV_INBOUND_API_KEY
    if "CALDAV_INBOUND_API_KEY" in settings.MISSING_PRODUCTION_SECRETS:
        return []  # convoke.E012 says so
    if not key:
        problem = "CALDAV_INBOUND_API_KEY is missing."
    elif len(key) < MIN_API_KEY_LENGTH:
        problem = "CALDAV_INBOUND_API_KEY is too short."
    elif looks_like_placeholder(key):
        problem = "CALDAV_INBOUND_API_KEY is a placeholder, not a generated value."
    else:
        return []
    return [
        Error(
            problem,
            hint=(
                f"Set CALDAV_INBOUND_API_KEY to a random value of at least {MIN_API_KEY_LENGTH} "
                f"characters ({GENERATE_HINT}), and the same value in the CalDAV server's "
                "callback configuration."
            ),
            id="convoke.E001",
        )
    ]


@register(Tags.security)
def check_production_secrets(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Outside ``manage.py check``, settings refuse to load without these (production)."""
    return [
        Error(
            f"{name} is not set, and production mode (DEBUG=false) requires it.",
            hint=(
                "Generate one: python3 -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())'"
                if name == "FIELD_ENCRYPTION_KEY"
                else f"Generate one: {GENERATE_HINT}"
            ),
            id="convoke.E012",
        )
        for name in settings.MISSING_PRODUCTION_SECRETS
    ]


@register(Tags.security, deploy=True)
def check_secret_key(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    if settings.DEBUG or "SECRET_KEY" in settings.MISSING_PRODUCTION_SECRETS:
        return []
    if not looks_like_placeholder(settings.SECRET_KEY):
        return []
    return [
        Error(
            "SECRET_KEY is a placeholder, not a generated value: RSVP and booking links and "
            "sessions signed with it can be forged.",
            hint=f"Set SECRET_KEY to a generated value ({GENERATE_HINT}).",
            id="convoke.E013",
        )
    ]


@register(Tags.caches)
def check_shared_cache(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Throttling counters (booking requests) must be shared by every web process."""
    if settings.WEB_CONCURRENCY <= 1:
        return []
    backend = settings.CACHES["default"]["BACKEND"]
    if backend not in PROCESS_LOCAL_CACHES:
        return []
    return [
        Error(
            f"WEB_CONCURRENCY is {settings.WEB_CONCURRENCY} but the cache ({backend}) is local "
            "to each process: each web process would count booking requests on its own, "
            "letting a client through WEB_CONCURRENCY times the configured rate.",
            hint="Set CACHE_URL to a cache the processes share, e.g. redis://redis:6379/1.",
            id="convoke.E014",
        )
    ]


def _app_url_parts() -> tuple[str, str | None]:
    parts = urlsplit(settings.APP_URL or "")
    return parts.scheme, parts.hostname


@register(Tags.compatibility, deploy=True)
def check_app_url(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    scheme, host = _app_url_parts()
    if scheme in ("http", "https") and host:
        return []
    return [
        Error(
            "APP_URL is missing or not an absolute URL.",
            hint="Set APP_URL to Convoke's public base URL, e.g. https://convoke.example.org "
            "(RSVP links in emails and the callback address are built from it).",
            id="convoke.E002",
        )
    ]


@register(Tags.security, deploy=True)
def check_callback_host_allowed(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    _scheme, host = _app_url_parts()
    if not host or validate_host(host, settings.ALLOWED_HOSTS):
        return []
    return [
        Error(
            f"The host of APP_URL ({host}) is not in ALLOWED_HOSTS: the CalDAV server's callbacks "
            "and the RSVP links would be refused with 400.",
            hint=f"Add {host} to ALLOWED_HOSTS (comma-separated).",
            id="convoke.E003",
        )
    ]


def _template_keys() -> set[str]:
    """Every key used by a ``{% t %}`` tag in the project's templates."""
    from calendars.templatetags.translate import TranslateNode

    keys: set[str] = set()
    engine = Engine.get_default()
    for directory in engine.dirs:
        root = Path(directory)
        for path in sorted(root.rglob("*")):
            if not path.is_file() or path.suffix not in (".html", ".txt"):
                continue
            name = path.relative_to(root).as_posix()
            try:
                template = engine.get_template(name)
            except TemplateSyntaxError:
                continue
            keys.update(
                node.key
                for node in template.nodelist.get_nodes_by_type(TranslateNode)
                if isinstance(node, TranslateNode)
            )
    return keys


def required_translation_keys() -> set[str]:
    return _template_keys() | translations.CODE_KEYS


@register(Tags.templates)
def check_translations(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    path = Path(settings.TRANSLATIONS_JSON_PATH)
    try:
        data = translations.load_file(path)
    except translations.TranslationsError as exc:
        return [
            Error(
                f"Translations file problem: {exc}.",
                hint="Set TRANSLATIONS_JSON_PATH to a readable copy of translations.json "
                "(the bundled file is the reference).",
                id="convoke.E004"
                if isinstance(exc, translations.TranslationsUnreadable)
                else "convoke.E005",
            )
        ]
    problems: list[CheckMessage] = []
    for language in translations.SUPPORTED_LANGUAGES:
        if language not in data:
            problems.append(
                Error(
                    f"Translations file {path} has no '{language}' section.",
                    hint=f"Add a '{language}' object with every key of the 'en' section.",
                    id="convoke.E006",
                )
            )
    required = required_translation_keys()
    for language, strings in sorted(data.items()):
        missing = sorted(required - strings.keys())
        if missing:
            shown = ", ".join(missing[:10]) + (" ..." if len(missing) > 10 else "")
            problems.append(
                Error(
                    f"Translations file {path}: language '{language}' lacks {len(missing)} "
                    f"key(s) used by the templates: {shown}.",
                    hint="Add the missing keys (compare with the bundled translations.json).",
                    id="convoke.E007",
                )
            )
    return problems


@register(Tags.compatibility)
def check_messages_api(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    values = {
        "MESSAGES_API_URL": settings.MESSAGES_API_URL,
        "MESSAGES_API_KEY": settings.MESSAGES_API_KEY,
        "MESSAGES_CHANNEL_ID": settings.MESSAGES_CHANNEL_ID,
    }
    missing = [name for name, value in values.items() if not value]
    if len(missing) in (0, len(values)):
        return []
    return [
        Error(
            "The La Suite Messages API is half-configured: " + ", ".join(missing) + " not set.",
            hint="Set all three of MESSAGES_API_URL, MESSAGES_API_KEY and MESSAGES_CHANNEL_ID "
            "(a channel with scope messages:send), or none.",
            id="convoke.E008",
        )
    ]


@register(Tags.compatibility, deploy=True)
def check_mail_route(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    if settings.DEBUG or settings.MAIL_ROUTE != "file":
        return []
    return [
        Error(
            "No mail route is configured: emails would only be written to files.",
            hint="Set EMAIL_HOST (and EMAIL_PORT, EMAIL_HOST_USER, EMAIL_HOST_PASSWORD, "
            "EMAIL_USE_TLS) for an SMTP relay, or BREVO_API_KEY for Brevo.",
            id="convoke.E009",
        )
    ]


@register(Tags.compatibility)
def check_google(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    if not settings.GOOGLE_INVITE_ENABLED:
        return []
    problems = [
        f"{name} is not set"
        for name in ("GOOGLE_CLIENT_ID", "GOOGLE_CLIENT_SECRET")
        if not getattr(settings, name)
    ]
    webhook = urlsplit(settings.GOOGLE_WEBHOOK_URL or "")
    if not settings.GOOGLE_WEBHOOK_URL:
        problems.append("GOOGLE_WEBHOOK_URL is not set")
    elif webhook.scheme != "https" or not webhook.hostname:
        problems.append("GOOGLE_WEBHOOK_URL is not an absolute https URL (Google calls only https)")
    if not problems:
        return []
    return [
        Error(
            "GOOGLE_INVITE_ENABLED is on but " + "; ".join(problems) + ".",
            hint="Create an OAuth client in the Google Cloud console and set GOOGLE_CLIENT_ID, "
            "GOOGLE_CLIENT_SECRET and GOOGLE_WEBHOOK_URL=https://<host>/webhooks/google-calendar/, "
            "or set GOOGLE_INVITE_ENABLED=false.",
            id="convoke.E010",
        )
    ]


@register(Tags.security)
def check_encryption_key(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    try:
        crypto.fernet()
    except ImproperlyConfigured as exc:
        return [Error(str(exc), id="convoke.E011")]
    return []


@register(Tags.compatibility, deploy=True)
def check_caldav_server(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """docs/design.md 1.2: RSVP records answers on the CalDAV server; without one the links
    in invitations lead to a page that says answers cannot be recorded."""
    url = settings.CALDAV_URL
    credentials = settings.CALDAV_OUTBOUND_API_KEY or settings.CALDAV_USERNAME
    if url and credentials:
        return []
    return [
        Warning(
            "No CalDAV server is configured: invitees' answers (the RSVP links) cannot be "
            "recorded, and organizers will not hear of them."
            if not url
            else "CALDAV_URL is set without credentials: invitees' answers cannot be recorded.",
            hint="Set CALDAV_URL and either CALDAV_OUTBOUND_API_KEY (La Suite's API key) or "
            "CALDAV_USERNAME and CALDAV_PASSWORD (HTTP Basic: Radicale, Nextcloud).",
            id="convoke.W001",
        )
    ]


@register(Tags.compatibility, deploy=True)
def check_retired_variables(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    return [
        Warning(
            f"{name} is set but no longer read.",
            hint="Convoke asks the CalDAV server whether it schedules (RFC 6638: "
            "calendar-auto-schedule in its OPTIONS answer), and every RSVP answer reaches the "
            "organizer exactly once either way. Remove the variable.",
            id="convoke.W002",
        )
        for name in settings.RETIRED_VARIABLES_SET
    ]
