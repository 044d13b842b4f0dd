"""Lead endpoints under /api/v1/leads/: list, create, retrieve, update, delete, stage history."""

from __future__ import annotations

from typing import Any, cast

from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import permissions, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer

from leads import selectors, services
from leads.api.serializers import LeadSerializer, LeadStageChangeSerializer
from leads.filters import LeadFilter
from leads.models import Lead
from users.models import User


class LeadModelPermissions(permissions.DjangoModelPermissions):
    """Role permissions (Django groups) decide the verbs; visibility has already decided the rows.

    Writes to one lead are checked after the lookup, so a lead the user cannot see answers 404 like a
    missing one; only a visible lead answers 403 (a rep deleting their own lead).
    """

    perms_map = {**permissions.DjangoModelPermissions.perms_map, "GET": ["%(app_label)s.view_%(model_name)s"]}
    object_checked_methods = ("PUT", "PATCH", "DELETE")

    def has_permission(self, request: Request, view: Any) -> bool:
        if getattr(view, "detail", False) and request.method in self.object_checked_methods:
            return bool(request.user and request.user.is_authenticated)
        return super().has_permission(request, view)

    def has_object_permission(self, request: Request, view: Any, obj: Any) -> bool:
        if request.method in self.object_checked_methods:
            return super().has_permission(request, view)
        return True


@extend_schema_view(
    list=extend_schema(
        parameters=[
            OpenApiParameter(
                "attr.<key>", OpenApiTypes.STR, description="Filter on a custom attribute, e.g. attr.plan=enterprise."
            )
        ]
    )
)
class LeadViewSet(viewsets.ModelViewSet[Lead]):
    serializer_class = LeadSerializer
    filterset_class = LeadFilter
    permission_classes = [permissions.IsAuthenticated, LeadModelPermissions]
    keyset_orderings = ("score", "created_at", "last_activity_at")
    keyset_default_ordering = "-created_at"
    queryset = Lead.objects.none()  # for schema generation; get_queryset decides

    def _user(self) -> User:
        # IsAuthenticated has run before any write, so this is never the anonymous user.
        return cast(User, self.request.user)

    def get_queryset(self) -> QuerySet[Lead]:
        return selectors.lead_visible_to(self.request.user)

    def perform_create(self, serializer: BaseSerializer[Lead]) -> None:
        serializer.instance = services.lead_create(created_by=self._user(), **serializer.validated_data)

    def perform_update(self, serializer: BaseSerializer[Lead]) -> None:
        assert serializer.instance is not None
        serializer.instance = services.lead_update(
            lead=serializer.instance, changed_by=self._user(), **serializer.validated_data
        )

    def perform_destroy(self, instance: Lead) -> None:
        services.lead_delete(lead=instance)

    @extend_schema(responses=LeadStageChangeSerializer(many=True))
    @action(detail=True, methods=["get"], url_path="stage-history", pagination_class=None, filterset_class=None)
    def stage_history(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        lead = self.get_object()
        return Response(LeadStageChangeSerializer(selectors.lead_stage_history(lead=lead), many=True).data)
