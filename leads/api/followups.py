"""``/api/v1/tasks/``: follow-up tasks on leads — list with filters, create, update, complete, reopen."""

from __future__ import annotations

from typing import Any, cast

import django_filters
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer

from leads import selectors, services
from leads.api.activity import HasRolePermission
from leads.api.serializers import UserBriefSerializer
from leads.models import Lead, Task, TaskKind
from leads.services.activity import NOTE_MAX_LENGTH
from users.models import User


class TaskFilter(django_filters.FilterSet):
    assignee = django_filters.NumberFilter(field_name="assignee_id", help_text="Assignee user id.")
    mine = django_filters.BooleanFilter(method="filter_mine", help_text="Only tasks assigned to me.")
    lead = django_filters.NumberFilter(field_name="lead_id")
    status = django_filters.ChoiceFilter(
        choices=[("open", _("Open")), ("done", _("Done"))], method="filter_status", help_text="open or done."
    )
    overdue = django_filters.BooleanFilter(method="filter_overdue", help_text="Open and past due.")
    kind = django_filters.ChoiceFilter(choices=TaskKind.choices)
    due_after = django_filters.IsoDateTimeFilter(field_name="due_at", lookup_expr="gte")
    due_before = django_filters.IsoDateTimeFilter(field_name="due_at", lookup_expr="lt")

    class Meta:
        model = Task
        fields: list[str] = []

    def filter_mine(self, queryset: QuerySet[Task], name: str, value: bool | None) -> QuerySet[Task]:
        if value is None:
            return queryset
        user_id = self.request.user.pk if self.request else None
        return queryset.filter(assignee_id=user_id) if value else queryset.exclude(assignee_id=user_id)

    def filter_status(self, queryset: QuerySet[Task], name: str, value: str) -> QuerySet[Task]:
        if value == "open":
            return queryset.filter(done_at__isnull=True)
        if value == "done":
            return queryset.filter(done_at__isnull=False)
        return queryset

    def filter_overdue(self, queryset: QuerySet[Task], name: str, value: bool | None) -> QuerySet[Task]:
        if value is None:
            return queryset
        overdue = Q(done_at__isnull=True, due_at__lt=timezone.now())
        return queryset.filter(overdue) if value else queryset.exclude(overdue)


class TaskSerializer(serializers.ModelSerializer[Task]):
    lead = serializers.PrimaryKeyRelatedField(queryset=Lead.objects.none())
    lead_name = serializers.CharField(source="lead.name", read_only=True)
    assignee = serializers.PrimaryKeyRelatedField(queryset=User.objects.filter(is_active=True), required=False)
    assignee_detail = UserBriefSerializer(source="assignee", read_only=True)
    is_done = serializers.SerializerMethodField()
    is_overdue = serializers.SerializerMethodField()

    class Meta:
        model = Task
        fields = [
            "id", "lead", "lead_name", "title", "kind", "due_at", "assignee", "assignee_detail", "notes",
            "done_at", "is_done", "is_overdue", "created_at",
        ]  # fmt: skip
        read_only_fields = ["done_at", "created_at"]
        extra_kwargs: dict[str, dict[str, Any]] = {"notes": {"max_length": NOTE_MAX_LENGTH}}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        request = self.context.get("request")
        if request is not None:
            # Only a lead the user can see may be named: any other id reads as "does not exist".
            self.fields["lead"].queryset = selectors.lead_visible_to(request.user).prefetch_related(None)  # type: ignore[attr-defined]
            # Likewise an assignee outside the people the user works with reads as "does not exist", so
            # the error wording cannot be used to probe which user ids exist in other teams.
            if isinstance(request.user, User):
                self.fields["assignee"].queryset = selectors.user_assignable_to(request.user)  # type: ignore[attr-defined]
        if self.instance is not None and not isinstance(self.instance, list | QuerySet):
            self.fields["lead"].read_only = True  # a task does not move between leads

    def get_is_done(self, obj: Task) -> bool:
        return obj.done_at is not None

    def get_is_overdue(self, obj: Task) -> bool:
        return obj.done_at is None and obj.due_at < timezone.now()


class TaskCompleteSerializer(serializers.Serializer[Any]):
    note = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=NOTE_MAX_LENGTH,
        help_text="What happened; on a call or meeting it is logged as that activity on the lead.",
    )


class TaskViewSet(
    mixins.ListModelMixin,
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet[Task],
):
    """Tasks I am given plus those on leads I can see. A task on an invisible lead is 404."""

    serializer_class = TaskSerializer
    filterset_class = TaskFilter
    permission_classes = [HasRolePermission]
    keyset_orderings = ("due_at", "created_at")
    keyset_default_ordering = "due_at"
    queryset = Task.objects.none()  # schema only

    @property
    def required_permission(self) -> str:
        # Reading follows lead visibility; writing a task is planning an interaction.
        return "leads.view_lead" if self.request.method in ("GET", "HEAD", "OPTIONS") else "leads.add_interaction"

    def _user(self) -> User:
        return cast(User, self.request.user)

    def get_queryset(self) -> QuerySet[Task]:
        return selectors.task_visible_to(self.request.user)

    def perform_create(self, serializer: BaseSerializer[Task]) -> None:
        data = dict(serializer.validated_data)
        data.setdefault("assignee", self._user())
        serializer.instance = services.task_create(created_by=self._user(), **data)

    def perform_update(self, serializer: BaseSerializer[Task]) -> None:
        assert serializer.instance is not None
        data = dict(serializer.validated_data)
        data.pop("lead", None)
        serializer.instance = services.task_update(task=serializer.instance, by=self._user(), **data)

    @extend_schema(request=TaskCompleteSerializer, responses=TaskSerializer)
    @action(detail=True, methods=["post"], filterset_class=None)
    def complete(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        task = self.get_object()
        body = TaskCompleteSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        task = services.task_complete(task=task, by=self._user(), note=body.validated_data.get("note", ""))
        return Response(TaskSerializer(task, context=self.get_serializer_context()).data)

    @extend_schema(request=None, responses=TaskSerializer)
    @action(detail=True, methods=["post"], filterset_class=None)
    def reopen(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        task = services.task_reopen(task=self.get_object(), by=self._user())
        return Response(TaskSerializer(task, context=self.get_serializer_context()).data)
