"""``POST /api/v1/events/`` (event ingestion) and ``GET /api/v1/pipeline/status/`` (pipeline health, staff)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any, cast

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import permissions, serializers, status, viewsets
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from common.normalize import normalize_email
from leads import selectors, services
from leads.api.activity import HasRolePermission
from leads.models import EventType
from leads.services.events import EventIn, IngestResult
from users.models import User

# An event may be late (any time in the past) but not from the future beyond clock skew.
MAX_FUTURE = timedelta(days=1)


class EventSerializer(serializers.Serializer[Any]):
    """One event. Name the lead by ``lead_id``, ``email`` or an anonymous ``visitor_id`` (first one given wins)."""

    lead_id = serializers.IntegerField(required=False, min_value=1)
    email = serializers.CharField(required=False, allow_blank=True, max_length=254)
    visitor_id = serializers.CharField(required=False, allow_blank=True, max_length=100)
    type = serializers.CharField(max_length=50)
    occurred_at = serializers.DateTimeField()
    properties = serializers.JSONField(required=False, default=dict)
    external_id = serializers.CharField(required=False, allow_null=True, allow_blank=True, max_length=200)

    def validate_email(self, value: str) -> str:
        try:
            return normalize_email(value)
        except Exception:  # Django's ValidationError: answered as this field's error
            raise ValidationError(_("Enter a valid e-mail address.")) from None

    def validate_type(self, value: str) -> str:
        if value not in self.context["event_types"]:
            raise ValidationError(_("Unknown event type “%(type)s”.") % {"type": value})
        return value

    def validate_occurred_at(self, value: Any) -> Any:
        if value > self.context["now"] + MAX_FUTURE:
            raise ValidationError(_("More than one day in the future."))
        return value

    def validate_properties(self, value: Any) -> Any:
        if not isinstance(value, dict):
            raise ValidationError(_("Must be a JSON object."))
        limit = settings.LEADCRM_EVENTS_MAX_PROPERTIES_BYTES
        if len(json.dumps(value, ensure_ascii=False).encode()) > limit:
            raise ValidationError(_("Larger than %(limit)s bytes.") % {"limit": limit})
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not (attrs.get("lead_id") or attrs.get("email") or attrs.get("visitor_id")):
            raise ValidationError({"lead": [_("Give lead_id, email or visitor_id.")]})
        return attrs


IngestResultSerializer = inline_serializer(
    "EventIngestResult",
    {
        "accepted": serializers.IntegerField(),
        "duplicate": serializers.IntegerField(),
        "rejected": serializers.IntegerField(),
        "errors": serializers.ListField(child=serializers.DictField()),
    },
)


class EventViewSet(viewsets.ViewSet):
    """Ingest interaction events: one object or a list of up to 1,000; good events are stored even if others fail."""

    permission_classes = [HasRolePermission]
    required_permission = "leads.add_interaction"

    @extend_schema(request=EventSerializer(many=True), responses={202: IngestResultSerializer})
    def create(self, request: Request) -> Response:
        items = request.data if isinstance(request.data, list) else [request.data]
        limit = settings.LEADCRM_EVENTS_MAX_BATCH
        if len(items) > limit:
            raise ValidationError({"non_field_errors": [_("At most %(limit)s events per request.") % {"limit": limit}]})
        if not items:
            raise ValidationError({"non_field_errors": [_("No events.")]})
        context = {
            "event_types": set(EventType.objects.filter(is_active=True).values_list("key", flat=True)),
            "now": timezone.now(),
        }
        result = IngestResult()
        events: list[EventIn] = []
        # One serializer validates every item: building its fields costs more than validating an event.
        serializer = EventSerializer(context=context)
        for index, item in enumerate(items):
            if not isinstance(item, dict):
                result.reject(index, {"non_field_errors": [str(_("Each event must be a JSON object."))]})
                continue
            try:
                data = serializer.run_validation(item)
            except ValidationError as exc:
                result.reject(index, cast(dict[str, Any], exc.detail))
                continue
            events.append(
                EventIn(
                    index=index,
                    type=data["type"],
                    occurred_at=data["occurred_at"],
                    properties=data.get("properties") or {},
                    lead_id=data.get("lead_id"),
                    email=data.get("email") or "",
                    visitor_id=(data.get("visitor_id") or "").strip(),
                    external_id=(data.get("external_id") or "").strip() or None,
                )
            )
        if events:
            services.events_ingest(user=cast(User, request.user), events=events, result=result)
        result.errors.sort(key=lambda e: e["index"])
        return Response(
            {
                "accepted": result.accepted,
                "duplicate": result.duplicate,
                "rejected": result.rejected,
                "errors": result.errors,
            },
            status=status.HTTP_202_ACCEPTED,
        )


class PipelineStatusViewSet(viewsets.ViewSet):
    """Pipeline health for staff: queue depth, dirty leads, oldest dirty age, throughput, failures, heartbeat."""

    permission_classes = [permissions.IsAdminUser]  # is_staff: admins and staff

    @extend_schema(
        responses=inline_serializer(
            "PipelineStatus",
            {
                "queue_depth": serializers.IntegerField(allow_null=True),
                "dirty_leads": serializers.IntegerField(),
                "oldest_dirty_age_s": serializers.FloatField(allow_null=True),
                "events_last_minute": serializers.IntegerField(),
                "leads_last_minute": serializers.IntegerField(),
                "failures_last_hour": serializers.IntegerField(),
                "last_heartbeat": serializers.CharField(allow_null=True),
            },
        )
    )
    def list(self, request: Request) -> Response:
        return Response(selectors.pipeline_status())
