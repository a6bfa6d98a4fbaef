"""Garbage in reference cycles that reached the oldest generation is collected by the
collector's own schedule once a process has settled (calendars/collector.py), where without
it, it waits until the process has promoted a quarter of its start-up objects."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from calendars.collector import collector_settle


class Node:
    """An object in a reference cycle, like Django's request and its middlewares' closures."""

    def __init__(self) -> None:
        self.me = self


def _old_garbage(count: int) -> list[weakref.ref[Node]]:
    """``count`` cycles promoted to the oldest generation while referenced (a request still
    running during two young collections), then dropped."""
    held = [Node() for _ in range(count)]
    gc.collect(1)  # survivors of the middle generation move to the oldest
    refs = [weakref.ref(node) for node in held]
    del held
    return refs


def _alive(refs: list[weakref.ref[Node]]) -> int:
    return sum(ref() is not None for ref in refs)


def _run_the_process(batches: int) -> list[list[list[None]]]:
    """What a serving process does to the collector: objects made and kept for a while,
    passing through the young generations (``batches`` x 1,000 kept objects, each batch
    promoted), then more made until the collector runs on its own schedule."""
    kept = []
    for _ in range(batches):
        kept.append([[None] for _ in range(1_000)])
        gc.collect(1)
    kept.append([[None] for _ in range(2_000)])  # the automatic collections' turn
    return kept


@pytest.fixture
def collector() -> Iterator[None]:
    # An in-process Celery worker of another test (solo pool) may have settled this process.
    gc.unfreeze()
    gc.collect()
    yield
    gc.unfreeze()
    gc.collect()


def test_old_cyclic_garbage_is_collected_on_schedule_after_settling(collector: None) -> None:
    gc.collect()  # the oldest generation now counts every object of this test process
    start_up = len(gc.get_objects())
    batches = 12  # 14,000 objects promoted: well under a quarter of the process
    if start_up // 4 < (batches + 2) * 1_000 * 2:
        pytest.skip(f"this process holds only {start_up} objects: the control would not hold")
    refs = _old_garbage(100)
    kept = _run_the_process(batches)
    assert _alive(refs) == 100  # the control: without settling, the garbage waits
    del kept, refs

    frozen = collector_settle()
    assert frozen >= start_up // 2  # the start-up objects are out of the collector's scans
    refs = _old_garbage(100)
    kept = _run_the_process(batches)
    assert _alive(refs) == 0
    del kept


def test_gunicorn_workers_settle_once_they_have_loaded_the_application(collector: None) -> None:
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "gunicorn.conf.py"
    spec = importlib.util.spec_from_file_location("gunicorn_conf", path)
    assert spec is not None and spec.loader is not None
    conf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conf)
    before = gc.get_freeze_count()
    conf.post_worker_init(worker=object())
    assert gc.get_freeze_count() > before + 10_000


def test_celery_pool_processes_settle_when_they_start(collector: None) -> None:
    from celery.signals import worker_process_init

    from calendars.celery import _collector_settled

    # Not sent: Celery's Django fix-up also listens, and closes this process's connections.
    assert _collector_settled in worker_process_init._live_receivers(None)
    before = gc.get_freeze_count()
    _collector_settled()
    assert gc.get_freeze_count() > before + 10_000


def test_a_settled_process_collects_in_full_at_most_every_tidy_seconds(
    collector: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from calendars import collector as module

    collector_settle()
    start = 1_000.0
    monkeypatch.setattr(module, "_last_tidy", start)
    refs = _old_garbage(100)
    assert not module.collector_tidy(now=start + module.TIDY_SECONDS - 1)
    assert _alive(refs) == 100  # not due: the garbage waits for the collector's own schedule
    assert module.collector_tidy(now=start + module.TIDY_SECONDS)
    assert _alive(refs) == 0
    refs = _old_garbage(100)
    assert not module.collector_tidy(now=start + module.TIDY_SECONDS + 1)  # counted from the last
    assert _alive(refs) == 100
    assert module.collector_tidy(now=start + 2 * module.TIDY_SECONDS)
    assert _alive(refs) == 0


def test_celery_pool_processes_tidy_after_their_tasks(
    collector: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    from celery.signals import task_postrun

    from calendars import collector as module
    from calendars.celery import _collector_tidied

    assert _collector_tidied in task_postrun._live_receivers(None)
    collector_settle()
    monkeypatch.setattr(module, "_last_tidy", time.monotonic() - module.TIDY_SECONDS)
    refs = _old_garbage(100)

    class Eager:
        class request:
            is_eager = True

    _collector_tidied(task=Eager())
    assert _alive(refs) == 100  # a task run in a web request's process: not a pool's
    _collector_tidied(task=object())
    assert _alive(refs) == 0
