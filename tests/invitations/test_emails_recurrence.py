"""Recurrence rules in words in every supported language (invitations.rendering.recurrence)."""

from __future__ import annotations

import pytest

from calendars.ical import parse_itip
from invitations.rendering.recurrence import recurrence_text


def event_with(rule: str, *, start: str = "DTSTART;TZID=Europe/Paris:20300305T100000", extra=""):
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "BEGIN:VEVENT",
        "UID:rule@example.org",
        start,
        f"RRULE:{rule}",
    ]
    if extra:
        lines.append(extra)
    lines += ["END:VEVENT", "END:VCALENDAR"]
    return parse_itip(("\r\n".join(lines) + "\r\n").encode()).primary


CASES = {
    "FREQ=DAILY": (
        "every day",
        "tous les jours",
        "jeden Tag",
        "elke dag",
    ),
    "FREQ=DAILY;INTERVAL=3": (
        "every 3 days",
        "tous les 3 jours",
        "alle 3 Tage",
        "om de 3 dagen",
    ),
    # No BYDAY: the weekday of DTSTART (5 March 2030 is a Tuesday).
    "FREQ=WEEKLY": (
        "every Tuesday",
        "tous les mardis",
        "jeden Dienstag",
        "elke dinsdag",
    ),
    "FREQ=WEEKLY;BYDAY=TH,TU": (
        "every Tuesday and Thursday",
        "tous les mardis et jeudis",
        "jeden Dienstag und Donnerstag",
        "elke dinsdag en donderdag",
    ),
    "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,WE,FR": (
        "every 2 weeks on Monday, Wednesday and Friday",
        "toutes les 2 semaines le lundi, mercredi et vendredi",
        "alle 2 Wochen am Montag, Mittwoch und Freitag",
        "om de 2 weken op maandag, woensdag en vrijdag",
    ),
    "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR": (
        "every weekday (Monday to Friday)",
        "tous les jours de semaine (du lundi au vendredi)",
        "jeden Werktag (Montag bis Freitag)",
        "elke werkdag (maandag t/m vrijdag)",
    ),
    "FREQ=MONTHLY": (
        "every month on the 5th",
        "tous les mois le 5",
        "jeden Monat am 5.",
        "elke maand op de 5e",
    ),
    "FREQ=MONTHLY;BYMONTHDAY=1,15": (
        "every month on the 1st and 15th",
        "tous les mois le 1er et le 15",
        "jeden Monat am 1. und 15.",
        "elke maand op de 1e en 15e",
    ),
    "FREQ=MONTHLY;BYMONTHDAY=-1": (
        "every month on the last day",
        "tous les mois le dernier jour",
        "jeden Monat am letzten Tag",
        "elke maand op de laatste dag",
    ),
    "FREQ=MONTHLY;BYDAY=2TU": (
        "every month on the second Tuesday",
        "tous les mois le deuxième mardi",
        "jeden Monat am zweiten Dienstag",
        "elke maand op de tweede dinsdag",
    ),
    "FREQ=MONTHLY;INTERVAL=2;BYDAY=-1FR": (
        "every 2 months on the last Friday",
        "tous les 2 mois le dernier vendredi",
        "alle 2 Monate am letzten Freitag",
        "om de 2 maanden op de laatste vrijdag",
    ),
    "FREQ=MONTHLY;BYDAY=MO;BYSETPOS=1": (
        "every month on the first Monday",
        "tous les mois le premier lundi",
        "jeden Monat am ersten Montag",
        "elke maand op de eerste maandag",
    ),
    "FREQ=YEARLY": (
        "every year on 5 March",
        "tous les ans le 5 mars",
        "jedes Jahr am 5. März",
        "elk jaar op 5 maart",
    ),
    "FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU": (
        "every year on the last Sunday of October",
        "tous les ans le dernier dimanche d'octobre",
        "jedes Jahr am letzten Sonntag im Oktober",
        "elk jaar op de laatste zondag van oktober",
    ),
    "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29": (
        "every year on 29 February",
        "tous les ans le 29 février",
        "jedes Jahr am 29. Februar",
        "elk jaar op 29 februari",
    ),
    "FREQ=WEEKLY;BYDAY=TU;UNTIL=20300630T215959Z": (
        "every Tuesday, until 30 June 2030",
        "tous les mardis, jusqu'au 30 juin 2030",
        "jeden Dienstag, bis zum 30. Juni 2030",
        "elke dinsdag, tot en met 30 juni 2030",
    ),
    "FREQ=DAILY;COUNT=10": (
        "every day, 10 times",
        "tous les jours, 10 fois",
        "jeden Tag, 10-mal",
        "elke dag, 10 keer",
    ),
    "FREQ=HOURLY;INTERVAL=4": (
        "every 4 hours",
        "toutes les 4 heures",
        "alle 4 Stunden",
        "om de 4 uur",
    ),
    "FREQ=DAILY;BYMONTH=7,8": (
        "every day in July and August",
        "tous les jours en juillet et août",
        "jeden Tag im Juli und August",
        "elke dag in juli en augustus",
    ),
    # Rules outside the common patterns keep every part: frequency in words, then the rule.
    "FREQ=YEARLY;BYWEEKNO=20": (
        "every year (custom rule: FREQ=YEARLY;BYWEEKNO=20)",
        "tous les ans (règle personnalisée : FREQ=YEARLY;BYWEEKNO=20)",
        "jedes Jahr (eigene Regel: FREQ=YEARLY;BYWEEKNO=20)",
        "elk jaar (aangepaste regel: FREQ=YEARLY;BYWEEKNO=20)",
    ),
    "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1": (
        "every month (custom rule: FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1)",
        "tous les mois (règle personnalisée : FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1)",
        "jeden Monat (eigene Regel: FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1)",
        "elke maand (aangepaste regel: FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1)",
    ),
}
LANGUAGES = ("en", "fr", "de", "nl")


@pytest.mark.parametrize("rule", CASES, ids=list(CASES))
@pytest.mark.parametrize("index", range(4), ids=LANGUAGES)
def test_rule_reads_naturally_when_worded_in_each_language(rule: str, index: int) -> None:
    text = recurrence_text(event_with(rule), zone="Europe/Paris", language=LANGUAGES[index])
    assert text == CASES[rule][index]


def test_exceptions_and_extra_dates_are_listed_when_present() -> None:
    event = event_with(
        "FREQ=WEEKLY;COUNT=8",
        extra="EXDATE;TZID=Europe/Paris:20300312T100000,20300319T100000\r\n"
        "RDATE;TZID=Europe/Paris:20300401T100000",
    )
    assert recurrence_text(event, zone="Europe/Paris", language="en") == (
        "every Tuesday, 8 times; also 1 April 2030; except 12 March 2030 and 19 March 2030"
    )
    assert recurrence_text(event, zone="Europe/Paris", language="de") == (
        "jeden Dienstag, 8-mal; zusätzlich am 1. April 2030; "
        "außer am 12. März 2030 und 19. März 2030"
    )


def test_weekdays_follow_the_reader_when_the_zone_moves_the_date() -> None:
    # Tuesdays 23:00 in Paris are Wednesdays 07:00 in Tokyo.
    event = event_with("FREQ=WEEKLY;BYDAY=TU", start="DTSTART;TZID=Europe/Paris:20300305T230000")
    assert recurrence_text(event, zone="Asia/Tokyo", language="en") == "every Wednesday"
    assert recurrence_text(event, zone="Europe/Paris", language="en") == "every Tuesday"


def test_month_days_name_the_event_zone_when_the_reader_zone_moves_the_date() -> None:
    event = event_with("FREQ=MONTHLY", start="DTSTART;TZID=Europe/Paris:20300305T230000")
    assert recurrence_text(event, zone="Asia/Tokyo", language="en") == (
        "every month on the 5th (days as in Europe/Paris)"
    )


def test_until_is_a_date_in_the_reader_zone() -> None:
    event = event_with("FREQ=DAILY;UNTIL=20300630T230000Z")
    assert recurrence_text(event, zone="Asia/Tokyo", language="en") == (
        "every day, until 1 July 2030"
    )


def test_no_wording_when_event_does_not_repeat() -> None:
    single = parse_itip(
        b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:u\r\nDTSTART:20300305T100000Z\r\n"
        b"END:VEVENT\r\nEND:VCALENDAR\r\n"
    ).primary
    assert recurrence_text(single, zone="UTC", language="en") is None
