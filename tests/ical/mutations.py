"""Mutations of real iCalendar bodies, shaped after what hurt Convoke (issue 11).

Each operator takes a body and an integer ``knob`` and returns a new body, deterministically,
so that the fuzz test (hypothesis picks the knobs) and the benchmark (a seeded random
generator picks them) share them: byte flips, truncation, line duplication and deletion,
nesting, huge values, zone-rule frequencies, extreme dates and costly recurrence rules.
"""

from __future__ import annotations

import re
from collections.abc import Callable

Mutation = Callable[[bytes, int], bytes]

_FREQUENCIES = ("SECONDLY", "MINUTELY", "HOURLY", "DAILY", "WEEKLY", "MONTHLY", "YEARLY")
_YEARS = ("0001", "1000", "1601", "1899", "1900", "2200", "2201", "9999")
_DATE_PROPERTIES = (b"DTSTART", b"DTEND", b"RECURRENCE-ID", b"RDATE", b"EXDATE", b"DUE")
_EVENT_RULES = (
    "FREQ=SECONDLY;COUNT=5000;BYMONTH=2;BYMONTHDAY=30",
    "FREQ=MINUTELY;COUNT=5000",
    "FREQ=HOURLY;BYSETPOS=5",
    "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=31",
    "FREQ=YEARLY;BYWEEKNO=53;BYDAY=MO;BYMONTH=1",
    "FREQ=MONTHLY;INTERVAL=0",
    "FREQ=WEEKLY;COUNT=99999999",
    "FREQ=DAILY;UNTIL=99991231T000000Z",
)
_HOSTILE_ZONE = (
    "BEGIN:VTIMEZONE\r\nTZID:Fuzz Zone\r\nBEGIN:STANDARD\r\nDTSTART:16010101T000000\r\n"
    "TZOFFSETFROM:+0100\r\nTZOFFSETTO:+0000\r\nRRULE:{rule}\r\nEND:STANDARD\r\n"
    "BEGIN:DAYLIGHT\r\nDTSTART:16010101T000001\r\nTZOFFSETFROM:+0000\r\nTZOFFSETTO:+0100\r\n"
    "RRULE:{rule}\r\nEND:DAYLIGHT\r\nEND:VTIMEZONE\r\n"
)


def _lines(body: bytes) -> list[bytes]:
    return body.replace(b"\r\n", b"\n").split(b"\n")


def _join(lines: list[bytes]) -> bytes:
    return b"\r\n".join(lines)


def flip_byte(body: bytes, knob: int) -> bytes:
    if not body:
        return body
    position = knob % len(body)
    return body[:position] + bytes([body[position] ^ (1 << (knob % 8))]) + body[position + 1 :]


def truncate(body: bytes, knob: int) -> bytes:
    return body[: knob % (len(body) + 1)]


def duplicate_line(body: bytes, knob: int) -> bytes:
    lines = _lines(body)
    index = knob % len(lines)
    return _join(lines[: index + 1] + [lines[index]] * (1 + knob % 50) + lines[index + 1 :])


def delete_line(body: bytes, knob: int) -> bytes:
    lines = _lines(body)
    del lines[knob % len(lines)]
    return _join(lines)


def nest(body: bytes, knob: int) -> bytes:
    depth = 1 + knob % 600
    block = b"\r\n".join([b"BEGIN:X-NEST"] * depth + [b"END:X-NEST"] * depth)
    return body.replace(b"BEGIN:VEVENT\r\n", b"BEGIN:VEVENT\r\n" + block + b"\r\n", 1).replace(
        b"BEGIN:VEVENT\n", b"BEGIN:VEVENT\n" + block + b"\n", 1
    )


def huge_value(body: bytes, knob: int) -> bytes:
    lines = _lines(body)
    index = knob % len(lines)
    name, _, _ = lines[index].partition(b":")
    size = (1 + knob % 7) * 40_000
    filler = b";X=1" * (size // 4) if knob % 3 == 0 else b"A" * size
    if knob % 3 == 0:
        lines[index] = name + filler + b":v"
    else:
        lines[index] = name + b":" + filler
    return _join(lines)


def zone_frequency(body: bytes, knob: int) -> bytes:
    freq = _FREQUENCIES[knob % len(_FREQUENCIES)]
    interval = (knob // len(_FREQUENCIES)) % 3  # 0 is the zero interval
    rule = f"FREQ={freq};INTERVAL={interval}".encode()
    if b"BEGIN:VTIMEZONE" in body:
        changed = re.sub(rb"(?m)^RRULE:[^\r\n]*", b"RRULE:" + rule, body)
        return changed if changed != body else body
    zone = _HOSTILE_ZONE.format(rule=rule.decode()).encode()
    body = body.replace(b"BEGIN:VEVENT", zone + b"BEGIN:VEVENT", 1)
    return re.sub(rb"(?m)^DTSTART([;:])", rb"DTSTART;TZID=Fuzz Zone\1", body, count=1)


def extreme_date(body: bytes, knob: int) -> bytes:
    name = _DATE_PROPERTIES[knob % len(_DATE_PROPERTIES)]
    year = _YEARS[(knob // len(_DATE_PROPERTIES)) % len(_YEARS)].encode()
    pattern = rb"(?m)^(" + re.escape(name) + rb"[^:\r\n]*:)\d{4}"
    changed = re.sub(pattern, rb"\g<1>" + year, body, count=1)
    if changed == body:  # no such property: put UNTIL in a rule instead
        changed = re.sub(rb"(?m)^(RRULE:[^\r\n]*)", rb"\1;UNTIL=" + year + b"0101T000000Z", body)
    return changed


def event_rule(body: bytes, knob: int) -> bytes:
    rule = _EVENT_RULES[knob % len(_EVENT_RULES)].encode()
    if re.search(rb"(?m)^RRULE:", body):
        return re.sub(rb"(?m)^RRULE:[^\r\n]*", b"RRULE:" + rule, body, count=1)
    return body.replace(b"END:VEVENT", b"RRULE:" + rule + b"\r\nEND:VEVENT", 1)


MUTATIONS: dict[str, Mutation] = {
    "flip_byte": flip_byte,
    "truncate": truncate,
    "duplicate_line": duplicate_line,
    "delete_line": delete_line,
    "nest": nest,
    "huge_value": huge_value,
    "zone_frequency": zone_frequency,
    "extreme_date": extreme_date,
    "event_rule": event_rule,
}
