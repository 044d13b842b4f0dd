"""Web form endpoints: CRUD at /api/v1/forms/, the public submit endpoint, and the submission quarantine."""

from __future__ import annotations

import functools
import logging
import math
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import redis
from django.conf import settings
from django.core.cache import cache
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
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView

from leads import selectors, services
from leads.models import Campaign, FormSubmission, SubmissionStatus, WebForm
from leads.services.webforms import (
    FORMS_VERSION_KEY,
    LiveForm,
    field_mapping_errors,
    webform_live,
    webform_live_confirm,
    webforms_version,
)
from users.models import User

logger = logging.getLogger(__name__)

SUBMIT_PATH_RE = re.compile(r"^/api/v1/forms/(?P<slug>[-\w]+)/submit/$")
# Above this multiple of its per-client rate a form as a whole quarantines submissions instead of refusing
# them: many clients at once may be a campaign launch, and a marketer decides.
FORM_CEILING_FACTOR = 10


class ModelPermissionsWithView(permissions.DjangoModelPermissions):
    perms_map = {**permissions.DjangoModelPermissions.perms_map, "GET": ["%(app_label)s.view_%(model_name)s"]}


class SubmissionPermissions(ModelPermissionsWithView):
    """Submissions are never created through this API; POST here is release/reject, a change; DELETE erases."""

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


class SubmissionViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet[FormSubmission],
):
    """Every submission as received; ``?status=quarantined`` is the quarantine. Release, reject or delete from there.

    ``DELETE`` erases a quarantined or rejected submission for good (204); an accepted or released one is its
    lead's record (400, ``status``).
    """

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

    def perform_destroy(self, instance: FormSubmission) -> None:
        services.submission_delete(submission=instance, by=cast(User, self.request.user))


# --- The public submit endpoint -----------------------------------------------------------------


def client_ip(request: HttpRequest) -> str:
    """The peer address; X-Forwarded-For is trusted only when NUM_PROXIES says how many proxies set it."""
    proxies = api_settings.NUM_PROXIES
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR")
    if proxies and forwarded:
        hops = [hop.strip() for hop in forwarded.split(",")]
        return hops[-min(proxies, len(hops))]
    return str(request.META.get("REMOTE_ADDR", ""))


# --- Throttles: one round trip to the cache per submission --------------------------------------------
# Each limit is a sliding-window estimate from two fixed windows: the previous window's count weighted by how
# much of it still lies within the last ``duration`` seconds, plus the current window's count. A Lua script
# checks all of a request's limits, counts the request only if no hard limit refuses it (a refused retry
# does not push the client further back), and reads the shared forms version, atomically.
_SUBMIT_SCRIPT = """
local n = (#KEYS - 1) / 2
local hard = tonumber(ARGV[1])
local out = {0}
local deny = 0
for i = 1, n do
  local cur = tonumber(redis.call('GET', KEYS[2 * i - 1]) or '0')
  local prev = tonumber(redis.call('GET', KEYS[2 * i]) or '0')
  out[2 * i] = cur
  out[2 * i + 1] = prev
  if i <= hard and prev * tonumber(ARGV[3 * i - 1]) + cur + 1 > tonumber(ARGV[3 * i]) then deny = 1 end
end
if deny == 0 then
  for i = 1, n do
    redis.call('INCR', KEYS[2 * i - 1])
    redis.call('EXPIRE', KEYS[2 * i - 1], ARGV[3 * i + 1])
  end
end
out[1] = deny
out[2 * n + 2] = redis.call('GET', KEYS[#KEYS])
return out
"""


@dataclass(frozen=True)
class Limit:
    name: str  # the counter, e.g. "ip:203.0.113.9"
    limit: int
    duration: int  # seconds


@dataclass(frozen=True)
class Verdict:
    refused: bool  # a hard limit refuses this request
    wait: float  # seconds until a refused client may try again
    soft_over: bool  # a soft limit is exceeded (the request is let in, for quarantine)
    forms_version: Any


@functools.lru_cache(maxsize=32)
def _parse_rate(rate: str) -> Limit:
    """DRF's rate syntax ("30/min", "1000/hour"); parsed once per rate string (it is read on every submission)."""
    count, _slash, period = rate.partition("/")
    return Limit("", int(count), {"s": 1, "m": 60, "h": 3600, "d": 86400}[period[0]])


_redis_local = threading.local()


def _redis_script() -> Any | None:
    """The counting script on a Redis client kept for the process (one per thread), or None without Redis.

    Django's RedisCache builds a client object for every operation; a throttle check must not.
    """
    default = settings.CACHES["default"]
    if not default["BACKEND"].endswith("RedisCache"):
        return None
    location = default["LOCATION"]
    url = location[0] if isinstance(location, list | tuple) else str(location).split(",")[0]
    scripts = _redis_local.__dict__.setdefault("scripts", {})
    if url not in scripts:
        scripts[url] = redis.Redis.from_url(url).register_script(_SUBMIT_SCRIPT)
    return scripts[url]


def _windows(limit: Limit, now: float) -> tuple[str, str, float]:
    """The current and previous window keys of a limit and the weight of the previous window now."""
    index = int(now // limit.duration)
    elapsed = now - index * limit.duration
    base = cache.make_key(f"form-submit:{limit.name}:{limit.duration}")
    return f"{base}:{index}", f"{base}:{index - 1}", 1 - elapsed / limit.duration


def _wait(limit: Limit, current: int, previous: int, now: float) -> float:
    """Seconds until one more request fits under ``limit`` (counts as seen before this request)."""
    elapsed = now % limit.duration
    if current + 1 <= limit.limit:  # fits in this window once enough of the previous one has slid out
        return limit.duration * (1 - (limit.limit - current - 1) / previous) - elapsed if previous else 0.0
    fits_next = limit.duration * (1 - (limit.limit - 1) / current) if current else 0.0
    return limit.duration - elapsed + max(0.0, fits_next)


def submit_limits_check(hard: Sequence[Limit], soft: Sequence[Limit] = ()) -> Verdict:
    """Check and count one request: a ``hard`` limit refuses it, a ``soft`` one only reports.

    One Redis round trip (or a few local-cache calls without Redis). Fails open when Redis is down: the
    throttles guard against spam, and PostgreSQL, not Redis, decides whether a lead is kept.
    """
    limits = [*hard, *soft]
    now = time.time()
    keys: list[str] = []
    weights: list[float] = []
    args: list[Any] = [len(hard)]
    for limit in limits:
        current_key, previous_key, weight = _windows(limit, now)
        keys += [current_key, previous_key]
        weights.append(weight)
        args += [weight, limit.limit, 2 * limit.duration]
    script = _redis_script()
    if script is not None:
        try:
            reply = script(keys=[*keys, cache.make_key(FORMS_VERSION_KEY)], args=args)
        except redis.RedisError as exc:
            logger.warning("form throttles unavailable (%s); submission let through", exc)
            return Verdict(refused=False, wait=0.0, soft_over=False, forms_version=None)
        counts = [int(c) for c in reply[1 : 1 + len(keys)]]
        version = reply[1 + len(keys)] if len(reply) > 1 + len(keys) else None
    else:
        found = cache.get_many(keys)
        counts = [int(found.get(k, 0)) for k in keys]
        version = webforms_version()
    over = [counts[2 * n + 1] * weights[n] + counts[2 * n] + 1 > limit.limit for n, limit in enumerate(limits)]
    refused = any(over[: len(hard)])
    if script is None and not refused:
        for n, limit in enumerate(limits):
            cache.add(keys[2 * n], 0, timeout=2 * limit.duration)
            cache.incr(keys[2 * n])
    wait = 0.0
    if refused:
        wait = max(_wait(limit, counts[2 * n], counts[2 * n + 1], now) for n, limit in enumerate(hard) if over[n])
    return Verdict(refused=refused, wait=wait, soft_over=any(over[len(hard) :]), forms_version=version)


class FormSubmitThrottle(BaseThrottle):
    """The submit endpoint's spam throttles, checked in one round trip.

    Per client IP across all forms (rate ``form_submit`` in DEFAULT_THROTTLE_RATES) and per form and
    client IP (the form's ``rate_limit_per_minute``) answer 429 with Retry-After. Per form across all
    clients (``FORM_CEILING_FACTOR`` × that rate) quarantines instead, so one client cannot exhaust a
    form for everyone and a burst of real visitors is kept for review, not dropped.
    """

    scope = "form_submit"
    THROTTLE_RATES = api_settings.DEFAULT_THROTTLE_RATES

    def allow_request(self, request: Request, view: Any) -> bool:
        slug, ip = view.kwargs["slug"], client_ip(request)
        live, _version = webform_live(slug=slug)
        hard, soft = [], []
        rate = self.THROTTLE_RATES.get(self.scope)
        if rate:
            per_ip = _parse_rate(str(rate))
            hard.append(Limit(f"ip:{ip}", per_ip.limit, per_ip.duration))
        if live is not None and live.form.is_active:
            per_minute = live.form.rate_limit_per_minute
            hard.append(Limit(f"form:{slug}:ip:{ip}", per_minute, 60))
            soft.append(Limit(f"form:{slug}", per_minute * FORM_CEILING_FACTOR, 60))
        verdict = submit_limits_check(hard, soft)
        view.live_form = webform_live_confirm(slug=slug, version=verdict.forms_version)
        view.over_form_ceiling = verdict.soft_over
        self._wait = verdict.wait
        return not verdict.refused

    def wait(self) -> float | None:
        return max(1, math.ceil(self._wait))


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
    throttle_classes = [FormSubmitThrottle]
    parser_classes = [JSONParser, FormParser, MultiPartParser]
    # Set by FormSubmitThrottle, which reads the form (cached per process) to know its limits.
    live_form: LiveForm | None
    over_form_ceiling = False

    def webform(self) -> LiveForm | None:
        if not hasattr(self, "live_form"):
            self.live_form = webform_live_confirm(slug=self.kwargs["slug"], version=webforms_version())
        return self.live_form

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
        live = self.webform()
        if live is None or not live.form.is_active:
            raise NotFound(_("No such form."))
        form = live.form
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
                tag_ids=live.tag_ids,
                over_form_ceiling=self.over_form_ceiling,
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
    live, _version = webform_live(slug=match["slug"])  # browsers cache a preflight longer than we cache forms
    if live is None or not live.form.is_active:
        return False
    return origin.rstrip("/") in {str(o).rstrip("/") for o in live.form.allowed_origins or []}
