"""``manage.py preview_email FILE.ics --method REQUEST --lang fr --out DIR``.

Renders the email Convoke would send for an iCalendar file and writes its HTML, its plain
text and the whole message (.eml, attachment included) for operators and template authors.
Nothing is sent and nothing is stored. A REQUEST is an invitation unless ``--previous``
names the earlier version the recipient was sent: it is then an update that says what
changed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from calendars.ical import ITIP_EMAIL_METHODS, ICalendarError, Method, parse_itip
from calendars.translations import SUPPORTED_LANGUAGES
from invitations.emails import email_build

METHODS = tuple(method.value for method in ITIP_EMAIL_METHODS)


class Command(BaseCommand):
    help = "Write the HTML, text and .eml of the email Convoke would send for an .ics file."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path, help="the iCalendar file (.ics)")
        parser.add_argument("--method", choices=METHODS, default=Method.REQUEST.value)
        parser.add_argument("--lang", choices=SUPPORTED_LANGUAGES, default="en")
        parser.add_argument("--tz", default=None, help="recipient's IANA time zone")
        parser.add_argument("--out", type=Path, required=True, help="folder to write into")
        parser.add_argument("--sender", default=None, help="default: the ORGANIZER")
        parser.add_argument("--recipient", default=None, help="default: the first ATTENDEE")
        parser.add_argument(
            "--previous",
            type=Path,
            default=None,
            help="the earlier version the recipient was sent (.ics): the email is an update",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["file"]
        try:
            body = path.read_bytes()
        except OSError as exc:
            raise CommandError(f"cannot read {path}: {exc.strerror}") from exc
        try:
            message = parse_itip(body)
        except ICalendarError as exc:
            raise CommandError(f"{path} is not usable iCalendar: {exc}") from exc
        event = message.primary
        organizer = event.organizer.address if event.organizer else ""
        first_attendee = event.attendees[0].address if event.attendees else ""
        method = options["method"]
        if method == Method.REPLY:
            default_sender, default_recipient = first_attendee, organizer
        else:
            default_sender, default_recipient = organizer, first_attendee
        sender = options["sender"] or default_sender
        recipient = options["recipient"] or default_recipient
        if not sender or not recipient:
            raise CommandError(
                "the file names no ORGANIZER or ATTENDEE to use: pass --sender and --recipient"
            )
        previous: Path | None = options["previous"]
        try:
            previous_body = previous.read_bytes() if previous is not None else None
        except OSError as exc:
            raise CommandError(f"cannot read {previous}: {exc.strerror}") from exc
        try:
            mail = email_build(
                body=body,
                method=method,
                sender=sender,
                recipient=recipient,
                message_id=f"<preview.{path.stem}@convoke.invalid>",
                language=options["lang"],
                time_zone=options["tz"],
                previous_body=previous_body,
            )
        except (ICalendarError, ValueError) as exc:
            raise CommandError(f"cannot render {path}: {exc}") from exc
        out: Path = options["out"]
        out.mkdir(parents=True, exist_ok=True)
        stem = f"{path.stem}.{method.lower()}.{options['lang']}"
        html = next(
            (content for content, mimetype in mail.alternatives if mimetype == "text/html"), ""
        )
        written = {
            out / f"{stem}.html": str(html).encode("utf-8"),
            out / f"{stem}.txt": str(mail.body).encode("utf-8"),
            out / f"{stem}.eml": mail.message().as_bytes(),
        }
        for target, content in written.items():
            target.write_bytes(content)
            self.stdout.write(f"wrote {target}")
        self.stdout.write(self.style.SUCCESS(f"Subject: {mail.subject}"))
