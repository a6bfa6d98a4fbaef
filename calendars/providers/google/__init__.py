"""The Google Calendar API v3 adapter, over google-api-python-client and google-auth.

Modules: :mod:`.types` (vocabularies and results), :mod:`.errors` (our exceptions, backoff),
:mod:`.client` (:class:`GoogleCalendarClient`), :mod:`.oauth` (consent, code exchange,
revocation). Every public name is re-exported here.

Every Google address comes from settings (``GOOGLE_API_ENDPOINT``, ``GOOGLE_AUTH_URI``,
``GOOGLE_TOKEN_URI``, ``GOOGLE_REVOKE_URI``) so tests and staging can point at a fake.
Facts relied on are in ``docs/google-calendar.md``; the API reference is
https://developers.google.com/workspace/calendar/api/v3/reference.

- :class:`GoogleCalendarClient` wraps one account's credentials. A discovery service and an
  ``httplib2.Http`` are built per client (``httplib2`` is not thread-safe): build one client per
  task, never share one between threads.
- Credentials are built directly with ``token_uri=settings.GOOGLE_TOKEN_URI``
  (``Credentials.from_authorized_user_info`` would reset it to Google's). google-auth refreshes
  an expired token before a request and replays once after a 401; a refreshed token lives only
  on the object, so the client hands it to its ``on_refresh`` callback: the adapter never
  touches the database (the Google app, :mod:`gcal_push.accounts`, stores it).
- Errors become our own exceptions by reason (:class:`RateLimited`, :class:`AuthRevoked`,
  :class:`Gone`, :class:`Duplicate`, :class:`PreconditionFailed`, :class:`SyncTokenInvalid`,
  :class:`NotFound`, :class:`PushNotSupported`, ...), chained to the library's error.
- 429, the two rate-limit 403 reasons and 5xx are retried here under the ``google_api`` retry
  policy (:mod:`calendars.retry`). Timeouts and refused connections are not retried here (a
  write may have been applied): they raise :class:`Unavailable` and the calling task decides.
"""

from calendars.providers.google.client import (
    GoogleCalendarClient,
    call_count,
    credentials_from_document,
)
from calendars.providers.google.errors import (
    AuthFailed,
    AuthRevoked,
    BadRequest,
    ChannelIdNotUnique,
    Duplicate,
    Forbidden,
    Gone,
    GoogleError,
    NotFound,
    OAuthError,
    PreconditionFailed,
    PushNotSupported,
    RateLimited,
    SyncTokenInvalid,
    Unavailable,
    classify,
    is_retryable,
    refresh_error,
)
from calendars.providers.google.oauth import (
    authorization_code_exchange,
    authorization_url,
    token_revoke,
)
from calendars.providers.google.types import (
    RATE_LIMIT_REASONS,
    REQUIRED_SCOPES,
    SCOPE_CALENDAR_LIST,
    SCOPE_EMAIL,
    SCOPE_EVENTS,
    SCOPE_FREEBUSY,
    SCOPES,
    Attendee,
    BusyInterval,
    CalendarListEntry,
    Channel,
    Event,
    EventPage,
    EventStatus,
    FreeBusy,
    ResponseStatus,
    SendUpdates,
    TokenGrant,
    credentials_document,
    event_from_api,
    event_id_new,
    parse_time,
)

__all__ = [
    "RATE_LIMIT_REASONS",
    "REQUIRED_SCOPES",
    "SCOPES",
    "SCOPE_CALENDAR_LIST",
    "SCOPE_EMAIL",
    "SCOPE_EVENTS",
    "SCOPE_FREEBUSY",
    "Attendee",
    "AuthFailed",
    "AuthRevoked",
    "BadRequest",
    "BusyInterval",
    "CalendarListEntry",
    "Channel",
    "ChannelIdNotUnique",
    "Duplicate",
    "Event",
    "EventPage",
    "EventStatus",
    "Forbidden",
    "FreeBusy",
    "Gone",
    "GoogleCalendarClient",
    "GoogleError",
    "NotFound",
    "OAuthError",
    "PreconditionFailed",
    "PushNotSupported",
    "RateLimited",
    "ResponseStatus",
    "SendUpdates",
    "SyncTokenInvalid",
    "TokenGrant",
    "Unavailable",
    "authorization_code_exchange",
    "authorization_url",
    "call_count",
    "classify",
    "credentials_document",
    "credentials_from_document",
    "event_from_api",
    "event_id_new",
    "is_retryable",
    "parse_time",
    "refresh_error",
    "token_revoke",
]
