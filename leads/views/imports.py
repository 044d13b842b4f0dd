"""Import pages: the wizard (upload → preview and mapping → start), the job page with live progress, the list."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from leads import selectors, services
from leads.imports.forms import ImportForm
from leads.imports.mapping import TARGETS
from leads.models import ImportJob, ImportStatus
from users.models import User

LIST_SIZE = 100


def _visible_job(user: User, job_id: int) -> ImportJob:
    try:
        return selectors.import_job_get_visible(user=user, job_id=job_id)
    except ImportJob.DoesNotExist:
        raise Http404(_("No such import.")) from None


@login_required
@permission_required("leads.view_importjob", raise_exception=True)
def import_list(request: HttpRequest) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    jobs = selectors.import_jobs_visible_to(user)[:LIST_SIZE]
    return render(request, "leads/import_list.html", {"jobs": jobs})


@login_required
@permission_required("leads.add_importjob", raise_exception=True)
def import_new(request: HttpRequest) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    form = ImportForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            job = services.import_create(
                file=data["file"],
                by=user,
                mapping=data["mapping"],
                campaign=data["campaign"],
                source=data["source"],
                tags=data["tags"],
                on_duplicate=data["on_duplicate"],
            )
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                form.add_error(field if field in form.fields and field != "mapping" else None, errors)
        else:
            messages.success(request, _("Import started."))
            return redirect("leads:import_detail", job_id=job.pk)
    targets = {key: str(label) for key, label in TARGETS.items()}
    return render(request, "leads/import_new.html", {"form": form, "targets": targets})


@login_required
@permission_required("leads.view_importjob", raise_exception=True)
def import_detail(request: HttpRequest, job_id: int) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    job = _visible_job(user, job_id)
    targets = {key: str(label) for key, label in TARGETS.items()}
    return render(
        request,
        "leads/import_detail.html",
        {
            "job": job,
            "mapping": [
                (column, _target_label(job.mapping.get(column, ""), targets))
                for column in services.import_file_headers(job=job)
            ],
            "finished": job.status in (ImportStatus.DONE, ImportStatus.FAILED, ImportStatus.UNDONE),
            "can_undo": job.status in (ImportStatus.DONE, ImportStatus.FAILED)
            and user.has_perm("leads.change_importjob"),
            "targets": targets,
        },
    )


def _target_label(target: str, targets: dict[str, str]) -> str:
    """What a column fills, in words: the lead field's label or the custom attribute's key."""
    if target.startswith("attr:"):
        return _("Custom attribute “%(key)s”") % {"key": target.removeprefix("attr:")}
    return targets.get(target, target)


@login_required
@permission_required("leads.change_importjob", raise_exception=True)
@require_POST
def import_undo(request: HttpRequest, job_id: int) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    job = _visible_job(user, job_id)
    try:
        services.import_undo_start(job=job, by=user)
    except ValidationError as exc:
        for error in exc.messages:
            messages.error(request, error)
    else:
        messages.success(request, _("Undoing the import: this page shows when it is done."))
    return redirect("leads:import_detail", job_id=job.pk)
