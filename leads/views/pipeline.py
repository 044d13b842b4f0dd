"""The pipeline status page for staff: the same figures as ``GET /api/v1/pipeline/status/``."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from leads import selectors


@login_required
def pipeline_status(request: HttpRequest) -> HttpResponse:
    if not request.user.is_staff:
        raise PermissionDenied
    return render(request, "leads/pipeline_status.html", {"status": selectors.pipeline_status()})
