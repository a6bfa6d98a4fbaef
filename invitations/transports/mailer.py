"""The Django mailer route: ``settings.MAILERS`` (an SMTP relay, Brevo through anymail, files).

Failures are classified per RFC 5321 section 4.2.1: a 4yz reply is a transient negative
completion (retry), a 5yz reply a permanent one. Anymail's HTTP errors follow the same
split as every HTTP API (429 and 5xx transient, other 4xx permanent).
"""

from __future__ import annotations

import logging
import smtplib

from anymail.exceptions import (
    AnymailAPIError,
    AnymailConfigurationError,
    AnymailError,
    AnymailInvalidAddress,
    AnymailRecipientsRefused,
    AnymailRequestsAPIError,
    AnymailUnsupportedFeature,
)
from django.core.exceptions import ImproperlyConfigured
from django.core.mail import EmailMessage, mailers
from django.core.mail.backends.base import BaseEmailBackend

from invitations.transports.base import PermanentSendError, SendResult, TransientSendError

logger = logging.getLogger(__name__)

MAILER_ALIAS = "default"


def _smtp_code_error(code: int, where: str) -> TransientSendError | PermanentSendError:
    reason = f"SMTP server answered {code} {where}"
    if 500 <= code < 600:
        return PermanentSendError(reason)
    return TransientSendError(reason)


def _http_status_error(
    status: int | None, provider: str
) -> TransientSendError | PermanentSendError:
    if status is None:
        return TransientSendError(f"{provider}: no answer (connection error or timeout)")
    reason = f"{provider} answered HTTP {status}"
    if status == 429 or status >= 500:
        return TransientSendError(reason)
    return PermanentSendError(reason)


def classify_exception(exc: BaseException) -> TransientSendError | PermanentSendError:
    """Map an exception from a Django email backend onto a transient or permanent error."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = sorted({code for code, _message in exc.recipients.values()})
        if codes and all(500 <= code < 600 for code in codes):
            return PermanentSendError(f"SMTP server refused the recipient ({codes[0]})")
        return TransientSendError(
            f"SMTP server refused the recipient for now ({codes[0] if codes else 'no code'})"
        )
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        # The relay refuses our credentials: an operator's fix, not the email's fault.
        return TransientSendError(f"SMTP authentication failed ({exc.smtp_code})")
    if isinstance(exc, smtplib.SMTPSenderRefused):
        return _smtp_code_error(exc.smtp_code, "to MAIL FROM")
    if isinstance(exc, smtplib.SMTPDataError):
        return _smtp_code_error(exc.smtp_code, "to DATA")
    if isinstance(exc, smtplib.SMTPResponseException):
        return _smtp_code_error(exc.smtp_code, "during the session")
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return TransientSendError("SMTP server closed the connection")
    if isinstance(exc, smtplib.SMTPException):
        return TransientSendError(f"SMTP error ({type(exc).__name__})")
    if isinstance(exc, AnymailRecipientsRefused):
        return PermanentSendError("the email provider refused the recipient")
    if isinstance(exc, (AnymailInvalidAddress, AnymailUnsupportedFeature)):
        return PermanentSendError(
            f"the email provider cannot send this email ({type(exc).__name__})"
        )
    if isinstance(exc, AnymailRequestsAPIError):
        return _http_status_error(exc.status_code, exc.esp_name or "email provider")
    if isinstance(exc, AnymailAPIError):
        return TransientSendError(f"email provider error ({type(exc).__name__})")
    if isinstance(exc, (AnymailConfigurationError, ImproperlyConfigured)):
        return TransientSendError("the mailer is not configured correctly")
    if isinstance(exc, AnymailError):
        return TransientSendError(f"email provider error ({type(exc).__name__})")
    if isinstance(exc, TimeoutError):
        return TransientSendError("timed out talking to the mail server")
    if isinstance(exc, ConnectionError):
        return TransientSendError(f"cannot reach the mail server ({type(exc).__name__})")
    if isinstance(exc, OSError):
        return TransientSendError(
            f"network error talking to the mail server ({type(exc).__name__})"
        )
    if isinstance(exc, ValueError):
        # Django's SMTP backend refuses addresses it cannot encode (RFC 5321 local parts).
        return PermanentSendError("the mailer cannot encode an address of this email")
    raise TypeError(f"not a mailer failure: {type(exc).__name__}") from exc


# What a Django mailer raises when a send fails (each one classified by classify_exception).
MAILER_ERRORS = (smtplib.SMTPException, AnymailError, ImproperlyConfigured, OSError, ValueError)


def mailer_send(connection: BaseEmailBackend, email: EmailMessage) -> SendResult:
    """Send ``email`` over ``connection`` (a backend of ``settings.MAILERS``), its failure
    classified as transient or permanent."""
    try:
        sent = connection.send_messages([email])
    except MAILER_ERRORS as exc:
        raise classify_exception(exc) from exc
    if not sent:
        raise TransientSendError("the mailer reported that nothing was sent")
    status = getattr(email, "anymail_status", None)
    provider_id = getattr(status, "message_id", None) if status is not None else None
    return SendResult(provider_message_id=str(provider_id) if provider_id else "")


class MailerTransport:
    """Send through the Django mailer ``settings.MAILERS[MAILER_ALIAS]``."""

    def send(self, *, email: EmailMessage, sender: str, recipient: str) -> SendResult:
        try:
            connection = mailers[MAILER_ALIAS]
        except MAILER_ERRORS as exc:
            raise classify_exception(exc) from exc
        return mailer_send(connection, email)
