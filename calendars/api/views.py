"""REST views of bookings, calendars, schedules and Google accounts.

Authentication is the project default (session or token); a subscriber only ever reaches
their own rows, so another subscriber's booking is a 404. The one public endpoint, a bookee's
booking request, has no authentication, is throttled per client address, and answers
without revealing the subscriber's data.
"""

from __future__ import annotations

import logging
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from calendars import selectors, services
from calendars.api import serializers as s
from calendars.api.throttles import BookingRequestThrottle
from calendars.models import Booking, Schedule, TransitionSource, User

logger = logging.getLogger(__name__)

SLOT_TAKEN = "This slot is no longer available. Please choose another time."
SLOT_BUSY = "The organizer is not available at this time. Please choose another time."
SCHEDULE_UNAVAILABLE = "This booking page cannot take bookings right now. Please try again later."
NOT_FOUND = "Not found."


def _error(detail: str, code: str, http_status: int, **headers: str) -> Response:
    return Response({"detail": detail, "code": code}, status=http_status, headers=headers or None)


def _user(request: Request) -> User:
    user = request.user
    assert isinstance(user, User)
    return user


class BookingPagination(LimitOffsetPagination):
    default_limit = 50
    max_limit = 200


# --- Public -------------------------------------------------------------------------------------


class BookingRequestView(APIView):
    """``POST /api/v1.0/schedules/{slug}/bookings/``: a bookee asks for a slot."""

    authentication_classes: list[type] = []
    permission_classes = [AllowAny]
    throttle_classes = [BookingRequestThrottle]

    @extend_schema(
        operation_id="booking_request",
        summary="Request a slot on a booking schedule (public)",
        request=s.BookingRequestSerializer,
        responses={
            201: s.BookingRequestResultSerializer,
            400: OpenApiResponse(description="Invalid input, with a message per field."),
            404: s.ErrorSerializer,
            409: s.ErrorSerializer,
            429: s.ErrorSerializer,
            503: s.ErrorSerializer,
        },
        auth=[],
    )
    def post(self, request: Request, slug: str) -> Response:
        try:
            schedule = selectors.schedule_public_get(slug=slug)
        except Schedule.DoesNotExist:
            return _error(NOT_FOUND, "not_found", status.HTTP_404_NOT_FOUND)
        form = s.BookingRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        try:
            booking = services.booking_request(
                schedule_id=schedule.pk,
                attendee_name=data["name"],
                attendee_email=data["email"],
                start=data["start"],
                end=data.get("end"),
                attendee_language=data["language"],
                attendee_time_zone=data["time_zone"],
                description=data["note"],
            )
        except Schedule.DoesNotExist:
            return _error(NOT_FOUND, "not_found", status.HTTP_404_NOT_FOUND)
        except services.BookingRequestInvalid as exc:
            return Response({exc.field: [exc.message]}, status=status.HTTP_400_BAD_REQUEST)
        except services.SlotUnavailable as exc:
            message = SLOT_BUSY if exc.reason == "busy" else SLOT_TAKEN
            return _error(message, "slot_unavailable", status.HTTP_409_CONFLICT)
        except services.ScheduleUnavailable as exc:
            headers = (
                {"Retry-After": str(exc.retry_after_seconds)} if exc.retry_after_seconds else {}
            )
            return _error(
                SCHEDULE_UNAVAILABLE,
                "schedule_unavailable",
                status.HTTP_503_SERVICE_UNAVAILABLE,
                **headers,
            )
        result = s.BookingRequestResultSerializer(
            {
                "status": booking.status,
                "start": booking.start,
                "end": booking.end,
                "title": booking.title,
            }
        )
        return Response(result.data, status=status.HTTP_201_CREATED)


# --- Bookings -----------------------------------------------------------------------------------


class BookingListView(generics.ListAPIView):
    """``GET /api/v1.0/bookings/``: the subscriber's bookings, soonest first."""

    serializer_class = s.BookingSerializer
    pagination_class = BookingPagination
    permission_classes = [IsAuthenticated]

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "status", OpenApiTypes.STR, many=True, enum=[c[0] for c in s.BookingStatus.choices]
            ),
            OpenApiParameter(
                "publish_state",
                OpenApiTypes.STR,
                many=True,
                enum=[c[0] for c in s.PublishState.choices],
            ),
            OpenApiParameter("schedule", OpenApiTypes.STR, description="A schedule's slug."),
            OpenApiParameter("calendar", OpenApiTypes.INT, description="A calendar's id."),
            OpenApiParameter("start_after", OpenApiTypes.DATETIME),
            OpenApiParameter("start_before", OpenApiTypes.DATETIME),
        ]
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    def get_queryset(self) -> Any:
        form = s.BookingFilterSerializer(data=self.request.query_params)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        filters = selectors.BookingFilters(
            statuses=tuple(sorted(data.get("status", ()))),
            publish_states=tuple(sorted(data.get("publish_state", ()))),
            schedule_slug=data.get("schedule"),
            calendar_id=data.get("calendar"),
            start_after=data.get("start_after"),
            start_before=data.get("start_before"),
        )
        return selectors.booking_list(user=_user(self.request), filters=filters)


class BookingDetailView(APIView):
    """``GET /api/v1.0/bookings/{id}/``: one booking with its recorded transitions."""

    permission_classes = [IsAuthenticated]

    @extend_schema(responses={200: s.BookingDetailSerializer, 404: s.ErrorSerializer})
    def get(self, request: Request, booking_id: int) -> Response:
        try:
            booking = selectors.booking_get(user=_user(request), booking_id=booking_id)
        except Booking.DoesNotExist:
            return _error(NOT_FOUND, "not_found", status.HTTP_404_NOT_FOUND)
        return Response(s.BookingDetailSerializer(booking).data)


PAST_TENSE = {"confirm": "confirmed", "deny": "denied", "cancel": "cancelled"}


class BookingActionView(APIView):
    """``POST /api/v1.0/bookings/{id}/confirm|deny|cancel/``. Repeating an action is harmless.

    The booking is first brought up to date with its Google event, so a change made in Google
    before the call wins: the call then answers 409 with the booking's real ``status``."""

    permission_classes = [IsAuthenticated]
    action_name = "confirm"

    @extend_schema(
        request=None,
        responses={
            200: s.BookingDetailSerializer,
            404: s.ErrorSerializer,
            409: s.ConflictSerializer,
        },
    )
    def post(self, request: Request, booking_id: int) -> Response:
        user = _user(request)
        if not Booking.objects.filter(organizer=user, pk=booking_id).exists():
            return _error(NOT_FOUND, "not_found", status.HTTP_404_NOT_FOUND)
        try:
            services.booking_decide(
                booking_id=booking_id,
                decision=self.action_name,
                source=TransitionSource.API,
                detail={"user": user.pk},
            )
        except services.BookingTransitionError as exc:
            return Response(
                {
                    "detail": f"This booking is {exc.from_status}; "
                    f"it cannot be {PAST_TENSE[self.action_name]}.",
                    "code": "invalid_transition",
                    "status": exc.from_status,
                },
                status=status.HTTP_409_CONFLICT,
            )
        booking = selectors.booking_get(user=user, booking_id=booking_id)
        return Response(s.BookingDetailSerializer(booking).data)


# --- Calendars, schedules, Google accounts --------------------------------------------------------


class CalendarListView(generics.ListAPIView):
    """``GET /api/v1.0/calendars/``: the subscriber's calendars (CalDAV and Google)."""

    serializer_class = s.CalendarSerializer
    permission_classes = [IsAuthenticated]

    def get_queryset(self) -> Any:
        return selectors.calendar_list(user=_user(self.request))


class ScheduleListView(generics.ListAPIView):
    """``GET /api/v1.0/schedules/``: the subscriber's booking schedules."""

    serializer_class = s.ScheduleSerializer
    permission_classes = [IsAuthenticated]

    def get_queryset(self) -> Any:
        return selectors.schedule_list(user=_user(self.request))


class ScheduleDetailView(APIView):
    """``GET/PATCH /api/v1.0/schedules/{slug}/``. Changing the calendar moves its watch."""

    permission_classes = [IsAuthenticated]

    @extend_schema(responses={200: s.ScheduleSerializer, 404: s.ErrorSerializer})
    def get(self, request: Request, slug: str) -> Response:
        try:
            schedule = selectors.schedule_get(user=_user(request), slug=slug)
        except Schedule.DoesNotExist:
            return _error(NOT_FOUND, "not_found", status.HTTP_404_NOT_FOUND)
        return Response(s.ScheduleSerializer(schedule).data)

    @extend_schema(
        request=s.ScheduleUpdateSerializer,
        responses={
            200: s.ScheduleSerializer,
            400: OpenApiResponse(description="Invalid input."),
            404: s.ErrorSerializer,
        },
    )
    def patch(self, request: Request, slug: str) -> Response:
        try:
            schedule = selectors.schedule_get(user=_user(request), slug=slug)
        except Schedule.DoesNotExist:
            return _error(NOT_FOUND, "not_found", status.HTTP_404_NOT_FOUND)
        form = s.ScheduleUpdateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        changes = dict(form.validated_data)
        if "calendar" in changes:
            changes["calendar_id"] = changes.pop("calendar")
        try:
            schedule = services.schedule_update(schedule_id=schedule.pk, changes=changes)
        except services.ScheduleUpdateInvalid as exc:
            return Response({exc.field: [exc.message]}, status=status.HTTP_400_BAD_REQUEST)
        return Response(s.ScheduleSerializer(schedule).data)


class GoogleAccountListView(generics.ListAPIView):
    """``GET /api/v1.0/google-accounts/``: the subscriber's Google connections."""

    serializer_class = s.GoogleAccountSerializer
    permission_classes = [IsAuthenticated]

    def get_queryset(self) -> Any:
        return selectors.google_account_list(user=_user(self.request))
