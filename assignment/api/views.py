"""Assignment endpoints: rules (CRUD, reorder, enable/disable, test), rep profiles, availability, lead decisions, bulk."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any, cast

from django.db import transaction
from django.db.models import Q, QuerySet
from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from assignment import selectors, services
from assignment.api.serializers import (
    AvailabilitySerializer,
    BulkReassignSerializer,
    BulkResultSerializer,
    DecisionSerializer,
    DryRunInputSerializer,
    DryRunSerializer,
    NotificationSerializer,
    ReorderSerializer,
    RepProfileSerializer,
    RepStatsSerializer,
    RuleSerializer,
    SampleLeadSerializer,
    TestResultSerializer,
    decision_data,
    dry_run_data,
)
from assignment.models import AssignmentRule, Notification, RepProfile, Trigger
from leads import selectors as lead_selectors
from leads.api.activity import HasRolePermission, visible_lead_or_404
from users.models import Role, User

LEAD_ID = OpenApiParameter("lead_id", OpenApiTypes.INT, OpenApiParameter.PATH)
HISTORY_LIMIT = 200


class IsManagerOrAdmin(permissions.BasePermission):
    """Routing is the managers' business: rules, profiles, re-runs and bulk reassignment."""

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and cast(User, user).role in (Role.MANAGER, Role.ADMIN))


class RuleViewSet(viewsets.ModelViewSet[AssignmentRule]):
    """Assignment rules, tried in ``position`` order; the first enabled rule that applies decides."""

    serializer_class = RuleSerializer
    permission_classes = [IsManagerOrAdmin]
    pagination_class = None
    filterset_class = None

    def get_queryset(self) -> QuerySet[AssignmentRule]:
        return selectors.rule_list()

    @extend_schema(request=ReorderSerializer, responses=RuleSerializer(many=True))
    @action(detail=False, methods=["post"])
    def reorder(self, request: Request) -> Response:
        """Set the order: the listed rules first, in the order given."""
        data = ReorderSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.rules_reorder(rule_ids=data.validated_data["rule_ids"])
        return Response(RuleSerializer(self.get_queryset(), many=True).data)

    @extend_schema(request=None, responses=RuleSerializer)
    @action(detail=True, methods=["post"])
    def enable(self, request: Request, pk: str) -> Response:
        return self._switch(True)

    @extend_schema(request=None, responses=RuleSerializer)
    @action(detail=True, methods=["post"])
    def disable(self, request: Request, pk: str) -> Response:
        return self._switch(False)

    def _switch(self, enabled: bool) -> Response:
        rule = self.get_object()
        rule.is_enabled = enabled
        services.rule_save(rule=rule)
        return Response(RuleSerializer(rule).data)

    @extend_schema(request=SampleLeadSerializer, responses=TestResultSerializer, operation_id="assignment_rules_test")
    @action(detail=False, methods=["post"], url_path="test")
    def test_all(self, request: Request) -> Response:
        """What the enabled rules would decide for a sample lead now; nothing is saved."""
        return self._test(request, rules=None)

    @extend_schema(request=SampleLeadSerializer, responses=TestResultSerializer, operation_id="assignment_rule_test")
    @action(detail=True, methods=["post"], url_path="test")
    def test_one(self, request: Request, pk: str) -> Response:
        """What this rule alone (enabled or not) would decide for a sample lead now; nothing is saved."""
        return self._test(request, rules=[self.get_object()])

    @extend_schema(request=DryRunInputSerializer, responses=DryRunSerializer)
    @action(detail=False, methods=["post"], url_path="dry-run")
    def dry_run(self, request: Request) -> Response:
        """Replay the last N days of leads you can see through a draft rule set: who would have received what."""
        data = DryRunInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        drafts = data.validated_data.get("rules")
        rules = (
            None if drafts is None else [services.rule_spec_from_data(d, position=i + 1) for i, d in enumerate(drafts)]
        )
        since = timezone.now() - timedelta(days=data.validated_data["days"])
        leads = (
            lead_selectors.lead_visible_to(cast(User, request.user))
            .prefetch_related(None)
            .filter(created_at__gte=since, merged_into__isnull=True)
            .order_by("created_at", "pk")[: services.DRY_RUN_MAX_LEADS]
        )
        result = services.assignment_dry_run(leads=list(leads), rules=rules)
        return Response(DryRunSerializer(dry_run_data(result)).data)

    def _test(self, request: Request, rules: list[AssignmentRule] | None) -> Response:
        data = SampleLeadSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        sample = data.validated_data
        if "lead" in sample:
            lead = visible_lead_or_404(request, sample["lead"])
        else:
            lead = services.sample_lead(sample["fields"], sample.get("attributes", {}))
        decision = services.rule_test(lead=lead, rules=rules, trigger=sample["trigger"])
        return Response(TestResultSerializer(decision_data(decision)).data)


def profiles_visible_to(user: User) -> QuerySet[RepProfile]:
    profiles = selectors.profile_list()
    if user.role == Role.ADMIN:
        return profiles
    return profiles.filter(Q(user__team_id__in=user.managed_team_ids) | Q(user=user))


class RepProfileViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet[RepProfile],
):
    """Rep profiles: capacity, hours, out of office, territories, industries, tier, skills (managers: their teams)."""

    serializer_class = RepProfileSerializer
    permission_classes = [IsManagerOrAdmin]
    pagination_class = None
    filterset_class = None

    queryset = RepProfile.objects.none()  # for schema generation; get_queryset decides

    def get_queryset(self) -> QuerySet[RepProfile]:
        if getattr(self, "swagger_fake_view", False):
            return self.queryset
        return profiles_visible_to(cast(User, self.request.user))

    def perform_create(self, serializer: Any) -> None:
        user = cast(User, self.request.user)
        target: User = serializer.validated_data["user"]
        if user.role != Role.ADMIN and not (target.pk == user.pk or target.team_id in user.managed_team_ids):
            raise ValidationError({"user": ["You can only create profiles for members of your teams."]})
        serializer.save()


class AvailabilityView(APIView):
    """A rep switches their own availability; switching on lets queued leads through at once."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(request=AvailabilitySerializer, responses=RepProfileSerializer)
    def post(self, request: Request) -> Response:
        data = AvailabilitySerializer(data=request.data)
        data.is_valid(raise_exception=True)
        profile = services.availability_set(user=cast(User, request.user), available=data.validated_data["available"])
        return Response(RepProfileSerializer(profile).data)


class BulkReassignView(APIView):
    """A manager reassigns many leads: to one person, or by re-running the rules. Invisible ids are reported."""

    permission_classes = [IsManagerOrAdmin]

    @extend_schema(request=BulkReassignSerializer, responses=BulkResultSerializer)
    def post(self, request: Request) -> Response:
        user = cast(User, request.user)
        data = BulkReassignSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        owner: User | None = data.validated_data.get("owner")
        if owner is not None and not lead_selectors.user_assignable_to(user).filter(pk=owner.pk).exists():
            raise ValidationError({"owner": ["You cannot assign leads to this person."]})
        wanted = set(data.validated_data["lead_ids"])
        visible = set(lead_selectors.lead_visible_to(user).filter(pk__in=wanted).values_list("pk", flat=True))
        counts = services.leads_reassign(lead_ids=sorted(visible), by=user, owner=owner)
        return Response(BulkResultSerializer({**counts, "not_found": sorted(wanted - visible)}).data)


class LeadAssignmentViewSet(viewsets.ViewSet):
    """``/api/v1/leads/<id>/assignments/``: the lead's assignment decisions; ``rerun/`` routes it again."""

    permission_classes = [HasRolePermission]
    required_permission = "leads.view_lead"

    def get_permissions(self) -> Sequence[Any]:
        if self.action == "rerun":
            return [IsManagerOrAdmin()]
        return super().get_permissions()

    @extend_schema(parameters=[LEAD_ID], responses=DecisionSerializer(many=True))
    def list(self, request: Request, lead_id: str) -> Response:
        """Newest first: the rule, strategy, every candidate with load and reason, the winner and why; 404 if not visible."""
        lead = visible_lead_or_404(request, lead_id)
        decisions = selectors.lead_decisions(lead=lead)[:HISTORY_LIMIT]
        return Response(DecisionSerializer(decisions, many=True).data)

    @extend_schema(parameters=[LEAD_ID], request=None, responses={200: DecisionSerializer, 204: None})
    @action(detail=False, methods=["post"])
    def rerun(self, request: Request, lead_id: str) -> Response:
        """Run the rules again for this lead now (manual trigger); 204 when no rule applies."""
        lead = visible_lead_or_404(request, lead_id)
        with transaction.atomic():
            result = services.lead_route(lead=lead, trigger=Trigger.MANUAL, by=cast(User, request.user))
        if result.record is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(DecisionSerializer(result.record).data)


class NotificationViewSet(mixins.ListModelMixin, viewsets.GenericViewSet[Notification]):
    """The caller's own notices (new leads, missed first-touch deadlines), newest first; ``read/`` marks one read."""

    serializer_class = NotificationSerializer
    permission_classes = [permissions.IsAuthenticated]
    pagination_class = None
    filterset_class = None
    queryset = Notification.objects.none()  # for schema generation; get_queryset decides

    def get_queryset(self) -> QuerySet[Notification]:
        if getattr(self, "swagger_fake_view", False):
            return self.queryset
        return selectors.notifications_for(cast(User, self.request.user))[:HISTORY_LIMIT]

    @extend_schema(request=None, responses=NotificationSerializer)
    @action(detail=True, methods=["post"])
    def read(self, request: Request, pk: str) -> Response:
        notice = get_object_or_404(selectors.notifications_for(cast(User, request.user)), pk=pk)
        return Response(NotificationSerializer(services.notification_mark_read(notification=notice)).data)


class RepStatsView(APIView):
    """Fairness and feedback per rep: leads received vs capacity, score sum, conversion, speed to first touch."""

    permission_classes = [IsManagerOrAdmin]

    @extend_schema(
        parameters=[OpenApiParameter("days", OpenApiTypes.INT, description="The period, 1–365 days (default 30).")],
        responses=RepStatsSerializer(many=True),
    )
    def get(self, request: Request) -> Response:
        try:
            days = min(max(int(request.query_params.get("days", 30)), 1), 365)
        except ValueError:
            raise ValidationError({"days": ["A whole number of days."]}) from None
        user = cast(User, request.user)
        people = User.objects.filter(is_active=True)
        if user.role != Role.ADMIN:
            people = people.filter(Q(team_id__in=user.managed_team_ids) | Q(pk=user.pk))
        stats = selectors.rep_stats(users=people, since=timezone.now() - timedelta(days=days))
        rows = [
            {
                **vars(row),
                "capacity": None if row.daily_capacity is None else row.daily_capacity * days,
                "conversion_rate": row.conversion_rate,
            }
            for row in stats
        ]
        return Response(RepStatsSerializer(rows, many=True).data)
