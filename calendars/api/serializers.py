"""Serializers of the bookings API: input parsing and output shapes (no business rules)."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Any

from django.utils import timezone
from rest_framework import serializers

from calendars.models import (
    Booking,
    BookingStatus,
    BookingTransition,
    Calendar,
    GoogleAccount,
    Language,
    PublishState,
    Schedule,
)

NAME_MAX = 200
NOTE_MAX = 2000


class AwareDateTimeField(serializers.DateTimeField):
    """An ISO 8601 date-time that must carry its UTC offset (no guessing of zones)."""

    default_error_messages = {
        "naive": "Give the time with its UTC offset, for example 2031-03-04T09:00:00+01:00.",
    }

    def to_internal_value(self, value: Any) -> dt.datetime:
        if isinstance(value, str) and len(value) > 64:
            self.fail("invalid", format="ISO 8601")
        parsed = super().to_internal_value(value)
        return parsed

    def enforce_timezone(self, value: dt.datetime) -> dt.datetime:
        if timezone.is_naive(value):
            self.fail("naive")
        return super().enforce_timezone(value)


class TimeZoneField(serializers.CharField):
    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 64)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        value = super().to_internal_value(data)
        if value not in zoneinfo.available_timezones():
            raise serializers.ValidationError(
                "Unknown time zone (use an IANA name such as Europe/Paris)."
            )
        return value


class BookingRequestSerializer(serializers.Serializer):
    """What a bookee sends to ask for a slot."""

    name = serializers.CharField(max_length=NAME_MAX, trim_whitespace=True)
    email = serializers.EmailField(max_length=254)
    start = AwareDateTimeField()
    end = AwareDateTimeField(required=False)
    time_zone = TimeZoneField(required=False, default="UTC")
    language = serializers.ChoiceField(choices=Language.choices, required=False, default="en")
    note = serializers.CharField(
        max_length=NOTE_MAX, required=False, allow_blank=True, default="", trim_whitespace=True
    )

    def validate_name(self, value: str) -> str:
        if any(ord(c) < 32 for c in value):
            raise serializers.ValidationError("The name cannot contain control characters.")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        end = attrs.get("end")
        if end is not None and end <= attrs["start"]:
            raise serializers.ValidationError({"end": "The end must be after the start."})
        return attrs


class BookingRequestResultSerializer(serializers.Serializer):
    """The answer to a bookee: no data of the subscriber beyond what they asked for."""

    status = serializers.ChoiceField(choices=BookingStatus.choices)
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    title = serializers.CharField()


class BookingTransitionSerializer(serializers.ModelSerializer):
    class Meta:
        model = BookingTransition
        fields = ["from_status", "to_status", "source", "at"]


class BookingSerializer(serializers.ModelSerializer):
    schedule: serializers.SlugRelatedField[Schedule] = serializers.SlugRelatedField(
        slug_field="slug", read_only=True
    )
    calendar: serializers.PrimaryKeyRelatedField[Calendar] = serializers.PrimaryKeyRelatedField(
        read_only=True
    )
    publish_state = serializers.ChoiceField(choices=PublishState.choices, read_only=True)

    class Meta:
        model = Booking
        fields = [
            "id",
            "status",
            "publish_state",
            "publish_error",
            "calendar",
            "schedule",
            "title",
            "description",
            "start",
            "end",
            "time_zone",
            "attendee_name",
            "attendee_email",
            "attendee_language",
            "attendee_time_zone",
            "attendee_partstat",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class BookingDetailSerializer(BookingSerializer):
    transitions = BookingTransitionSerializer(many=True, read_only=True)

    class Meta(BookingSerializer.Meta):
        fields = [*BookingSerializer.Meta.fields, "transitions"]
        read_only_fields = fields


class BookingFilterSerializer(serializers.Serializer):
    """Query parameters of the bookings list."""

    status = serializers.MultipleChoiceField(choices=BookingStatus.choices, required=False)
    publish_state = serializers.MultipleChoiceField(choices=PublishState.choices, required=False)
    schedule = serializers.SlugField(required=False, max_length=80)
    calendar = serializers.IntegerField(required=False, min_value=1)
    start_after = AwareDateTimeField(required=False)
    start_before = AwareDateTimeField(required=False)


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()
    code = serializers.CharField(required=False)


class ConflictSerializer(ErrorSerializer):
    """A decision the booking's real state refuses (it may have changed in Google)."""

    status = serializers.ChoiceField(choices=BookingStatus.choices)


class CalendarSerializer(serializers.ModelSerializer):
    class Meta:
        model = Calendar
        fields = ["id", "provider", "display_name", "remote_id", "connected", "is_mailbox"]
        read_only_fields = fields


class ScheduleSerializer(serializers.ModelSerializer):
    calendar: serializers.PrimaryKeyRelatedField[Calendar] = serializers.PrimaryKeyRelatedField(
        read_only=True
    )

    class Meta:
        model = Schedule
        fields = ["slug", "title", "calendar", "auto_confirm", "slot_minutes", "active"]
        read_only_fields = fields


class ScheduleUpdateSerializer(serializers.Serializer):
    title = serializers.CharField(max_length=200, required=False, allow_blank=True)
    calendar = serializers.IntegerField(required=False, min_value=1)
    auto_confirm = serializers.BooleanField(required=False)
    slot_minutes = serializers.IntegerField(required=False, min_value=5, max_value=24 * 60)
    active = serializers.BooleanField(required=False)


class GoogleAccountSerializer(serializers.ModelSerializer):
    class Meta:
        model = GoogleAccount
        fields = ["id", "revoked", "revoked_at", "scopes", "created_at"]
        read_only_fields = fields
