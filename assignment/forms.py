"""Assignment forms: a rule, validated by the same service as the API (``services.rule_validate``)."""

from __future__ import annotations

from typing import Any, cast

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from assignment import services
from assignment.models import AssignmentRule, Trigger
from assignment.rules import RULE_TRIGGERS
from users.models import Role, User


class AssignmentRuleForm(forms.ModelForm[AssignmentRule]):
    """A routing rule: conditions and strategy options as JSON, triggers as boxes; errors per field."""

    triggers = forms.MultipleChoiceField(
        label=_("triggers"),
        choices=[(key, label) for key, label in Trigger.choices if key in RULE_TRIGGERS],
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text=_("When this rule may route a lead."),
    )
    conditions = forms.JSONField(
        label=_("conditions"),
        required=False,
        help_text=_(
            'All must hold, e.g. [{"field": "region", "operator": "in", "value": ["Shanghai", "Beijing"]}]; '
            "[] matches every lead."
        ),
    )
    options = forms.JSONField(
        label=_("strategy options"),
        required=False,
        help_text=_('Depends on the strategy, e.g. {"grades": {"hot": "senior"}} for lead potential.'),
    )

    class Meta:
        model = AssignmentRule
        fields = (
            "name",
            "position",
            "is_enabled",
            "conditions",
            "triggers",
            "pool",
            "pool_team",
            "pool_reps",
            "strategy",
            "options",
        )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # A new rule starts from an empty condition list and no options, shown as JSON (not "null").
        for name, empty in (("conditions", []), ("options", {})):
            if self.initial.get(name) is None:
                self.initial[name] = empty
        if not self.initial.get("triggers"):
            self.initial["triggers"] = ["new"]
        reps = self.fields.get("pool_reps")
        if isinstance(reps, forms.ModelMultipleChoiceField):
            reps.queryset = User.objects.filter(is_active=True, groups__name=Role.REP).order_by("username")
            reps.required = False

    def clean_conditions(self) -> Any:
        return self.cleaned_data.get("conditions") or []

    def clean_options(self) -> Any:
        return self.cleaned_data.get("options") or {}

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        try:
            services.rule_validate(
                strategy=data.get("strategy", ""),
                conditions=data.get("conditions", []),
                triggers=list(data.get("triggers") or []),
                options=data.get("options", {}),
            )
        except ValidationError as exc:
            for field, messages in exc.message_dict.items():
                self.add_error(field if field in self.fields else None, messages)
        return data


class DryRunForm(forms.Form):
    days = forms.IntegerField(label=_("Replay the leads of the last … days"), min_value=1, max_value=90, initial=7)


class BulkReassignForm(forms.Form):
    """Whose open leads, and to whom (empty: run the rules for each, trigger "bulk")."""

    from_owner = forms.ModelChoiceField(label=_("Open leads of"), queryset=User.objects.none())
    to_owner = forms.ModelChoiceField(
        label=_("Give them to"),
        queryset=User.objects.none(),
        required=False,
        empty_label=_("— run the assignment rules —"),
    )

    def __init__(self, *args: Any, manager: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        people = User.objects.filter(is_active=True).order_by("username")
        if manager.role != Role.ADMIN:
            people = people.filter(team_id__in=manager.managed_team_ids)
        cast(forms.ModelChoiceField, self.fields["from_owner"]).queryset = people
        cast(forms.ModelChoiceField, self.fields["to_owner"]).queryset = people

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("from_owner") is not None and data.get("from_owner") == data.get("to_owner"):
            self.add_error("to_owner", _("Choose someone else, or the assignment rules."))
        return data
