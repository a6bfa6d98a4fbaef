"""The embedded broker (``make run``'s server-less default) under concurrent readers.

kombu's own filesystem transport lets a reader take a message file its writer has created
but not yet filled: the worker dies with ``JSONDecodeError`` (finding 9). Real processes,
the transport the settings select, large messages to widen any window.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings

PROJECT_DIR = Path(__file__).resolve().parents[2]
PRODUCERS, CONSUMERS, MESSAGES_EACH = 3, 3, 100
PAYLOAD_BYTES = 200_000
DEADLINE_SECONDS = 120

pytestmark = pytest.mark.skipif(
    not settings.CELERY_BROKER_URL.startswith("filesystem"),
    reason="the embedded broker is tested in CI's first pass (CELERY_BROKER_URL is set)",
)

SCRIPT = r"""
import json, os, sys, time
from kombu import Connection

role, transport, folder, count, deadline = sys.argv[1:6]
options = {"data_folder_in": folder + "/queue", "data_folder_out": folder + "/queue",
           "control_folder": folder + "/control", "store_processed": False}
transport = None if transport == "-" else transport
with Connection("filesystem://", transport=transport, transport_options=options) as connection:
    queue = connection.SimpleQueue("race")
    if role == "produce":
        for i in range(int(count)):
            queue.put({"id": f"{count}-{sys.argv[6]}-{i}", "pad": "x" * PAD_BYTES})
        sys.exit(0)
    received, idle = [], 0
    while time.time() < float(deadline):
        try:
            message = queue.get(timeout=0.05)
        except queue.Empty:
            idle += 1
            # Producers are done and the queue stayed empty for a while.
            if idle >= 10 and os.path.exists(folder + "/done"):
                break
            continue
        except Exception as exc:
            print(json.dumps({"received": received, "error": repr(exc)[:300]}))
            sys.exit(1)
        message.ack()
        received.append(message.payload["id"])
    print(json.dumps({"received": received, "error": None}))
""".replace("PAD_BYTES", str(PAYLOAD_BYTES))


def _run(folder: Path, transport: str | None) -> tuple[list[str], list[str]]:
    for name in ("queue", "control"):
        (folder / name).mkdir(parents=True)
    script = folder / "race.py"
    script.write_text(SCRIPT)
    python = [sys.executable, str(script)]
    deadline = str(time.time() + DEADLINE_SECONDS - 10)
    env = {**os.environ, "PYTHONPATH": str(PROJECT_DIR)}
    common = [transport or "-", str(folder), str(MESSAGES_EACH), deadline]
    consumers = [
        subprocess.Popen(
            [*python, "consume", *common, str(n)],
            cwd=PROJECT_DIR,
            env=env,
            text=True,
            stdout=subprocess.PIPE,
        )
        for n in range(CONSUMERS)
    ]
    producers = [
        subprocess.Popen([*python, "produce", *common, str(n)], cwd=PROJECT_DIR, env=env)
        for n in range(PRODUCERS)
    ]
    for process in producers:
        assert process.wait(timeout=DEADLINE_SECONDS) == 0
    (folder / "done").touch()
    received: list[str] = []
    errors: list[str] = []
    for process in consumers:
        output, _ = process.communicate(timeout=DEADLINE_SECONDS)
        report = json.loads(output)
        received += report["received"]
        if report["error"]:
            errors.append(report["error"])
    return received, errors


@pytest.mark.slow
def test_embedded_broker_delivers_every_message_once_to_concurrent_readers(
    tmp_path: Path,
) -> None:
    # The transport Celery uses with the embedded default (kombu's own when none is set).
    received, errors = _run(tmp_path, getattr(settings, "CELERY_BROKER_TRANSPORT", None))
    assert errors == []
    assert len(received) == PRODUCERS * MESSAGES_EACH
    assert len(set(received)) == len(received)
    assert [p.name for p in (tmp_path / "queue").iterdir() if not p.name.startswith(".")] == []


def test_embedded_broker_sets_an_unreadable_message_aside_and_goes_on(tmp_path: Path) -> None:
    from kombu import Connection

    queue_folder = tmp_path / "queue"
    queue_folder.mkdir()
    options = {
        "data_folder_in": str(queue_folder),
        "data_folder_out": str(queue_folder),
        "control_folder": str(tmp_path / "control"),
    }
    # Left by kombu's own transport: a message file created but never filled.
    (queue_folder / "0_00000000-0000-0000-0000-000000000000.race.msg").write_bytes(b"")
    with Connection(
        "filesystem://", transport=settings.CELERY_BROKER_TRANSPORT, transport_options=options
    ) as connection:
        queue = connection.SimpleQueue("race")
        queue.put({"id": "after"})
        message = queue.get(timeout=1)
        message.ack()
    assert message.payload == {"id": "after"}
    assert [p.name for p in (queue_folder / ".unreadable").iterdir()] == [
        "0_00000000-0000-0000-0000-000000000000.race.msg"
    ]


def test_embedded_broker_fans_out_to_bound_queues_until_one_is_deleted(tmp_path: Path) -> None:
    """Remote control (Celery's pidbox) binds queues to fanout exchanges: the table of
    bindings is rewritten atomically and a deleted queue leaves it."""
    from kombu import Connection, Exchange, Queue

    options = {
        "data_folder_in": str(tmp_path / "queue"),
        "data_folder_out": str(tmp_path / "queue"),
        "control_folder": str(tmp_path / "control"),
    }
    (tmp_path / "queue").mkdir()
    broadcast = Exchange("broadcast", type="fanout")
    with Connection(
        "filesystem://", transport=settings.CELERY_BROKER_TRANSPORT, transport_options=options
    ) as connection:
        channel = connection.channel()
        first, second = (Queue(name, broadcast)(channel) for name in ("first", "second"))
        for queue in (first, second):
            queue.declare()
        producer = connection.Producer(channel)
        producer.publish({"n": 1}, exchange=broadcast, declare=[broadcast])
        assert [q.get().payload for q in (first, second)] == [{"n": 1}, {"n": 1}]
        second.delete()
        producer.publish({"n": 2}, exchange=broadcast)
        assert first.get().payload == {"n": 2}
        assert second.get() is None
        table = json.loads((tmp_path / "control" / "broadcast.exchange").read_text())
        assert [entry[2] for entry in table] == ["first"]
