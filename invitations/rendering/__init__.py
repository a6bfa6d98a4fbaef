"""Wording helpers for emails: dates and times, recurrence rules, occurrences."""
