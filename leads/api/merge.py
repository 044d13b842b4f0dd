"""Duplicates and merges: GET /api/v1/duplicates/, POST /api/v1/leads/<id>/merge/, POST /api/v1/merges/<id>/undo/."""

from __future__ import annotations

from typing import Any, cast

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from leads import selectors, services
from leads.models import Lead, LeadMerge
from users.models import User


class LeadBriefSerializer(serializers.ModelSerializer[Lead]):
    class Meta:
        model = Lead
        fields = ["id", "name", "email", "phone", "company", "job_title", "stage", "owner", "created_at"]


class DuplicatePairSerializer(serializers.Serializer[Any]):
    primary = LeadBriefSerializer()
    duplicate = LeadBriefSerializer()
    reasons = serializers.ListField(child=serializers.CharField())


class LeadMergeSerializer(serializers.ModelSerializer[LeadMerge]):
    class Meta:
        model = LeadMerge
        fields = ["id", "primary", "merged", "merged_by", "merged_at", "snapshot", "undone_at", "undone_by"]
        read_only_fields = fields


class MergeRequestSerializer(serializers.Serializer[Any]):
    duplicate_id = serializers.IntegerField(min_value=1)


class MergePermission(permissions.BasePermission):
    """Merging needs ``leads.add_leadmerge``; undoing ``leads.change_leadmerge``; reading ``view``."""

    def has_permission(self, request: Request, view: Any) -> bool:
        perm = getattr(view, "required_perm", "leads.view_leadmerge")
        if getattr(view, "action", None) == "undo":
            perm = "leads.change_leadmerge"
        return bool(request.user and request.user.is_authenticated and request.user.has_perm(perm))


class DuplicateListView(APIView):
    permission_classes = [MergePermission]
    required_perm = "leads.view_leadmerge"

    @extend_schema(
        parameters=[OpenApiParameter("cursor", str), OpenApiParameter("page_size", int)],
        responses=DuplicatePairSerializer(many=True),
    )
    def get(self, request: Request) -> Response:
        try:
            size = max(1, min(int(request.query_params.get("page_size", 50)), 200))
        except ValueError:
            raise serializers.ValidationError({"page_size": ["A whole number is required."]}) from None
        page = selectors.lead_duplicate_pairs(
            user=cast(User, request.user), cursor=request.query_params.get("cursor"), page_size=size
        )
        next_url = None
        if page.next_cursor:
            params = request.query_params.copy()
            params["cursor"] = page.next_cursor
            next_url = request.build_absolute_uri(f"{request.path}?{params.urlencode()}")
        return Response({"next": next_url, "results": DuplicatePairSerializer(page.pairs, many=True).data})


class LeadMergeView(APIView):
    """Merge ``duplicate_id`` into the lead in the URL; both must be visible (else 404)."""

    permission_classes = [MergePermission]
    required_perm = "leads.add_leadmerge"

    @extend_schema(request=MergeRequestSerializer, responses={201: LeadMergeSerializer})
    def post(self, request: Request, lead_id: int) -> Response:
        body = MergeRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        visible = selectors.lead_visible_to(request.user)
        try:
            primary = visible.get(pk=lead_id)
            duplicate = visible.get(pk=body.validated_data["duplicate_id"])
        except Lead.DoesNotExist:
            raise NotFound() from None
        merge = services.lead_merge(primary=primary, duplicate=duplicate, by=cast(User, request.user))
        return Response(LeadMergeSerializer(merge).data, status=status.HTTP_201_CREATED)


class LeadMergeViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet[LeadMerge]):
    serializer_class = LeadMergeSerializer
    permission_classes = [MergePermission]
    queryset = LeadMerge.objects.none()
    keyset_orderings = ("merged_at",)
    keyset_default_ordering = "-merged_at"
    filterset_class = None

    def get_queryset(self) -> QuerySet[LeadMerge]:
        return selectors.merge_visible_to(self.request.user)

    @extend_schema(request=None, responses=LeadMergeSerializer)
    @action(detail=True, methods=["post"])
    def undo(self, request: Request, pk: str | None = None) -> Response:
        merge = services.lead_merge_undo(merge=self.get_object(), by=cast(User, request.user))
        return Response(LeadMergeSerializer(merge).data)
