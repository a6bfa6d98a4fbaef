"""The embedded default mail route: one ``.eml`` file per email under ``EMAIL_FILE_PATH``.

Django's file backend writes every message a connection sends into one ``.log`` file, named
after the second and the backend object's address; two connections in the same second at the
same address share a file, so ``var/mail/`` held fewer files than emails. Here each email is
its own file, written under a hidden name and renamed into place (a reader never sees half of
one), that any mail client opens.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Sequence
from pathlib import Path

from django.core.mail import EmailMessage
from django.core.mail.backends import filebased


class EmailBackend(filebased.EmailBackend):
    """Django's file backend (same ``file_path`` option), one file per email."""

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        sent = 0
        for message in email_messages:
            if not message.recipients():
                continue
            name = f"{dt.datetime.now():%Y%m%d-%H%M%S}-{uuid.uuid4().hex}.eml"
            path = Path(self.file_path) / name
            temporary = path.with_name(f".{name}.tmp")
            try:
                temporary.write_bytes(message.message().as_bytes())
                os.replace(temporary, path)
            except OSError:
                temporary.unlink(missing_ok=True)
                if not self.fail_silently:
                    raise
                continue
            sent += 1
        return sent
