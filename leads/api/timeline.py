"""``GET /api/v1/leads/<id>/timeline/``: everything that happened to a lead, newest first, keyset-paginated."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, viewsets
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from common.pagination import MAX_PAGE_SIZE
from leads import selectors
from leads.api.activity import HasRolePermission, visible_lead_or_404
from leads.api.serializers import UserBriefSerializer

DEFAULT_PAGE_SIZE = 50


class TimelineEntrySerializer(serializers.Serializer[Any]):
    kind = serializers.ChoiceField(
        choices=["interaction", "stage", "task"], help_text="Which log the entry comes from."
    )
    id = serializers.IntegerField(help_text="Id within its kind.")
    occurred_at = serializers.DateTimeField()
    label = serializers.CharField(  # type: ignore[assignment]  # the API word, not Field.label
        help_text="In the request's language: the event type's name, or what happened."
    )
    type = serializers.CharField(help_text="Interactions: the event-type key. Tasks: the task kind.")
    actor = UserBriefSerializer(allow_null=True)
    properties = serializers.DictField(help_text="Interactions: the event's properties (note, outcome, url…).")
    from_stage = serializers.CharField()
    to_stage = serializers.CharField()
    reason = serializers.CharField()
    title = serializers.CharField(help_text="Tasks: the title.")
    notes = serializers.CharField(help_text="Tasks: the notes.")


class TimelinePageSerializer(serializers.Serializer[Any]):
    next = serializers.URLField(allow_null=True)
    results = TimelineEntrySerializer(many=True)


class TimelineViewSet(viewsets.ViewSet):
    permission_classes = [HasRolePermission]
    required_permission = "leads.view_lead"

    @extend_schema(
        parameters=[
            OpenApiParameter("lead_id", OpenApiTypes.INT, OpenApiParameter.PATH),
            OpenApiParameter("cursor", OpenApiTypes.STR, description="Opaque cursor from `next`."),
            OpenApiParameter("page_size", OpenApiTypes.INT, description=f"Entries per page (max {MAX_PAGE_SIZE})."),
        ],
        responses=TimelinePageSerializer,
    )
    def list(self, request: Request, lead_id: str) -> Response:
        """Interactions, stage changes and completed tasks, newest first; a lead you cannot see is 404."""
        lead = visible_lead_or_404(request, lead_id)
        try:
            size = int(request.query_params.get("page_size", DEFAULT_PAGE_SIZE))
        except ValueError:
            raise ValidationError({"page_size": [_("A whole number is required.")]}) from None
        page = selectors.lead_timeline(
            lead=lead,
            labels=selectors.event_type_labels_for(request),
            cursor=request.query_params.get("cursor") or None,
            page_size=max(1, min(size, MAX_PAGE_SIZE)),
        )
        next_url = None
        if page.next_cursor:
            params = request.query_params.copy()
            params["cursor"] = page.next_cursor
            next_url = request.build_absolute_uri(f"{request.path}?{urlencode(params, doseq=True)}")
        results = TimelineEntrySerializer(page.entries, many=True, context={"request": request}).data
        return Response({"next": next_url, "results": results})
