"""``LOG_FORMAT=json`` writes one JSON object per line."""

from __future__ import annotations

import json
import logging

from calendars.logs import JsonFormatter


def test_json_formatter_writes_one_object_per_line_with_extras() -> None:
    record = logging.makeLogRecord(
        {
            "name": "scheduling",
            "levelname": "INFO",
            "levelno": 20,
            "msg": "callback refused reason=%s",
            "args": ("bad_key",),
            "delivery_id": 42,
        }
    )
    line = JsonFormatter().format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["message"] == "callback refused reason=bad_key"
    assert entry["level"] == "INFO" and entry["logger"] == "scheduling"
    assert entry["delivery_id"] == 42
