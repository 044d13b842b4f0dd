"""Assignment pages: managers order, switch and test the rules and see the queue and each rep's share; reps switch availability."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, cast

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from assignment import selectors, services
from assignment.forms import AssignmentRuleForm, BulkReassignForm, DryRunForm
from assignment.models import AssignmentRule, RepProfile, RuleCursor, Trigger
from leads import selectors as lead_selectors
from leads.models import SourceChannel
from users.models import Role, User

STATS_DAYS = 30


def _manager(request: HttpRequest) -> User:
    user = cast(User, request.user)
    if user.role not in (Role.MANAGER, Role.ADMIN):
        raise PermissionDenied
    return user


class RuleTestForm(forms.Form):
    """A lead to try the rules on: an existing lead's id, or a few made-up facts."""

    lead = forms.IntegerField(label=gettext_lazy("Lead id"), required=False, min_value=1)
    region = forms.CharField(label=gettext_lazy("Region"), required=False, max_length=100)
    country = forms.CharField(label=gettext_lazy("Country"), required=False, max_length=2)
    industry = forms.CharField(label=gettext_lazy("Industry"), required=False, max_length=100)
    source = forms.ChoiceField(
        label=gettext_lazy("Source"), choices=[("", "—"), *SourceChannel.choices], required=False
    )
    score = forms.IntegerField(label=gettext_lazy("Score"), required=False, min_value=0, max_value=100)
    grade = forms.CharField(label=gettext_lazy("Grade"), required=False, max_length=16)


@login_required
def rule_list(request: HttpRequest) -> HttpResponse:
    """The rules in order with their switches, a tester, the queue, and each rep's share over 30 days."""
    user = _manager(request)
    form = RuleTestForm(request.GET or None)
    decision = None
    if form.is_valid() and any(v not in (None, "") for v in form.cleaned_data.values()):
        data = form.cleaned_data
        if data["lead"]:
            lead = lead_selectors.lead_visible_to(user).filter(pk=data["lead"]).first()
            if lead is None:
                form.add_error("lead", _("No such lead."))
        else:
            facts = {k: v for k, v in data.items() if k != "lead" and v not in (None, "")}
            lead = services.sample_lead({"name": _("Sample lead"), **facts})
        if lead is not None:
            decision = services.rule_test(lead=lead, trigger=Trigger.NEW)
    people = User.objects.filter(is_active=True)
    if user.role != Role.ADMIN:
        people = people.filter(Q(team_id__in=user.managed_team_ids) | Q(pk=user.pk))
    context: dict[str, Any] = {
        "rules": selectors.rule_list().order_by("position", "pk"),
        "form": form,
        "decision": decision,
        "queue": selectors.queue_list()[:50],
        "stats": selectors.rep_stats(users=people, since=timezone.now() - timedelta(days=STATS_DAYS)),
        "stats_days": STATS_DAYS,
    }
    return render(request, "assignment/rule_list.html", context)


@login_required
@require_POST
def rule_move(request: HttpRequest, rule_id: int, direction: str) -> HttpResponse:
    """Swap a rule with its neighbour above or below."""
    _manager(request)
    if direction not in ("up", "down"):
        raise Http404
    ids = list(AssignmentRule.objects.order_by("position", "pk").values_list("pk", flat=True))
    if rule_id not in ids:
        raise PermissionDenied
    index = ids.index(rule_id)
    other = index - 1 if direction == "up" else index + 1
    if 0 <= other < len(ids):
        ids[index], ids[other] = ids[other], ids[index]
        services.rules_reorder(rule_ids=ids)
    return redirect("assignment:rule_list")


@login_required
@require_POST
def rule_toggle(request: HttpRequest, rule_id: int) -> HttpResponse:
    _manager(request)
    rule = get_object_or_404(AssignmentRule, pk=rule_id)
    rule.is_enabled = not rule.is_enabled
    services.rule_save(rule=rule)
    if rule.is_enabled:
        messages.success(request, _("“%(rule)s” is on.") % {"rule": rule.name})
    else:
        messages.success(request, _("“%(rule)s” is off.") % {"rule": rule.name})
    return redirect("assignment:rule_list")


@login_required
def my_availability(request: HttpRequest) -> HttpResponse:
    """A rep's own switch, capacity and hours, and their latest notices."""
    user = cast(User, request.user)
    if request.method == "POST":
        available = request.POST.get("available") == "1"
        services.availability_set(user=user, available=available)
        messages.success(
            request, _("You are available for new leads.") if available else _("You will get no new leads.")
        )
        return redirect("assignment:me")
    context = {
        "profile": RepProfile.objects.filter(user=user).first(),
        "notices": selectors.notifications_for(user)[:20],
    }
    return render(request, "assignment/my_availability.html", context)


@login_required
def rule_edit(request: HttpRequest, rule_id: int | None = None) -> HttpResponse:
    """Create or change a rule; "Dry run" replays recent leads through the rules as they would be with
    this form's version of the rule, and shows who would have received what — nothing is saved."""
    user = _manager(request)
    rule = get_object_or_404(AssignmentRule, pk=rule_id) if rule_id else None
    form = AssignmentRuleForm(request.POST or None, instance=rule)
    dry_form = DryRunForm(request.POST or None)
    dry_run = None
    if request.method == "POST" and form.is_valid():
        draft = form.save(commit=False)
        if "dry_run" in request.POST:
            if dry_form.is_valid():
                dry_run = _dry_run(user, form, draft, days=dry_form.cleaned_data["days"])
        else:
            draft.triggers = list(form.cleaned_data["triggers"])
            services.rule_save(rule=draft, pool_reps=form.cleaned_data.get("pool_reps") or [])
            messages.success(request, _("Rule “%(rule)s” saved.") % {"rule": draft.name})
            return redirect("assignment:rule_list")
    return render(
        request,
        "assignment/rule_form.html",
        {"form": form, "rule": rule, "dry_form": dry_form, "dry_run": dry_run},
    )


def _dry_run(user: User, form: AssignmentRuleForm, draft: AssignmentRule, *, days: int) -> dict[str, Any]:
    """The enabled rules in order, with this rule replaced by (or, if new, added as) the form's version."""
    data = {
        **{name: form.cleaned_data.get(name) for name in ("name", "strategy", "conditions", "pool", "options")},
        "triggers": list(form.cleaned_data["triggers"]),
        "pool_team": draft.pool_team_id,
        "pool_reps": [rep.pk for rep in form.cleaned_data.get("pool_reps") or []],
        "id": draft.pk,
    }
    rules = [r for r in selectors.rule_list().order_by("position", "pk") if r.is_enabled and r.pk != draft.pk]
    cursors = dict(RuleCursor.objects.filter(rule__in=rules).values_list("rule_id", "last_user_id"))
    specs = [services.rule_spec(r, last_user_id=cursors.get(r.pk)) for r in rules]
    position = sum(1 for r in rules if (r.position, r.pk or 0) < (draft.position or 10**9, draft.pk or 10**9))
    if form.cleaned_data.get("is_enabled"):
        specs.insert(position, services.rule_spec_from_data(data, position=position + 1))
    since = timezone.now() - timedelta(days=days)
    leads = (
        lead_selectors.lead_visible_to(user)
        .prefetch_related(None)
        .filter(created_at__gte=since, merged_into__isnull=True)
        .order_by("created_at", "pk")[: services.DRY_RUN_MAX_LEADS]
    )
    result = services.assignment_dry_run(leads=list(leads), rules=specs)
    names = dict(User.objects.filter(pk__in=[rep.user_id for rep in result.reps]).values_list("pk", "username"))
    received: dict[int, list[int]] = {}
    for row in result.rows:
        if row.decision.winner_id is not None:
            received.setdefault(row.decision.winner_id, []).append(row.score)
    return {
        "days": days,
        "leads": len(result.rows),
        "unassigned": sum(1 for row in result.rows if row.decision.winner_id is None),
        "reps": sorted(
            ((names.get(pk, pk), len(scores), sum(scores)) for pk, scores in received.items()),
            key=lambda item: (-item[1], str(item[0])),
        ),
        "rows": [
            (row.lead_id, row.lead_name, row.score, names.get(row.decision.winner_id or 0, "—"), row.decision.reason)
            for row in result.rows[:50]
        ],
    }


@login_required
@require_POST
def lead_rerun(request: HttpRequest, lead_id: int) -> HttpResponse:
    """A manager's "re-run the rules" on one lead they can see (trigger: manual), recorded like any routing."""
    user = _manager(request)
    lead = lead_selectors.lead_visible_to(user).prefetch_related(None).filter(pk=lead_id).first()
    if lead is None:
        raise Http404(_("No such lead."))
    result = services.lead_route(lead=lead, trigger=Trigger.MANUAL, by=user)
    record = result.record
    messages.success(request, record.reason if record is not None else _("Nothing changed."))
    return redirect("leads:detail", lead_id=lead.pk)


@login_required
def bulk_reassign(request: HttpRequest) -> HttpResponse:
    """Move the open leads of one rep (say, one who is leaving) to another rep, or through the rules."""
    user = _manager(request)
    form = BulkReassignForm(request.POST or None, manager=user)
    if request.method == "POST" and form.is_valid():
        leads = (
            lead_selectors.lead_visible_to(user)
            .filter(owner=form.cleaned_data["from_owner"])
            .exclude(stage__in=services.CLOSED_STAGES)
            .values_list("pk", flat=True)
        )
        counts = services.leads_reassign(lead_ids=list(leads), by=user, owner=form.cleaned_data["to_owner"])
        messages.success(
            request,
            _("%(assigned)s leads reassigned, %(kept)s kept, %(queued)s queued, %(unchanged)s unchanged.") % counts,
        )
        return redirect("assignment:rule_list")
    return render(request, "assignment/bulk_reassign.html", {"form": form})
