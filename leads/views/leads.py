"""Lead pages: list with filters, detail with timeline, create/edit, stage change."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST
from rest_framework.exceptions import ValidationError as ApiValidationError

from common.pagination import keyset_paginate
from leads import selectors, services
from leads.filters import LeadFilter
from leads.forms import LeadForm, StageChangeForm
from leads.models import SCORE_PATHS, Lead
from users.models import User

LIST_ORDERINGS = (
    "-created_at", "created_at", "-score", "score", "-priority", "priority", "-last_activity_at", "last_activity_at",
)  # fmt: skip
# Filters always shown on the list page; the rest sit folded under "More filters".
MAIN_FILTERS = ("q", "stage", "source", "owner")
PAGE_SIZE = 50


def _visible_lead(user: User, lead_id: int) -> Lead:
    try:
        return selectors.lead_get_visible(user=user, lead_id=lead_id)
    except Lead.DoesNotExist:
        raise Http404(_("No such lead.")) from None


def _json_items(data: Any) -> list[tuple[str, str]]:
    """A JSON object as sorted (key, text) pairs for a key/value table.

    Templates cannot loop over ``data.items`` safely: a user-defined key named "items" would win the lookup.
    """
    if not isinstance(data, dict):
        return []
    return [
        (str(key), value if isinstance(value, str) else json.dumps(value, ensure_ascii=False))
        for key, value in sorted(data.items())
    ]


@login_required
def lead_list(request: HttpRequest) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    # Built once: the visibility condition costs a query for managers.
    # Merged leads are pointers to their primary: not listed.
    visible = selectors.lead_visible_to(user).filter(merged_into__isnull=True)
    lead_filter = LeadFilter(request.GET or None, queryset=visible, request=request)
    ordering = request.GET.get("ordering", "-created_at")
    if ordering not in LIST_ORDERINGS:
        ordering = "-created_at"
    queryset = lead_filter.qs if lead_filter.is_bound and lead_filter.is_valid() else visible
    try:
        page = keyset_paginate(
            queryset, ordering=ordering, cursor=request.GET.get("cursor"), page_size=PAGE_SIZE, paths=SCORE_PATHS
        )
    except ApiValidationError:
        page = keyset_paginate(queryset, ordering=ordering, cursor=None, page_size=PAGE_SIZE, paths=SCORE_PATHS)
    params = request.GET.copy()
    params.pop("cursor", None)
    for field in lead_filter.form.fields.values():
        if getattr(field, "empty_label", None) is not None:  # "Any" reads better than "---------"
            field.empty_label = _("Any")
    return render(
        request,
        "leads/lead_list.html",
        {
            "filter": lead_filter,
            "main_filters": MAIN_FILTERS,
            "more_filters_open": bool(lead_filter.form.errors)
            or any(params.get(name) for name in lead_filter.form.fields if name not in MAIN_FILTERS),
            "page": page,
            "ordering": ordering,
            "orderings": LIST_ORDERINGS,
            "query_without_cursor": params.urlencode(),
        },
    )


@login_required
def lead_detail(request: HttpRequest, lead_id: int) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    lead = _visible_lead(user, lead_id)
    if lead.merged_into_id is not None:
        # Point to the kept lead only when the user may see it; otherwise its id must not leak.
        if not selectors.lead_visible_to(user).filter(pk=lead.merged_into_id).exists():
            raise Http404(_("No such lead."))
        messages.info(request, _("This lead was merged into another lead; you are seeing that lead."))
        return redirect("leads:detail", lead_id=lead.merged_into_id)
    # The page (merged timeline, quick log, follow-ups) is built where its forms live.
    from leads.views.activity import render_lead_detail

    return render_lead_detail(request, lead)


def _save_lead_form(request: HttpRequest, form: LeadForm, lead: Lead | None) -> Lead | None:
    """Run the service with the form's data; copy its field errors back onto the form."""
    user: User = request.user  # type: ignore[assignment]
    if not form.is_valid():
        return None
    data = dict(form.cleaned_data)
    tags = data.pop("tags")
    try:
        if lead is None:
            lead, created = services.lead_upsert(source_label="page", created_by=user, tags=tags, **data)
            form.matched_existing = not created  # type: ignore[attr-defined]
            return lead
        return services.lead_update(lead=lead, changed_by=user, tags=tags, **data)
    except ValidationError as exc:
        for field, errors in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
        return None


@login_required
@permission_required("leads.add_lead", raise_exception=True)
def lead_create(request: HttpRequest) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    form = LeadForm(request.POST or None, user=user, initial={"owner": user.pk})
    if request.method == "POST":
        lead = _save_lead_form(request, form, None)
        if lead is not None and getattr(form, "matched_existing", False):
            if not selectors.lead_visible_to(user).filter(pk=lead.pk).exists():
                messages.info(
                    request,
                    _("This person is already a lead of another team; your details were added to it."),
                )
                return redirect("leads:list")
            messages.info(
                request,
                _("This matched an existing lead; empty fields were filled and differences kept on its timeline."),
            )
            return redirect("leads:detail", lead_id=lead.pk)
        if lead is not None:
            messages.success(request, _("Lead created."))
            return redirect("leads:detail", lead_id=lead.pk)
    return render(request, "leads/lead_form.html", {"form": form, "lead": None})


@login_required
@permission_required("leads.change_lead", raise_exception=True)
def lead_edit(request: HttpRequest, lead_id: int) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    lead = _visible_lead(user, lead_id)
    form = LeadForm(request.POST or None, instance=lead, user=user)
    if request.method == "POST":
        saved = _save_lead_form(request, form, lead)
        if saved is not None:
            messages.success(request, _("Lead saved."))
            return redirect("leads:detail", lead_id=lead.pk)
        lead.refresh_from_db()
    return render(request, "leads/lead_form.html", {"form": form, "lead": lead})


@login_required
@permission_required("leads.change_lead", raise_exception=True)
@require_POST
def lead_stage_change(request: HttpRequest, lead_id: int) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    lead = _visible_lead(user, lead_id)
    form = StageChangeForm(request.POST)
    if form.is_valid():
        try:
            services.lead_change_stage(
                lead=lead, stage=form.cleaned_data["stage"], changed_by=user, reason=form.cleaned_data["reason"]
            )
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            messages.success(request, _("Stage changed."))
            return redirect("leads:detail", lead_id=lead.pk)
    # The page again with the stage form open, the error under its field and the chosen stage kept.
    from leads.views.activity import render_lead_detail

    return render_lead_detail(request, lead, stage_form=form, status=400)
