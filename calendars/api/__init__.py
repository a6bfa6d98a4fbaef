"""The REST API of bookings, calendars, schedules and Google accounts (``/api/v1.0/``).

DRF views that translate HTTP only: they authenticate, parse with a serializer, call one
selector or service and map its result or exception to a status. The OpenAPI document is
served by drf-spectacular at ``/api/v1.0/schema/``.
"""
