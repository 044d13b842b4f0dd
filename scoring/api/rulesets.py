"""``/api/v1/scoring/rule-sets/`` and ``/api/v1/scoring/rescore-jobs/``: edit a draft, preview it, apply it.

Applied versions are read-only (every stored score stays explainable by the version that made it):
a change starts with ``POST …/rule-sets/<id>/copy/``, is edited, previewed (``…/preview/``, 202 with a
job: grade changes and the score distribution before and after) and applied (``…/apply/``, 202: the
version becomes active and every lead is rescored in the background, with progress on the job).
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.db.models import Count, Exists, OuterRef, QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from leads.api.activity import HasRolePermission
from scoring import rescore, services
from scoring.models import GradeBand, RescoreJob, RescoreMode, RuleKind, ScoringRule, ScoringRuleSet


def _field_errors(exc: DjangoValidationError) -> ValidationError:
    return ValidationError(exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages})


class ScoringRuleSerializer(serializers.ModelSerializer[ScoringRule]):
    kind = serializers.ChoiceField(choices=RuleKind.choices)
    value = serializers.JSONField(required=False, allow_null=True)
    event_filters = serializers.JSONField(required=False)

    class Meta:
        model = ScoringRule
        fields = ["id", *services.RULE_FIELDS]
        read_only_fields = ["id"]


class GradeBandSerializer(serializers.ModelSerializer[GradeBand]):
    class Meta:
        model = GradeBand
        fields = ["key", "label", "min_score"]


class RuleSetSerializer(serializers.ModelSerializer[ScoringRuleSet]):
    rule_count = serializers.IntegerField(read_only=True)
    editable = serializers.SerializerMethodField(help_text="False once the version has been applied.")

    class Meta:
        model = ScoringRuleSet
        fields = [
            "id", "name", "version", "is_active", "editable", "half_life_days", "mql_threshold", "sql_threshold",
            "notes", "created_at", "rule_count",
        ]  # fmt: skip
        read_only_fields = ["id", "version", "is_active", "created_at"]

    def get_editable(self, obj: ScoringRuleSet) -> bool:
        return not (obj.is_active or getattr(obj, "applied", False))


class RuleSetDetailSerializer(RuleSetSerializer):
    rules = ScoringRuleSerializer(many=True, read_only=True)
    bands = GradeBandSerializer(many=True, read_only=True)

    class Meta(RuleSetSerializer.Meta):
        fields = [*RuleSetSerializer.Meta.fields, "bands", "rules"]


class GradeBandsSerializer(serializers.Serializer[Any]):
    bands = GradeBandSerializer(many=True)


class RescoreJobSerializer(serializers.ModelSerializer[RescoreJob]):
    rule_set_version = serializers.IntegerField(source="rule_set.version", read_only=True)
    percent = serializers.IntegerField(read_only=True)

    class Meta:
        model = RescoreJob
        fields = [
            "id", "rule_set", "rule_set_version", "mode", "status", "total", "processed", "percent",
            "changed_scores", "changed_grades", "stage_moves", "skipped", "summary", "error", "created_at",
            "started_at", "finished_at",
        ]  # fmt: skip
        read_only_fields = fields


class RuleSetViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet[ScoringRuleSet]):
    """Rule set versions; marketing and managers edit drafts, preview and apply them."""

    permission_classes = [HasRolePermission]
    required_permission = "scoring.view_scoringruleset"
    write_permission = "scoring.change_scoringruleset"

    def get_queryset(self) -> QuerySet[ScoringRuleSet]:
        applied = RescoreJob.objects.filter(rule_set=OuterRef("pk"), mode=RescoreMode.APPLY)
        return (
            ScoringRuleSet.objects.annotate(rule_count=Count("rules"), applied=Exists(applied))
            .prefetch_related("bands", "rules")
            .order_by("-version")
        )

    def get_serializer_class(self) -> type[serializers.BaseSerializer[Any]]:
        return RuleSetDetailSerializer if self.action != "list" else RuleSetSerializer

    def _check_write(self, request: Request) -> None:
        if not request.user.has_perm(self.write_permission):
            self.permission_denied(request, message="You may not change scoring rules.")

    @extend_schema(request=RuleSetSerializer, responses=RuleSetDetailSerializer)
    def partial_update(self, request: Request, pk: str | None = None) -> Response:
        """Change a draft's name, default half-life, MQL/SQL thresholds or notes."""
        self._check_write(request)
        rule_set = self.get_object()
        try:
            services.rule_set_update(rule_set=rule_set, data=dict(request.data))
        except DjangoValidationError as exc:
            raise _field_errors(exc) from exc
        return Response(RuleSetDetailSerializer(self.get_queryset().get(pk=rule_set.pk)).data)

    @extend_schema(request=None, responses={201: RuleSetDetailSerializer})
    @action(detail=True, methods=["post"])
    def copy(self, request: Request, pk: str | None = None) -> Response:
        """A new draft version with the same rules, bands and thresholds."""
        self._check_write(request)
        copy = services.rule_set_copy(rule_set=self.get_object(), created_by=request.user)
        return Response(RuleSetDetailSerializer(self.get_queryset().get(pk=copy.pk)).data, status.HTTP_201_CREATED)

    @extend_schema(request=ScoringRuleSerializer, responses={201: ScoringRuleSerializer})
    @action(detail=True, methods=["post"], url_path="rules")
    def add_rule(self, request: Request, pk: str | None = None) -> Response:
        """Add a rule to a draft."""
        self._check_write(request)
        serializer = ScoringRuleSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            rule = services.rule_create(rule_set=self.get_object(), data=dict(serializer.validated_data))
        except DjangoValidationError as exc:
            raise _field_errors(exc) from exc
        return Response(ScoringRuleSerializer(rule).data, status.HTTP_201_CREATED)

    @extend_schema(methods=["PATCH"], request=ScoringRuleSerializer, responses=ScoringRuleSerializer)
    @extend_schema(methods=["DELETE"], request=None, responses={204: None})
    @action(detail=True, methods=["patch", "delete"], url_path=r"rules/(?P<rule_id>\d+)")
    def rule(self, request: Request, pk: str | None = None, rule_id: str | None = None) -> Response:
        """Change or remove one rule of a draft."""
        self._check_write(request)
        rule_set = self.get_object()
        rule = rule_set.rules.filter(pk=int(rule_id or 0)).first()
        if rule is None:
            return Response({"detail": "No such rule in this rule set."}, status.HTTP_404_NOT_FOUND)
        try:
            if request.method == "DELETE":
                services.rule_delete(rule=rule)
                return Response(status=status.HTTP_204_NO_CONTENT)
            serializer = ScoringRuleSerializer(rule, data=request.data, partial=True)
            serializer.is_valid(raise_exception=True)
            rule = services.rule_update(rule=rule, data=dict(serializer.validated_data))
        except DjangoValidationError as exc:
            raise _field_errors(exc) from exc
        return Response(ScoringRuleSerializer(rule).data)

    @extend_schema(request=GradeBandsSerializer, responses=RuleSetDetailSerializer)
    @action(detail=True, methods=["put"])
    def bands(self, request: Request, pk: str | None = None) -> Response:
        """Replace a draft's grade bands (one must start at 0)."""
        self._check_write(request)
        rule_set = self.get_object()
        bands = request.data.get("bands") if isinstance(request.data, dict) else None
        if not isinstance(bands, list):
            raise ValidationError({"bands": ["A list of {key, label, min_score}."]})
        try:
            services.bands_replace(rule_set=rule_set, bands=[b for b in bands if isinstance(b, dict)])
        except DjangoValidationError as exc:
            raise _field_errors(exc) from exc
        return Response(RuleSetDetailSerializer(self.get_queryset().get(pk=rule_set.pk)).data)

    def _job(self, request: Request, mode: str) -> Response:
        self._check_write(request)
        try:
            with transaction.atomic():
                job = rescore.rescore_job_create(rule_set=self.get_object(), mode=mode, created_by=request.user)
        except DjangoValidationError as exc:
            raise _field_errors(exc) from exc
        job.refresh_from_db()
        return Response(RescoreJobSerializer(job).data, status.HTTP_202_ACCEPTED)

    @extend_schema(request=None, responses={202: RescoreJobSerializer})
    @action(detail=True, methods=["post"])
    def preview(self, request: Request, pk: str | None = None) -> Response:
        """Score every lead under this version without writing: grade changes, score distribution before/after."""
        return self._job(request, RescoreMode.PREVIEW)

    @extend_schema(request=None, responses={202: RescoreJobSerializer})
    @action(detail=True, methods=["post"])
    def apply(self, request: Request, pk: str | None = None) -> Response:
        """Make this version active and rescore every lead in the background (progress on the job)."""
        return self._job(request, RescoreMode.APPLY)


class RescoreJobViewSet(viewsets.ReadOnlyModelViewSet[RescoreJob]):
    """Previews and applies, newest first, with their progress and figures."""

    permission_classes = [HasRolePermission]
    required_permission = "scoring.view_scoringruleset"
    serializer_class = RescoreJobSerializer

    def get_queryset(self) -> QuerySet[RescoreJob]:
        return RescoreJob.objects.select_related("rule_set").order_by("-created_at", "-id")
