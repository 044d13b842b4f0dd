"""Follow-up pages: add a task on the lead page, mark it done or reopen it, and "My tasks"."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST
from rest_framework.exceptions import ValidationError as ApiValidationError

from common.pagination import keyset_paginate
from leads import selectors, services
from leads.models import Task
from leads.views.activity import TaskForm, add_form_errors, render_lead_detail, task_assignees, visible_lead
from users.models import User

MY_TASKS_PAGE_SIZE = 50


def _visible_task(user: User, task_id: int) -> Task:
    try:
        return selectors.task_visible_to(user).get(pk=task_id)
    except Task.DoesNotExist:
        raise Http404(_("No such task.")) from None


def _back(request: HttpRequest, task: Task) -> HttpResponse:
    """Back where the button was (My tasks or the lead page); only ever to this site."""
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=False):
        return redirect(target)
    return redirect("leads:detail", lead_id=task.lead_id)


@login_required
@permission_required("leads.add_interaction", raise_exception=True)
@require_POST
def task_create(request: HttpRequest, lead_id: int) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    lead = visible_lead(user, lead_id)
    form = TaskForm(request.POST, assignees=task_assignees(user=user, lead=lead))
    if form.is_valid():
        try:
            services.task_create(lead=lead, created_by=user, **form.cleaned_data)
        except ValidationError as exc:
            add_form_errors(form, exc)
        else:
            messages.success(request, _("Follow-up added."))
            return redirect("leads:detail", lead_id=lead.pk)
    return render_lead_detail(request, lead, task_form=form, status=400)


@login_required
@permission_required("leads.add_interaction", raise_exception=True)
@require_POST
def task_complete(request: HttpRequest, task_id: int) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    task = _visible_task(user, task_id)
    try:
        services.task_complete(task=task, by=user, note=request.POST.get("note", ""))
    except ValidationError as exc:
        for errors in exc.message_dict.values():
            for error in errors:
                messages.error(request, error)
    else:
        messages.success(request, _("Task done: %(title)s") % {"title": task.title})
    return _back(request, task)


@login_required
@permission_required("leads.add_interaction", raise_exception=True)
@require_POST
def task_reopen(request: HttpRequest, task_id: int) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    task = _visible_task(user, task_id)
    services.task_reopen(task=task, by=user)
    messages.success(request, _("Task reopened: %(title)s") % {"title": task.title})
    return _back(request, task)


@login_required
def task_list(request: HttpRequest) -> HttpResponse:
    """My open tasks, soonest due first; ``?overdue=1`` keeps only the late ones."""
    user: User = request.user  # type: ignore[assignment]
    overdue_only = request.GET.get("overdue") == "1"
    tasks = (
        selectors.tasks_overdue(user)
        if overdue_only
        else selectors.task_visible_to(user).filter(assignee_id=user.pk, done_at__isnull=True)
    ).select_related("lead", "assignee")
    try:
        page = keyset_paginate(tasks, ordering="due_at", cursor=request.GET.get("cursor"), page_size=MY_TASKS_PAGE_SIZE)
    except ApiValidationError:
        page = keyset_paginate(tasks, ordering="due_at", cursor=None, page_size=MY_TASKS_PAGE_SIZE)
    return render(
        request,
        "leads/task_list.html",
        {
            "page": page,
            "now": timezone.now(),
            "overdue_only": overdue_only,
            "overdue_count": selectors.tasks_overdue(user).count(),
        },
    )
