"""``/api/v1/scoring/model/``: the predictive model's quality and history; ``train/`` queues a training."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from scoring.models import PredictiveModel
from scoring.predictive import policy, selectors, services


class PredictivePermission(permissions.BasePermission):
    """Reading needs ``scoring.view_predictivemodel`` (marketing, managers, admins); training needs
    ``scoring.train_predictivemodel`` (managers, admins)."""

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        needed = "scoring.train_predictivemodel" if view.action == "train" else "scoring.view_predictivemodel"
        return bool(user and user.is_authenticated and user.has_perm(needed))


class PredictiveModelSerializer(serializers.ModelSerializer[PredictiveModel]):
    requested_by = serializers.CharField(source="requested_by.username", allow_null=True, default=None)

    class Meta:
        model = PredictiveModel
        fields = [
            "id", "version", "status", "is_active", "message", "trigger", "requested_by",
            "created_at", "started_at", "finished_at",
            "n_positive", "n_negative", "n_train", "n_test", "auc", "log_loss", "cv_auc", "previous_auc",
            "top_factors", "features", "params", "leads_scored", "scored_at",
        ]  # fmt: skip
        read_only_fields = fields


class ModelOverviewSerializer(serializers.Serializer[Any]):
    active = PredictiveModelSerializer(allow_null=True)
    history = PredictiveModelSerializer(many=True, help_text="The latest trainings, newest first.")
    converted = serializers.IntegerField(help_text="Leads with a known positive outcome.")
    lost = serializers.IntegerField(help_text="Leads lost or disqualified.")
    can_train = serializers.BooleanField()
    refusal = serializers.CharField(allow_null=True, help_text="Why training would be refused now.")


class PredictiveModelViewSet(viewsets.ViewSet):
    permission_classes = [PredictivePermission]

    @extend_schema(responses=ModelOverviewSerializer)
    def list(self, request: Request) -> Response:
        """The active model's held-out AUC and log-loss, its top factors, and the history of trainings."""
        converted, lost = selectors.outcome_counts()
        reason = policy.refusal(positives=converted, negatives=lost)
        data = {
            "active": selectors.predictive_model_active(),
            "history": selectors.predictive_model_history(),
            "converted": converted,
            "lost": lost,
            "can_train": reason is None,
            "refusal": reason,
        }
        return Response(ModelOverviewSerializer(data).data)

    @extend_schema(request=None, responses={202: PredictiveModelSerializer})
    @action(detail=False, methods=["post"])
    def train(self, request: Request) -> Response:
        """Queue a training (202 with its row); 400 with the reason when too few outcomes are known."""
        try:
            row = services.predictive_training_request(requested_by=request.user)
        except policy.NotEnoughData as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        return Response(PredictiveModelSerializer(row).data, status=status.HTTP_202_ACCEPTED)
