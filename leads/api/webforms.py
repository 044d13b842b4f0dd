"""Web form endpoints: CRUD at /api/v1/forms/, the public submit endpoint, and the submission quarantine."""

from __future__ import annotations

import re
from typing import Any, cast

from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.loader import render_to_string
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, Throttled
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle
from rest_framework.views import APIView

from leads import selectors, services
from leads.models import Campaign, FormSubmission, SubmissionStatus, WebForm
from leads.services.webforms import field_mapping_errors
from users.models import User

SUBMIT_PATH_RE = re.compile(r"^/api/v1/forms/(?P<slug>[-\w]+)/submit/$")


class ModelPermissionsWithView(permissions.DjangoModelPermissions):
    perms_map = {**permissions.DjangoModelPermissions.perms_map, "GET": ["%(app_label)s.view_%(model_name)s"]}


class SubmissionPermissions(ModelPermissionsWithView):
    """Submissions are never created through this API; POST here is release/reject, a change."""

    perms_map = {**ModelPermissionsWithView.perms_map, "POST": ["%(app_label)s.change_%(model_name)s"]}


class WebFormSerializer(serializers.ModelSerializer[WebForm]):
    default_campaign = serializers.PrimaryKeyRelatedField(
        queryset=Campaign.objects.all(), allow_null=True, required=False
    )
    field_mapping = serializers.DictField(child=serializers.CharField(max_length=110), required=False)
    default_tags = serializers.ListField(child=serializers.CharField(max_length=50), required=False, max_length=50)
    allowed_origins = serializers.ListField(child=serializers.CharField(max_length=300), required=False, max_length=50)
    rate_limit_per_minute = serializers.IntegerField(min_value=1, max_value=100_000, required=False)
    submit_url = serializers.SerializerMethodField()

    class Meta:
        model = WebForm
        fields = [
            "id", "name", "slug", "field_mapping", "default_source", "default_campaign", "default_tags",
            "allowed_origins", "success_url", "honeypot_field", "rate_limit_per_minute", "is_active",
            "created_at", "submit_url",
        ]  # fmt: skip
        read_only_fields = ["created_at"]

    def get_submit_url(self, form: WebForm) -> str:
        request = self.context.get("request")
        path = f"/api/v1/forms/{form.slug}/submit/"
        return request.build_absolute_uri(path) if request is not None else path

    def validate_field_mapping(self, value: dict[str, str]) -> dict[str, str]:
        errors = field_mapping_errors(value)
        if errors:
            raise serializers.ValidationError(errors)
        return value


class WebFormViewSet(viewsets.ModelViewSet[WebForm]):
    """Marketing manages its forms; the submit endpoint is public (see ``WebFormSubmitView``)."""

    serializer_class = WebFormSerializer
    permission_classes = [permissions.IsAuthenticated, ModelPermissionsWithView]
    queryset = WebForm.objects.none()
    keyset_orderings = ("created_at",)
    keyset_default_ordering = "-created_at"
    filterset_class = None

    def get_queryset(self) -> QuerySet[WebForm]:
        return selectors.webform_list()

    def perform_create(self, serializer: BaseSerializer[WebForm]) -> None:
        serializer.instance = services.webform_create(
            created_by=cast(User, self.request.user), **serializer.validated_data
        )

    def perform_update(self, serializer: BaseSerializer[WebForm]) -> None:
        assert serializer.instance is not None
        serializer.instance = services.webform_update(form=serializer.instance, **serializer.validated_data)

    def perform_destroy(self, instance: WebForm) -> None:
        services.webform_delete(form=instance)


class SubmissionSerializer(serializers.ModelSerializer[FormSubmission]):
    form = serializers.CharField(source="form.slug", read_only=True)

    class Meta:
        model = FormSubmission
        fields = [
            "id", "form", "received_at", "status", "spam_reason", "payload", "ip_address", "user_agent",
            "referrer", "lead", "response_status",
        ]  # fmt: skip
        read_only_fields = fields


class SubmissionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet[FormSubmission]):
    """Every submission as received; ``?status=quarantined`` is the quarantine. Release or reject from there."""

    serializer_class = SubmissionSerializer
    permission_classes = [permissions.IsAuthenticated, SubmissionPermissions]
    queryset = FormSubmission.objects.none()
    keyset_orderings = ("received_at",)
    keyset_default_ordering = "-received_at"
    filterset_class = None

    def get_queryset(self) -> QuerySet[FormSubmission]:
        status_param = self.request.query_params.get("status")
        if status_param and status_param not in SubmissionStatus.values:
            raise serializers.ValidationError(
                {"status": [_("Choose one of: %s.") % ", ".join(SubmissionStatus.values)]}
            )
        form_param = self.request.query_params.get("form")
        return selectors.submission_list(
            status=status_param, form_id=int(form_param) if form_param and form_param.isdigit() else None
        )

    @extend_schema(request=None, responses=SubmissionSerializer)
    @action(detail=True, methods=["post"])
    def release(self, request: Request, pk: str | None = None) -> Response:
        submission = self.get_object()
        services.submission_release(submission=submission, by=cast(User, request.user))
        return Response(SubmissionSerializer(selectors.submission_list().get(pk=submission.pk)).data)

    @extend_schema(request=None, responses=SubmissionSerializer)
    @action(detail=True, methods=["post"])
    def reject(self, request: Request, pk: str | None = None) -> Response:
        submission = self.get_object()
        services.submission_reject(submission=submission, by=cast(User, request.user))
        return Response(SubmissionSerializer(selectors.submission_list().get(pk=submission.pk)).data)


# --- The public submit endpoint -----------------------------------------------------------------


def client_ip(request: HttpRequest) -> str:
    """The peer address; X-Forwarded-For is trusted only when NUM_PROXIES says how many proxies set it."""
    proxies = api_settings.NUM_PROXIES
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR")
    if proxies and forwarded:
        hops = [hop.strip() for hop in forwarded.split(",")]
        return hops[-min(proxies, len(hops))]
    return str(request.META.get("REMOTE_ADDR", ""))


class FormSubmitIpThrottle(SimpleRateThrottle):
    """Per client IP, across all forms (rate ``form_submit`` in DEFAULT_THROTTLE_RATES)."""

    scope = "form_submit"

    def get_cache_key(self, request: Request, view: Any) -> str:
        return self.cache_format % {"scope": self.scope, "ident": client_ip(request)}


class FormSubmitFormThrottle(SimpleRateThrottle):
    """Per form, at the form's own ``rate_limit_per_minute``."""

    scope = "form_submit_form"

    def __init__(self) -> None:  # the rate comes from the form, not from settings
        pass

    def allow_request(self, request: Request, view: Any) -> bool:
        form = view.webform()
        if form is None:
            return True
        self.rate = f"{form.rate_limit_per_minute}/min"
        self.num_requests, self.duration = self.parse_rate(self.rate)
        self.form_id = form.pk
        return super().allow_request(request, view)

    def get_cache_key(self, request: Request, view: Any) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.form_id}


def wants_html(request: HttpRequest) -> bool:
    """A bare HTML <form> post (or a client asking for HTML) gets redirects and pages, not JSON."""
    accept = request.headers.get("Accept", "")
    if "application/json" in accept:
        return False
    content_type = (request.content_type or "").split(";")[0].strip().lower()
    return "text/html" in accept or content_type in ("application/x-www-form-urlencoded", "multipart/form-data")


def _html(template: str, context: dict[str, Any], status_code: int) -> HttpResponse:
    return HttpResponse(render_to_string(template, context), status=status_code, content_type="text/html")


class WebFormSubmitView(APIView):
    """``POST /api/v1/forms/<slug>/submit/``: public, no login, no CSRF (the page is on another site)."""

    authentication_classes: list[Any] = []
    permission_classes = [permissions.AllowAny]
    throttle_classes = [FormSubmitIpThrottle, FormSubmitFormThrottle]
    parser_classes = [JSONParser, FormParser, MultiPartParser]

    def webform(self) -> WebForm | None:
        if not hasattr(self, "_webform"):
            self._webform = selectors.webform_get_by_slug(slug=self.kwargs["slug"])
        return self._webform

    def handle_exception(self, exc: Exception) -> HttpResponse:  # type: ignore[override]  # an HTML page for <form> posts
        if isinstance(exc, Throttled) and wants_html(self.request):
            response = _html(
                "leads/webform_submit_error.html",
                {"errors": [(None, [_("Too many submissions; please try again in a minute.")])]},
                status.HTTP_429_TOO_MANY_REQUESTS,
            )
            wait = getattr(exc, "wait", None)
            if wait is not None:
                response["Retry-After"] = str(int(wait) + 1)
            return response
        return super().handle_exception(exc)

    @extend_schema(request=None, responses={201: None, 200: None, 400: None, 429: None})
    def post(self, request: Request, slug: str) -> HttpResponse:
        form = self.webform()
        if form is None or not form.is_active:
            raise NotFound(_("No such form."))
        if not isinstance(request.data, dict):
            raise serializers.ValidationError({"non_field_errors": [_("Send a JSON object or form fields.")]})
        data = request.data.dict() if hasattr(request.data, "dict") else request.data
        html = wants_html(request)
        try:
            outcome = services.webform_submit(
                form=form,
                data=data,
                ip_address=client_ip(request) or None,
                user_agent=request.headers.get("User-Agent", ""),
                referrer=request.headers.get("Referer", ""),
                idempotency_key=request.headers.get("Idempotency-Key"),
            )
        except ValidationError as exc:
            detail = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
            if html:
                back = request.headers.get("Referer", "")
                return _html(
                    "leads/webform_submit_error.html",
                    {
                        "errors": sorted(detail.items()),
                        "back": back if back.startswith(("http://", "https://")) else "",
                    },
                    status.HTTP_400_BAD_REQUEST,
                )
            return Response(detail, status=status.HTTP_400_BAD_REQUEST)
        if html:
            if form.success_url:
                return HttpResponseRedirect(form.success_url, status=status.HTTP_303_SEE_OTHER)
            return _html("leads/webform_submit_thanks.html", {"form": form}, status.HTTP_200_OK)
        response = Response(outcome.body, status=outcome.status_code)
        if outcome.replayed:
            response["Idempotent-Replayed"] = "true"
        return response


def cors_allow_form_origin(sender: Any, request: HttpRequest, **kwargs: Any) -> bool:
    """django-cors-headers' ``check_request_enabled`` hook: a form's submit URL admits its allowed origins only."""
    match = SUBMIT_PATH_RE.match(request.path_info)
    origin = request.headers.get("Origin")
    if match is None or not origin:
        return False
    return selectors.webform_origin_allowed(slug=match["slug"], origin=origin)
