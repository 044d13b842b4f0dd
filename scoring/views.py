"""Scoring pages: rule set versions, the rule editor for a draft, preview and apply with live progress;
the predictive model's quality, factors and trainings.

The pages call the same services as ``/api/v1/scoring/rule-sets/`` and ``/api/v1/scoring/model/``: a
draft is edited, previewed (a ``RescoreJob`` that writes nothing) and applied (the version becomes active
and every lead is rescored in the background). Applied versions are shown read-only.
"""

from __future__ import annotations

import json
from typing import Any, cast

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from leads.selectors import event_type_labels_for
from scoring import rescore, rules, services
from scoring.models import (
    Operator,
    PredictiveStatus,
    RescoreJob,
    RescoreMode,
    RescoreStatus,
    RuleKind,
    ScoringRule,
    ScoringRuleSet,
    lead_field_names,
)
from scoring.predictive import policy, words
from scoring.predictive import selectors as predictive_selectors
from scoring.predictive import services as predictive_services
from scoring.selectors import rule_set_applied

VIEW = "scoring.view_scoringruleset"
CHANGE = "scoring.change_scoringruleset"
VIEW_MODEL = "scoring.view_predictivemodel"
TRAIN_MODEL = "scoring.train_predictivemodel"


def _describe(rule: ScoringRule) -> str:
    """What the rule looks at, in words (the same words as the score breakdown)."""
    loaded = services.rule_from_row(rule)
    if loaded.is_behaviour:
        return rules.describe_event(loaded)
    return rules.describe_condition(loaded.condition) if loaded.condition is not None else ""


@login_required
@permission_required(VIEW, raise_exception=True)
def rule_set_list(request: HttpRequest) -> HttpResponse:
    rule_sets = ScoringRuleSet.objects.annotate(rule_count=Count("rules")).order_by("-version")
    applied = set(RescoreJob.objects.filter(mode=RescoreMode.APPLY).values_list("rule_set_id", flat=True))
    jobs = RescoreJob.objects.select_related("rule_set").order_by("-created_at", "-id")[:10]
    return render(
        request,
        "scoring/rule_set_list.html",
        {
            "rows": [(rs, rs.is_active or rs.pk in applied) for rs in rule_sets],
            "jobs": jobs,
            "can_change": request.user.has_perm(CHANGE),
        },
    )


class RuleSetForm(forms.ModelForm[ScoringRuleSet]):
    class Meta:
        model = ScoringRuleSet
        fields = ["name", "half_life_days", "mql_threshold", "sql_threshold", "notes"]
        widgets = {"notes": forms.Textarea(attrs={"rows": 2})}

    def clean(self) -> dict[str, Any]:
        # In words, on the field, before the database constraint would answer "constraint violated".
        cleaned = super().clean() or {}
        for name, problems in services.rule_set_errors(cleaned).items():
            for problem in problems:
                self.add_error(name, problem)
        return cleaned


class BandsForm(forms.Form):
    bands = forms.CharField(
        label=gettext_lazy("Grades"),
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=gettext_lazy("One grade per line: key, minimum score, label — e.g. “hot, 80, Hot”. One starts at 0."),
    )

    def parsed(self) -> list[dict[str, Any]]:
        bands = []
        for number, line in enumerate(self.cleaned_data["bands"].splitlines(), start=1):
            if not line.strip():
                continue
            parts = [p.strip() for p in line.split(",", 2)]
            try:
                bands.append({"key": parts[0], "min_score": int(parts[1]), "label": parts[2] if len(parts) > 2 else ""})
            except (IndexError, ValueError):
                raise ValidationError(
                    _("Line %(line)s: write “key, minimum score, label”.") % {"line": number}
                ) from None
        return bands


@login_required
@permission_required(VIEW, raise_exception=True)
def rule_set_detail(request: HttpRequest, rule_set_id: int) -> HttpResponse:
    rule_set = get_object_or_404(ScoringRuleSet, pk=rule_set_id)
    editable = not rule_set_applied(rule_set) and request.user.has_perm(CHANGE)
    form = RuleSetForm(instance=rule_set)
    bands_text = "\n".join(f"{b.key}, {b.min_score}, {b.label}".rstrip(", ") for b in rule_set.bands.all())
    bands_form = BandsForm(initial={"bands": bands_text})
    if request.method == "POST":
        if not editable:
            messages.error(request, _("This version has been applied and cannot change; copy it and edit the copy."))
            return redirect("scoring:rule_set", rule_set_id=rule_set.pk)
        if "bands" in request.POST:
            bands_form = BandsForm(request.POST)
            if bands_form.is_valid():
                try:
                    services.bands_replace(rule_set=rule_set, bands=bands_form.parsed())
                except ValidationError as exc:
                    bands_form.add_error("bands", exc.message_dict.get("bands", exc.messages))
                else:
                    messages.success(request, _("Grades saved."))
                    return redirect("scoring:rule_set", rule_set_id=rule_set.pk)
        else:
            form = RuleSetForm(request.POST, instance=ScoringRuleSet.objects.get(pk=rule_set.pk))
            if form.is_valid():
                try:
                    services.rule_set_update(rule_set=rule_set, data=form.cleaned_data)
                except ValidationError as exc:
                    _add_errors(form, exc)
                else:
                    messages.success(request, _("Saved."))
                    return redirect("scoring:rule_set", rule_set_id=rule_set.pk)
    rule_rows = [(rule, _describe(rule)) for rule in rule_set.rules.all()]
    return render(
        request,
        "scoring/rule_set_detail.html",
        {
            "rule_set": rule_set,
            "editable": editable,
            "applied": rule_set_applied(rule_set),
            "can_change": request.user.has_perm(CHANGE),
            "form": form,
            "bands_form": bands_form,
            "bands": rule_set.bands.all(),
            "rule_rows": rule_rows,
            "jobs": rule_set.rescore_jobs.order_by("-created_at", "-id")[:5],
            "preview": rescore.preview_for_apply(rule_set) if editable else None,
        },
    )


def _add_errors(form: forms.BaseForm, exc: ValidationError) -> None:
    errors: dict[str, list[str]] = exc.message_dict if hasattr(exc, "error_dict") else {"": exc.messages}
    for name, problems in errors.items():
        target = name if name in form.fields else None
        for problem in problems:
            form.add_error(target, problem)


class RuleForm(forms.ModelForm[ScoringRule]):
    """A rule; the condition's value and the property filters are JSON, checked by the service."""

    value = forms.JSONField(
        label=gettext_lazy("value"),
        required=False,
        help_text=gettext_lazy('A text in quotes ("Director"), a list ["a", "b"], or a range {"min": 500}.'),
    )
    event_filters = forms.JSONField(
        label=gettext_lazy("property filters"),
        required=False,
        help_text=gettext_lazy('e.g. [{"path": "url", "operator": "contains", "value": "/pricing"}]'),
    )
    field = forms.CharField(
        label=gettext_lazy("field"),
        required=False,
        help_text=gettext_lazy("A lead field, attr.<key> for a custom attribute, email_domain or days_inactive."),
        widget=forms.TextInput(attrs={"list": "rule-fields"}),
    )

    class Meta:
        model = ScoringRule
        fields = [
            "kind", "name", "points", "is_active", "position", "field", "operator", "value", "negate",
            "event_type", "event_filters", "cap", "once", "window_days", "half_life_days",
        ]  # fmt: skip

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["kind"]).choices = RuleKind.choices
        cast(forms.ChoiceField, self.fields["operator"]).choices = [("", "—"), *Operator.choices]

    def clean_event_filters(self) -> Any:
        return self.cleaned_data.get("event_filters") or []


@login_required
@permission_required(CHANGE, raise_exception=True)
def rule_edit(request: HttpRequest, rule_set_id: int, rule_id: int | None = None) -> HttpResponse:
    rule_set = get_object_or_404(ScoringRuleSet, pk=rule_set_id)
    rule = get_object_or_404(ScoringRule, pk=rule_id, rule_set=rule_set) if rule_id else None
    if rule_set_applied(rule_set):
        messages.error(request, _("This version has been applied and cannot change; copy it and edit the copy."))
        return redirect("scoring:rule_set", rule_set_id=rule_set.pk)
    form = RuleForm(request.POST or None, instance=rule)
    if request.method == "POST" and form.is_valid():
        data = {name: form.cleaned_data[name] for name in RuleForm.Meta.fields if name in form.cleaned_data}
        try:
            if rule is None:
                services.rule_create(rule_set=rule_set, data=data)
            else:
                services.rule_update(rule=ScoringRule.objects.get(pk=rule.pk), data=data)
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            messages.success(request, _("Rule saved."))
            return redirect("scoring:rule_set", rule_set_id=rule_set.pk)
    return render(
        request,
        "scoring/rule_form.html",
        {"rule_set": rule_set, "rule": rule, "form": form, "field_names": [*lead_field_names(), *rules.DERIVED_FIELDS]},
    )


@login_required
@permission_required(CHANGE, raise_exception=True)
@require_POST
def rule_delete(request: HttpRequest, rule_set_id: int, rule_id: int) -> HttpResponse:
    rule = get_object_or_404(ScoringRule, pk=rule_id, rule_set_id=rule_set_id)
    try:
        services.rule_delete(rule=rule)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, _("Rule removed."))
    return redirect("scoring:rule_set", rule_set_id=rule_set_id)


@login_required
@permission_required(CHANGE, raise_exception=True)
@require_POST
def rule_set_copy(request: HttpRequest, rule_set_id: int) -> HttpResponse:
    copy = services.rule_set_copy(rule_set=get_object_or_404(ScoringRuleSet, pk=rule_set_id), created_by=request.user)
    messages.success(
        request, _("Draft version %(version)s created: edit it, preview it, apply it.") % {"version": copy.version}
    )
    return redirect("scoring:rule_set", rule_set_id=copy.pk)


@login_required
@permission_required(CHANGE, raise_exception=True)
@require_POST
def rule_set_rescore(request: HttpRequest, rule_set_id: int, mode: str) -> HttpResponse:
    rule_set = get_object_or_404(ScoringRuleSet, pk=rule_set_id)
    try:
        with transaction.atomic():
            job = rescore.rescore_job_create(rule_set=rule_set, mode=mode, created_by=request.user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("scoring:rule_set", rule_set_id=rule_set.pk)
    return redirect("scoring:job", job_id=job.pk)


@login_required
@permission_required(VIEW, raise_exception=True)
def rescore_job_detail(request: HttpRequest, job_id: int) -> HttpResponse:
    job = get_object_or_404(RescoreJob.objects.select_related("rule_set"), pk=job_id)
    summary = job.summary or {}
    before, after = summary.get("histogram_before") or [], summary.get("histogram_after") or []
    peak = max([*before, *after, 1])
    histogram = [
        {
            "label": f"{10 * i}–{100 if i == 9 else 10 * i + 9}",
            "before": b,
            "after": a,
            "before_pct": round(100 * b / peak, 1),
            "after_pct": round(100 * a / peak, 1),
        }
        for i, (b, a) in enumerate(zip(before, after, strict=False))
    ]
    grades = sorted(set(summary.get("grades_before", {})) | set(summary.get("grades_after", {})))
    return render(
        request,
        "scoring/rescore_job.html",
        {
            "job": job,
            "finished": job.status in (RescoreStatus.DONE, RescoreStatus.FAILED),
            "histogram": histogram,
            "grades": [
                (
                    grade or "—",
                    summary.get("grades_before", {}).get(grade, 0),
                    summary.get("grades_after", {}).get(grade, 0),
                )
                for grade in grades
            ],
            "grade_moves": list((summary.get("grade_moves") or {}).items()),
            "stage_moves": list((summary.get("stage_moves") or {}).items()),
            "status_labels": json.dumps({key: str(label) for key, label in RescoreStatus.choices}),
        },
    )


@login_required
@permission_required(VIEW_MODEL, raise_exception=True)
def predictive_model_detail(request: HttpRequest) -> HttpResponse:
    """The active model (quality, data, top factors in words), the trainings, and "Train now"."""
    event_labels = event_type_labels_for(request)
    active = predictive_selectors.predictive_model_active()
    converted, lost = predictive_selectors.outcome_counts()
    leads = predictive_selectors.lead_count() if active else 0
    scored = min(active.leads_scored, leads) if active else 0
    history = predictive_selectors.predictive_model_history()
    return render(
        request,
        "scoring/predictive_model.html",
        {
            "active": active,
            "factors": words.top_factors(active, event_labels=event_labels) if active else [],
            "in_progress": predictive_selectors.predictive_training_in_progress(
                since=timezone.now() - predictive_services.STALE_TRAINING
            ),
            "history": [(row, words.run_message(row)) for row in history],
            "converted": converted,
            "lost": lost,
            "refusal": policy.refusal(positives=converted, negatives=lost),
            "leads": leads,
            "scored": scored,
            "scored_percent": round(100 * scored / leads, 1) if leads else 0,
            "can_train": request.user.has_perm(TRAIN_MODEL),
            "busy_statuses": (PredictiveStatus.PENDING, PredictiveStatus.RUNNING),
        },
    )


@login_required
@permission_required(TRAIN_MODEL, raise_exception=True)
@require_POST
def predictive_model_train(request: HttpRequest) -> HttpResponse:
    """Queue a training through the service (the same as ``POST /api/v1/scoring/model/train/``)."""
    try:
        row = predictive_services.predictive_training_request(requested_by=request.user)
    except policy.NotEnoughData as exc:
        messages.error(request, str(exc))
        return redirect("scoring:model")
    if row.requested_by_id == request.user.pk and row.started_at is None:
        messages.success(
            request,
            _("Training v%(version)s is queued; this page shows its outcome when it finishes.")
            % {"version": row.version},
        )
    else:
        messages.info(
            request,
            _("Training v%(version)s is already in progress; it was not started twice.") % {"version": row.version},
        )
    return redirect("scoring:model")
