"""Convoke project package and shared core (calendars, bookings, Google credentials)."""

from calendars.celery import app as celery_app

__all__ = ["celery_app"]
