"""Lead page actions: log a call, e-mail, meeting or note; the lead page itself (timeline, quick actions)."""

from __future__ import annotations

from typing import Any, cast

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST
from rest_framework.exceptions import ValidationError as ApiValidationError

from leads import selectors, services
from leads.forms import StageChangeForm
from leads.models import Lead, Stage, TaskKind
from leads.services.activity import ACTIVITY_KINDS, NOTE_MAX_LENGTH, ActivityOutcome
from leads.views.leads import _json_items
from scoring import selectors as scoring_selectors
from scoring.predictive import selectors as predictive_selectors
from users.models import User

TIMELINE_PAGE_SIZE = 30
# The quick stage buttons: where a lead sensibly goes next from where it is (lost asks for a reason).
NEXT_STAGES: dict[str, tuple[str, ...]] = {
    Stage.NEW: (Stage.CONTACTED, Stage.NURTURING, Stage.MQL, Stage.SQL),
    Stage.CONTACTED: (Stage.NURTURING, Stage.MQL, Stage.SQL),
    Stage.NURTURING: (Stage.CONTACTED, Stage.MQL, Stage.SQL),
    Stage.MQL: (Stage.SQL, Stage.NURTURING),
    Stage.SQL: (Stage.MQL, Stage.NURTURING),
    Stage.CONVERTED: (),
    Stage.LOST: (Stage.RECYCLED,),
    Stage.RECYCLED: (Stage.CONTACTED, Stage.NURTURING, Stage.MQL),
}
# The button and the heading of each quick-log form.
ACTIVITY_LABELS = {
    "call": gettext_lazy("Log call"),
    "email": gettext_lazy("Log e-mail"),
    "meeting": gettext_lazy("Log meeting"),
    "note": gettext_lazy("Add note"),
}
ACTIVITY_DONE = {
    "call": gettext_lazy("Call logged."),
    "email": gettext_lazy("E-mail logged."),
    "meeting": gettext_lazy("Meeting logged."),
    "note": gettext_lazy("Note added."),
}
# Outcomes that make sense per kind (a note has none).
KIND_OUTCOMES: dict[str, tuple[ActivityOutcome, ...]] = {
    "call": (
        ActivityOutcome.CONNECTED,
        ActivityOutcome.LEFT_VOICEMAIL,
        ActivityOutcome.NO_ANSWER,
        ActivityOutcome.BUSY,
        ActivityOutcome.WRONG_NUMBER,
    ),
    "email": (ActivityOutcome.REPLIED,),
    "meeting": (ActivityOutcome.HELD, ActivityOutcome.NO_SHOW),
    "note": (),
}


class ActivityForm(forms.Form):
    kind = forms.ChoiceField(choices=[(k, k) for k in ACTIVITY_KINDS], widget=forms.HiddenInput)
    note = forms.CharField(
        label=gettext_lazy("Note"), required=False, max_length=NOTE_MAX_LENGTH, widget=forms.Textarea(attrs={"rows": 3})
    )
    outcome = forms.ChoiceField(
        label=gettext_lazy("Outcome"), required=False, choices=[("", "—"), *ActivityOutcome.choices]
    )


class TaskForm(forms.Form):
    title = forms.CharField(label=gettext_lazy("Follow-up"), max_length=200)
    kind = forms.ChoiceField(label=gettext_lazy("Kind"), choices=TaskKind.choices, initial=TaskKind.CALL)
    due_at = forms.DateTimeField(
        label=gettext_lazy("Due"), widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")
    )
    assignee = forms.ModelChoiceField(label=gettext_lazy("Assignee"), queryset=User.objects.none(), empty_label=None)
    notes = forms.CharField(
        label=gettext_lazy("Notes"),
        required=False,
        max_length=NOTE_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 2}),
    )

    def __init__(self, *args: Any, assignees: list[User], **kwargs: Any) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
        field = cast("forms.ModelChoiceField[User]", self.fields["assignee"])
        field.queryset = User.objects.filter(pk__in=[u.pk for u in assignees])
        # Rendered from the already-checked list: no query per option.
        field.choices = [(u.pk, str(u)) for u in assignees]


def visible_lead(user: User, lead_id: int) -> Lead:
    try:
        return selectors.lead_get_visible(user=user, lead_id=lead_id)
    except Lead.DoesNotExist:
        raise Http404(_("No such lead.")) from None


def task_assignees(*, user: User, lead: Lead) -> list[User]:
    """Whom ``user`` may give a task on ``lead``: the people they work with who can see it, themselves first."""
    candidates = selectors.user_assignable_to(user)
    people = selectors.lead_task_assignees(lead=lead, candidates=candidates)
    people.sort(key=lambda person: (person.pk != user.pk, str(person).lower()))
    return people


def add_form_errors(form: forms.Form, exc: ValidationError) -> None:
    for field, errors in exc.message_dict.items():
        form.add_error(field if field in form.fields else None, errors)


def render_lead_detail(
    request: HttpRequest,
    lead: Lead,
    *,
    activity_form: ActivityForm | None = None,
    task_form: TaskForm | None = None,
    stage_form: StageChangeForm | None = None,
    status: int = 200,
) -> HttpResponse:
    """The lead page; a form that failed is passed back in so the user sees its errors and keeps their text."""
    user: User = request.user  # type: ignore[assignment]
    labels = selectors.event_type_labels_for(request)
    try:
        timeline = selectors.lead_timeline(
            lead=lead, labels=labels, cursor=request.GET.get("cursor") or None, page_size=TIMELINE_PAGE_SIZE
        )
    except ApiValidationError:
        timeline = selectors.lead_timeline(lead=lead, labels=labels, page_size=TIMELINE_PAGE_SIZE)
    can_log = user.has_perm("leads.add_interaction")
    open_kind = activity_form.data.get("kind") if activity_form is not None else None
    activity_forms = [
        (
            kind,
            ACTIVITY_LABELS[kind],
            activity_form if kind == open_kind and activity_form is not None else ActivityForm(initial={"kind": kind}),
            [(o.value, o.label) for o in KIND_OUTCOMES[kind]],
        )
        for kind in ACTIVITY_KINDS
    ]
    if task_form is None and can_log:
        task_form = TaskForm(assignees=task_assignees(user=user, lead=lead), initial={"assignee": user.pk})
    return render(
        request,
        "leads/lead_detail.html",
        {
            "lead": lead,
            "attributes": _json_items(lead.attributes),
            "timeline": [_timeline_item(entry) for entry in timeline.entries],
            "timeline_next": timeline.next_cursor,
            "timeline_is_first_page": not request.GET.get("cursor"),
            "stage_form": stage_form or StageChangeForm(initial={"stage": lead.stage}),
            "stage_form_open": stage_form is not None and stage_form.is_bound,
            "next_stages": [(s, Stage(s).label) for s in NEXT_STAGES.get(lead.stage, ())],
            "can_lose": lead.stage not in (Stage.LOST, Stage.CONVERTED),
            "can_edit": user.has_perm("leads.change_lead"),
            "can_log": can_log,
            "activity_forms": activity_forms,
            "open_activity": open_kind,
            "open_tasks": list(selectors.lead_open_tasks(lead=lead)),
            "now": timezone.now(),
            "task_form": task_form,
            "task_form_open": task_form is not None and task_form.is_bound,
            **_score_context(lead, labels),
        },
        status=status,
    )


SCORE_CHART_WIDTH, SCORE_CHART_HEIGHT = 240, 60


def _score_context(lead: Lead, labels: selectors.EventTypeLabels) -> dict[str, Any]:
    """The breakdown of the stored score (its latest history row), a small chart of recent changes, and the
    predicted conversion probability with the facts behind it (None without an active model)."""
    history = scoring_selectors.lead_score_history(lead=lead)
    prediction = predictive_selectors.lead_prediction(lead=lead, event_labels=labels)
    if not history:
        return {"score_breakdown": [], "score_chart": None, "prediction": prediction}
    oldest_first = list(reversed(history))
    step = SCORE_CHART_WIDTH / max(len(oldest_first) - 1, 1)
    points = " ".join(
        f"{round(i * step, 1)},{round(SCORE_CHART_HEIGHT * (1 - h.score / 100), 1)}" for i, h in enumerate(oldest_first)
    )
    return {
        "prediction": prediction,
        "score_breakdown": scoring_selectors.breakdown_explained(history[0]),
        "score_chart": {
            "points": points,
            "width": SCORE_CHART_WIDTH,
            "height": SCORE_CHART_HEIGHT,
            "first": oldest_first[0],
            "last": oldest_first[-1],
            "changes": len(history),
        },
    }


def _timeline_item(entry: selectors.TimelineEntry) -> dict[str, Any]:
    """What the timeline template shows: the note and outcome apart, other properties as a key/value list."""
    properties = dict(entry.properties)
    note = properties.pop("note", "") if entry.type in ACTIVITY_KINDS else ""
    outcome = properties.pop("outcome", "") if entry.type in ACTIVITY_KINDS else ""
    outcome_label = ActivityOutcome(outcome).label if outcome in ActivityOutcome.values else outcome
    return {
        "entry": entry,
        "note": note if isinstance(note, str) else str(note),
        "outcome": outcome_label,
        "properties": _json_items(properties),
        "from_stage": Stage(entry.from_stage).label if entry.from_stage in Stage.values else entry.from_stage,
        "to_stage": Stage(entry.to_stage).label if entry.to_stage in Stage.values else entry.to_stage,
        "task_kind": TaskKind(entry.type).label if entry.kind == "task" and entry.type in TaskKind.values else "",
    }


@login_required
@permission_required("leads.add_interaction", raise_exception=True)
@require_POST
def activity_log(request: HttpRequest, lead_id: int) -> HttpResponse:
    """The quick-log form: one click opens it, the second submits; errors re-render the page, text kept."""
    user: User = request.user  # type: ignore[assignment]
    lead = visible_lead(user, lead_id)
    form = ActivityForm(request.POST)
    if form.is_valid():
        try:
            services.activity_log(
                lead=lead,
                kind=form.cleaned_data["kind"],
                note=form.cleaned_data["note"],
                outcome=form.cleaned_data["outcome"],
                by=user,
            )
        except ValidationError as exc:
            add_form_errors(form, exc)
        else:
            messages.success(request, str(ACTIVITY_DONE[form.cleaned_data["kind"]]))
            return redirect("leads:detail", lead_id=lead.pk)
    if form.data.get("kind") not in ACTIVITY_KINDS:
        messages.error(request, _("Choose one of: call, email, meeting, note."))
        return redirect("leads:detail", lead_id=lead.pk)
    lead.refresh_from_db()
    return render_lead_detail(request, lead, activity_form=form, status=400)
