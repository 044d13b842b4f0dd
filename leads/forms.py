"""Lead forms for the pages; they validate input and hand clean data to the services."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from leads.models import Campaign, Lead, Stage
from users.models import Role, User


class LeadForm(forms.ModelForm[Lead]):
    tags = forms.CharField(label=_("Tags"), required=False, help_text=_("Comma-separated."))
    # "example.com" becomes https://example.com (Django 6's default; silences its deprecation warning).
    website = forms.URLField(label=_("Website"), required=False, max_length=500, assume_scheme="https")

    class Meta:
        model = Lead
        fields = [
            "name", "email", "phone", "company", "job_title", "website",
            "industry", "company_size", "country", "region", "city",
            "source", "campaign", "utm_source", "utm_medium", "utm_campaign",
            "owner", "do_not_contact",
        ]  # fmt: skip
        # The model's UTM fields have no verbose names; without these the labels would not translate.
        labels = {
            "utm_source": _("UTM source"),
            "utm_medium": _("UTM medium"),
            "utm_campaign": _("UTM campaign"),
        }

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        kwargs.setdefault("label_suffix", "")  # labels sit above their fields: no trailing colon
        super().__init__(*args, **kwargs)
        self.user = user
        self.fields["campaign"].queryset = Campaign.objects.order_by("name")  # type: ignore[attr-defined]
        owners = User.objects.filter(is_active=True).order_by("username")
        if user.role == Role.REP:
            owners = owners.filter(pk=user.pk)
        elif user.role == Role.MANAGER:
            owners = owners.filter(team_id__in=user.managed_team_ids) | owners.filter(pk=user.pk)
        self.fields["owner"].queryset = owners  # type: ignore[attr-defined]
        if self.instance.pk:
            self.initial["tags"] = ", ".join(sorted(t.name for t in self.instance.tags.all()))
        # Normalization happens in the service; the model's e-mail validator would reject " A@B.COM ".
        self.fields["email"] = forms.CharField(label=_("E-mail"), required=False, max_length=254)
        self.fields["phone"].help_text = _("Any format; stored as +86… (E.164).")

    def clean_tags(self) -> list[str]:
        return [t.strip() for t in self.cleaned_data["tags"].split(",") if t.strip()]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not self.instance.pk and data.get("owner") is None:
            # An unowned new lead goes to its creator's team pool; with no team, a rep or manager
            # could not see the lead they had just created.
            team = self.user.team or self.user.managed_teams.order_by("name").first()
            if team is not None:
                data["team"] = team
        return data

    def _post_clean(self) -> None:
        # Skip ModelForm's instance construction and model validation: the service validates.
        pass


class StageChangeForm(forms.Form):
    stage = forms.ChoiceField(label=_("Stage"), choices=Stage.choices)
    reason = forms.CharField(label=_("Reason"), max_length=200, required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("stage") == Stage.LOST and not data.get("reason"):
            self.add_error("reason", _("Say why the lead is lost."))
        return data
