"""``GET /api/v1/leads/<id>/score/``: a lead's score, grade, the breakdown behind it and its recent history."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from leads.api.activity import HasRolePermission, visible_lead_or_404
from scoring import selectors
from scoring.predictive import selectors as predictive_selectors


class ContributionSerializer(serializers.Serializer[Any]):
    rule = serializers.CharField(help_text="The id of the rule that fired.")
    kind = serializers.ChoiceField(choices=["fit", "behaviour", "negative"])
    points = serializers.FloatField(help_text="Points after decay and cap.")
    count = serializers.IntegerField(help_text="Event rules: how many events counted.")
    reason = serializers.CharField(help_text='In words, e.g. "+10 senior title".')


class HistoryEntrySerializer(serializers.Serializer[Any]):
    score = serializers.IntegerField()
    grade = serializers.CharField()
    at = serializers.DateTimeField()


class FactorSerializer(serializers.Serializer[Any]):
    feature = serializers.CharField(help_text='The feature key, e.g. "attr:plan" or "events:demo_request".')
    label = serializers.CharField(help_text="What it is, in words.")  # type: ignore[assignment]  # the API word, not Field.label
    weight = serializers.FloatField(help_text="Log-odds this fact adds (negative: takes away) for this lead.")
    value = serializers.CharField(required=False, help_text="The lead's value, as the model saw it.")
    value_label = serializers.CharField(
        required=False, help_text='The value in words, in the request\'s language (e.g. "yes" for a 1 of a "has …").'
    )


class PredictionSerializer(serializers.Serializer[Any]):
    probability = serializers.FloatField(allow_null=True, help_text="P(convert) stored on the lead; null until scored.")
    model_version = serializers.IntegerField()
    model_auc = serializers.FloatField(allow_null=True, help_text="The model's held-out AUC.")
    factors = FactorSerializer(many=True, help_text="The facts that move this lead's probability most.")


class LeadScoreSerializer(serializers.Serializer[Any]):
    lead = serializers.IntegerField()
    score = serializers.IntegerField()
    grade = serializers.CharField()
    score_updated_at = serializers.DateTimeField(allow_null=True)
    rule_set_version = serializers.IntegerField(allow_null=True)
    breakdown = ContributionSerializer(many=True)
    history = HistoryEntrySerializer(many=True, help_text="Score and grade changes, newest first.")
    priority = serializers.FloatField(help_text="The queue order: score + 100 × probability (docs/scoring.md).")
    prediction = PredictionSerializer(allow_null=True, help_text="Null while no predictive model is active.")


class LeadScoreViewSet(viewsets.ViewSet):
    permission_classes = [HasRolePermission]
    required_permission = "leads.view_lead"

    @extend_schema(
        parameters=[OpenApiParameter("lead_id", OpenApiTypes.INT, OpenApiParameter.PATH)],
        responses=LeadScoreSerializer,
    )
    def list(self, request: Request, lead_id: str) -> Response:
        """The current score and grade, each rule that fired with its points, recent changes, and the predicted
        conversion probability with the facts behind it; 404 if not visible."""
        lead = visible_lead_or_404(request, lead_id)
        history = selectors.lead_score_history(lead=lead)
        latest = history[0] if history else None
        data = {
            "lead": lead.pk,
            "score": lead.score,
            "grade": lead.grade,
            "score_updated_at": lead.score_updated_at,
            "rule_set_version": latest.rule_set_version if latest else None,
            # The latest history row is the breakdown of the stored score (a row is written on every change).
            "breakdown": selectors.breakdown_explained(latest) if latest else [],
            "history": [{"score": h.score, "grade": h.grade, "at": h.at} for h in history],
            "priority": lead.priority,
            "prediction": predictive_selectors.lead_prediction(lead=lead),
        }
        return Response(LeadScoreSerializer(data).data)
