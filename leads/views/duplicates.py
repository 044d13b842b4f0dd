"""Duplicate pages: suggested pairs side by side with a merge button, and the merge record with its undo."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.text import capfirst
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST
from rest_framework.exceptions import ValidationError as ApiValidationError

from leads import selectors, services
from leads.models import Lead
from users.models import User

# What a merge moves onto the kept lead, by the key the merge snapshot uses.
MOVED_LABELS = {
    "interactions": gettext_lazy("Activities"),
    "stage_changes": gettext_lazy("Stage changes"),
    "tasks": gettext_lazy("Follow-ups"),
    "form_submissions": gettext_lazy("Form submissions"),
    "visitors": gettext_lazy("Website visitors"),
}
COMPARED = ("name", "email", "phone", "company", "job_title", "region", "city", "stage", "owner", "created_at")


@login_required
@permission_required("leads.view_leadmerge", raise_exception=True)
def duplicate_list(request: HttpRequest) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    try:
        page = selectors.lead_duplicate_pairs(user=user, cursor=request.GET.get("cursor"), page_size=25)
    except ApiValidationError:
        page = selectors.lead_duplicate_pairs(user=user, page_size=25)
    merges = selectors.merge_visible_to(user).order_by("-merged_at")[:20]
    return render(request, "leads/duplicate_list.html", {"page": page, "compared": COMPARED, "merges": merges})


@login_required
@permission_required("leads.add_leadmerge", raise_exception=True)
@require_POST
def duplicate_merge(request: HttpRequest) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    visible = selectors.lead_visible_to(user)
    try:
        primary = visible.get(pk=int(request.POST.get("primary_id", "")))
        duplicate = visible.get(pk=int(request.POST.get("duplicate_id", "")))
    except (ValueError, Lead.DoesNotExist):
        raise Http404(_("No such lead.")) from None
    try:
        merge = services.lead_merge(primary=primary, duplicate=duplicate, by=user)
    except ValidationError as exc:
        messages.error(request, "; ".join(exc.messages))
        return redirect("leads:duplicate_list")
    messages.success(request, _("Merged. You can undo this merge below."))
    return redirect("leads:merge_detail", merge_id=merge.pk)


@login_required
@permission_required("leads.view_leadmerge", raise_exception=True)
def merge_detail(request: HttpRequest, merge_id: int) -> HttpResponse:
    merge = selectors.merge_visible_to(request.user).filter(pk=merge_id).first()
    if merge is None:
        raise Http404(_("No such merge."))
    # Shown in words, not the snapshot's keys; nothing moved of a kind is left out.
    moved = [(str(MOVED_LABELS.get(key, key)), len(ids)) for key, ids in merge.snapshot.get("moved", {}).items() if ids]
    filled = [(_lead_field_label(key), value) for key, value in merge.snapshot.get("filled", {}).items()]
    return render(
        request, "leads/merge_detail.html", {"merge": merge, "moved": sorted(moved), "filled": sorted(filled)}
    )


def _lead_field_label(name: str) -> str:
    try:
        field = Lead._meta.get_field(name)
    except FieldDoesNotExist:
        return name
    return capfirst(str(getattr(field, "verbose_name", name)))


@login_required
@permission_required("leads.change_leadmerge", raise_exception=True)
@require_POST
def merge_undo(request: HttpRequest, merge_id: int) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    merge = selectors.merge_visible_to(user).filter(pk=merge_id).first()
    if merge is None:
        raise Http404(_("No such merge."))
    try:
        services.lead_merge_undo(merge=merge, by=user)
    except ValidationError as exc:
        messages.error(request, "; ".join(exc.messages))
    else:
        messages.success(request, _("Merge undone: both leads are back as they were."))
    return redirect("leads:merge_detail", merge_id=merge.pk)
