"""Celery tasks of the scheduling app: thin wrappers that call one service."""

from __future__ import annotations

from celery import shared_task

from scheduling.services import refused_callbacks_prune


@shared_task(name="scheduling.tasks.refused_callbacks_prune_task", ignore_result=True)
def refused_callbacks_prune_task() -> int:
    """Periodic (Celery beat, hourly): forget refused callbacks older than a day."""
    return refused_callbacks_prune()
