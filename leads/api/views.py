"""Lead endpoints under /api/v1/leads/: list, create, retrieve, update, delete, stage history."""

from __future__ import annotations

from typing import Any, cast

from django.db.models import QuerySet
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer

from leads import selectors, services
from leads.api.listing import lead_list_representation, lead_list_values
from leads.api.serializers import LeadSerializer, LeadStageChangeSerializer
from leads.filters import LeadApiFilter
from leads.models import SCORE_PATHS, Lead
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
    filterset_class = LeadApiFilter
    permission_classes = [permissions.IsAuthenticated, LeadModelPermissions]
    keyset_orderings = ("score", "priority", "created_at", "last_activity_at")
    keyset_paths = SCORE_PATHS
    keyset_default_ordering = "-created_at"
    queryset = Lead.objects.none()  # for schema generation; get_queryset decides

    def _user(self) -> User:
        # IsAuthenticated has run before any write, so this is never the anonymous user.
        return cast(User, self.request.user)

    def get_queryset(self) -> QuerySet[Lead]:
        visible = selectors.lead_visible_to(self.request.user)
        # A merged lead is only a pointer to its primary: reachable by id, not listed.
        return visible.filter(merged_into__isnull=True) if self.action == "list" else visible

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """The page is read as plain rows and rendered like ``LeadSerializer`` (see ``leads.api.listing``)."""
        queryset = lead_list_values(self.filter_queryset(self.get_queryset()))
        page = self.paginate_queryset(queryset)
        if page is None:
            return Response(lead_list_representation(list(queryset)))
        return self.get_paginated_response(lead_list_representation(page))

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """201 with the new lead, or 200 with the existing lead the e-mail or phone matched (deduplication)."""
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        lead, created = services.lead_upsert(source_label="api", created_by=self._user(), **serializer.validated_data)
        # One read answers both "may this user see it?" and "what is stored?"; a new lead given no tags has none.
        rows = list(lead_list_values(self.get_queryset().filter(pk=lead.pk)))
        if not rows:
            # The person is already a lead this user may not see: the details were added to it; its data stays private.
            return Response(
                {
                    "id": None,
                    "matched_existing": True,
                    "detail": _("This person is already a lead of another team; your details were added to it."),
                },
                status=status.HTTP_200_OK,
            )
        known_tags: dict[int, list[str]] | None = (
            {lead.pk: []} if created and not serializer.validated_data.get("tags") else None
        )
        data = lead_list_representation(rows, tag_names=known_tags)[0]
        return Response(data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)

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
