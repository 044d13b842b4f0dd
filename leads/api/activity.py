"""``POST /api/v1/leads/<id>/activities/``: log a call, e-mail, meeting or note on a lead."""

from __future__ import annotations

from typing import Any, cast

from django.http import Http404
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, permissions, serializers, status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from leads import selectors, services
from leads.api.serializers import UserBriefSerializer
from leads.models import Interaction, Lead
from leads.services.activity import ACTIVITY_KINDS, NOTE_MAX_LENGTH, ActivityOutcome
from users.models import User


class HasRolePermission(permissions.BasePermission):
    """The role group must hold ``view.required_permission`` (visibility decides the rows separately)."""

    def has_permission(self, request: Request, view: Any) -> bool:
        return bool(request.user and request.user.is_authenticated and request.user.has_perm(view.required_permission))


def visible_lead_or_404(request: Request, lead_id: Any) -> Lead:
    """The lead from the URL if ``request.user`` may see it; 404 otherwise, exactly like a missing id."""
    try:
        # The tags prefetch of the list selector is not needed here.
        return selectors.lead_visible_to(cast(User, request.user)).prefetch_related(None).get(pk=int(lead_id))
    except (Lead.DoesNotExist, ValueError):
        raise Http404(_("No such lead.")) from None


class ActivityInputSerializer(serializers.Serializer[Any]):
    kind = serializers.ChoiceField(choices=[(k, k) for k in ACTIVITY_KINDS])
    note = serializers.CharField(required=False, allow_blank=True, max_length=NOTE_MAX_LENGTH, trim_whitespace=True)
    outcome = serializers.ChoiceField(choices=ActivityOutcome.choices, required=False, allow_blank=True)
    occurred_at = serializers.DateTimeField(required=False, help_text="When it happened; defaults to now.")


class ActivitySerializer(serializers.ModelSerializer[Interaction]):
    created_by = UserBriefSerializer(read_only=True)
    label = serializers.SerializerMethodField()  # type: ignore[assignment]  # the API word, not Field.label
    lead_stage = serializers.CharField(source="lead.stage", read_only=True)

    class Meta:
        model = Interaction
        fields = ["id", "type", "label", "occurred_at", "properties", "created_by", "lead_stage"]

    def get_label(self, obj: Interaction) -> str:
        return selectors.event_type_labels_for(self.context["request"]).label(obj.type)


class ActivityViewSet(mixins.CreateModelMixin, viewsets.GenericViewSet[Interaction]):
    """Log a sales activity. The owner's first call, e-mail or meeting moves a new lead to contacted."""

    permission_classes = [HasRolePermission]
    required_permission = "leads.add_interaction"
    serializer_class = ActivitySerializer
    queryset = Interaction.objects.none()  # schema only

    @extend_schema(
        parameters=[OpenApiParameter("lead_id", OpenApiTypes.INT, OpenApiParameter.PATH)],
        request=ActivityInputSerializer,
        responses={201: ActivitySerializer},
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        lead = visible_lead_or_404(request, kwargs["lead_id"])
        data = ActivityInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        interaction = services.activity_log(lead=lead, by=cast(User, request.user), **data.validated_data)
        return Response(
            ActivitySerializer(interaction, context={"request": request}).data, status=status.HTTP_201_CREATED
        )
