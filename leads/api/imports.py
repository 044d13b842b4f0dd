"""Import endpoints under /api/v1/imports/: upload (202), preview, list, status, errors.csv, undo."""

from __future__ import annotations

import json
from typing import Any, cast

from django.db.models import QuerySet
from django.http import StreamingHttpResponse
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import mixins, permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from common.csv_safe import csv_safe_lines
from leads import selectors, services
from leads.imports.mapping import TARGETS
from leads.models import Campaign, ImportJob, OnDuplicate, SourceChannel
from leads.services.imports import import_error_rows, import_file_headers
from users.models import User


@extend_schema_field(OpenApiTypes.OBJECT)
class JSONObjectField(serializers.Field):
    """A JSON object sent as a multipart text part (or as an object in a JSON body)."""

    default_error_messages = {"invalid": _("Send a JSON object: {{column header: lead field}}.")}

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if isinstance(data, str):
            try:
                data = json.loads(data) if data.strip() else {}
            except ValueError:
                self.fail("invalid")
        if not isinstance(data, dict):
            self.fail("invalid")
        return cast(dict[str, Any], data)

    def to_representation(self, value: Any) -> Any:
        return value


class TagListField(serializers.ListField):
    """Tags as repeated form fields or one comma-separated value."""

    child = serializers.CharField(max_length=50)

    def to_internal_value(self, data: Any) -> list[str]:
        if hasattr(data, "getlist"):
            data = data.getlist(self.field_name)
        if isinstance(data, str):
            data = [data]
        if isinstance(data, list):
            data = [part.strip() for item in data for part in str(item).split(",") if part.strip()]
        return cast(list[str], super().to_internal_value(data))

    def get_value(self, dictionary: Any) -> Any:
        if hasattr(dictionary, "getlist") and self.field_name in dictionary:
            return dictionary.getlist(self.field_name)
        return super().get_value(dictionary)


class ImportPreviewInputSerializer(serializers.Serializer):
    file = serializers.FileField()
    mapping = JSONObjectField(required=False)


class ImportCreateSerializer(serializers.Serializer):
    file = serializers.FileField()
    mapping = JSONObjectField(required=False)
    campaign = serializers.PrimaryKeyRelatedField(queryset=Campaign.objects.all(), required=False, allow_null=True)
    source = serializers.ChoiceField(choices=SourceChannel.choices, default=SourceChannel.IMPORT)  # type: ignore[assignment]
    tags = TagListField(required=False)
    on_duplicate = serializers.ChoiceField(choices=OnDuplicate.choices, default=OnDuplicate.SKIP)


class ImportJobSerializer(serializers.ModelSerializer[ImportJob]):
    created_by: serializers.StringRelatedField[Any] = serializers.StringRelatedField()
    progress = serializers.SerializerMethodField()
    errors_url = serializers.SerializerMethodField()

    class Meta:
        model = ImportJob
        fields = [
            "id", "original_filename", "status", "mapping", "campaign", "source", "tags", "on_duplicate",
            "encoding", "delimiter", "total", "processed", "created", "updated", "skipped", "failed",
            "progress", "error", "errors_url", "created_by", "created_at", "started_at", "finished_at",
        ]  # fmt: skip
        read_only_fields = fields

    def get_progress(self, job: ImportJob) -> float:
        """Percent done, 0–100 (100 once finished, even for a file whose total was an estimate)."""
        if job.status in ("done", "undone"):
            return 100.0
        # A workbook's total is its declared size, which a writer may have got wrong: never past 100.
        return min(100.0, round(100.0 * job.processed / job.total, 1)) if job.total else 0.0

    def get_errors_url(self, job: ImportJob) -> str:
        return reverse("import-errors-csv", kwargs={"pk": job.pk})


class ImportPreviewSerializer(serializers.Serializer):
    kind = serializers.CharField()
    encoding = serializers.CharField()
    delimiter = serializers.CharField()
    headers = serializers.ListField(child=serializers.CharField())
    mapping = serializers.DictField(child=serializers.CharField(allow_blank=True))
    rows = serializers.ListField(child=serializers.DictField())
    targets = serializers.DictField(child=serializers.CharField())


class ImportPermissions(permissions.DjangoModelPermissions):
    """Viewing needs view_importjob; upload and preview add_importjob; undo change_importjob."""

    perms_map = {
        **permissions.DjangoModelPermissions.perms_map,
        "GET": ["%(app_label)s.view_%(model_name)s"],
    }

    def has_permission(self, request: Request, view: Any) -> bool:
        if getattr(view, "action", None) == "undo":
            user = request.user
            return bool(user and user.is_authenticated and user.has_perm("leads.change_importjob"))
        return super().has_permission(request, view)


class ImportViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet[ImportJob]):
    serializer_class = ImportJobSerializer
    permission_classes = [permissions.IsAuthenticated, ImportPermissions]
    parser_classes = [MultiPartParser, FormParser]
    queryset = ImportJob.objects.none()  # for schema generation and the permission class; get_queryset decides
    filterset_class = None
    filter_backends: list[Any] = []

    def _user(self) -> User:
        return cast(User, self.request.user)

    def get_queryset(self) -> QuerySet[ImportJob]:
        return selectors.import_jobs_visible_to(self._user())

    @extend_schema(request=ImportCreateSerializer, responses={202: ImportJobSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = ImportCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        job = services.import_create(by=self._user(), **serializer.validated_data)
        return Response(ImportJobSerializer(job).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=ImportPreviewInputSerializer, responses=ImportPreviewSerializer)
    @action(detail=False, methods=["post"], url_path="preview")
    def preview(self, request: Request) -> Response:
        serializer = ImportPreviewInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        preview = services.import_preview(**serializer.validated_data)
        return Response(
            {
                "kind": preview.kind,
                "encoding": preview.encoding,
                "delimiter": preview.delimiter,
                "headers": preview.headers,
                "mapping": preview.mapping,
                "rows": [{"line": line, "cells": cells} for line, cells in preview.rows],
                "targets": {key: str(label) for key, label in TARGETS.items()},
            }
        )

    @extend_schema(responses={(200, "text/csv"): OpenApiTypes.STR})
    def errors_csv(self, request: Request, *args: Any, **kwargs: Any) -> StreamingHttpResponse:
        job = self.get_object()
        response = StreamingHttpResponse(import_errors_csv(job), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="import-{job.pk}-errors.csv"'
        return response

    @extend_schema(request=None, responses={202: ImportJobSerializer})
    @action(detail=True, methods=["post"], url_path="undo")
    def undo(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Start undoing a finished or failed import: 202 with the job, ``undoing`` until a worker is done."""
        job = services.import_undo_start(job=self.get_object(), by=self._user())
        return Response(ImportJobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


def import_errors_csv(job: ImportJob) -> Any:
    """errors.csv lines: line, reason, then the row's original cells under the file's own headers."""
    headers = import_file_headers(job=job)
    extra: list[str] = []
    # Cells beyond the file's header are stored with the record (``Row.has_extra_cells``) under their own labels.
    for row in selectors.import_row_errors(job=job).exclude(row={}).values_list("row", flat=True).iterator(2000):
        extra += [key for key in row if key not in headers and key not in extra]
    columns = headers + extra

    def rows() -> Any:
        yield ["line", "reason", *columns]
        for line, reason, row in import_error_rows(job=job):
            yield [line, reason, *(row.get(column, "") for column in columns)]

    return csv_safe_lines(rows())
