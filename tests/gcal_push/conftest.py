"""The Google push tests use the shared fixtures of tests/fixtures.py (fake Google server with
push notifications, watched calendars, broker queues and workers)."""
