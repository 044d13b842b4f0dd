"""The import wizard's form: the file and the options; the column mapping arrives as JSON from the preview step."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from leads.models import Campaign, OnDuplicate, SourceChannel


class ImportForm(forms.Form):
    file = forms.FileField(
        label=_("File"),
        help_text=_("CSV (UTF-8 or GB18030, comma, semicolon or tab) or Excel .xlsx; the first row names the columns."),
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,.txt,.tsv,.xlsx"}),
    )
    campaign = forms.ModelChoiceField(label=_("Campaign"), queryset=Campaign.objects.all(), required=False)
    source = forms.ChoiceField(label=_("Source"), choices=SourceChannel.choices, initial=SourceChannel.IMPORT)
    tags = forms.CharField(
        label=_("Tags"), required=False, max_length=500, help_text=_("Comma-separated; added to every lead.")
    )
    on_duplicate = forms.ChoiceField(
        label=_("When a row matches an existing lead (same e-mail or phone)"),
        choices=OnDuplicate.choices,
        initial=OnDuplicate.SKIP,
        widget=forms.RadioSelect,
    )
    mapping = forms.CharField(required=False, widget=forms.HiddenInput)

    def clean_tags(self) -> list[str]:
        return [tag.strip() for tag in self.cleaned_data["tags"].replace("，", ",").split(",") if tag.strip()]

    def clean_mapping(self) -> dict[str, Any] | None:
        raw = self.cleaned_data["mapping"]
        if not raw:
            return None
        try:
            value = json.loads(raw)
        except ValueError:
            raise forms.ValidationError(_("The column mapping could not be read; preview the file again.")) from None
        if not isinstance(value, dict):
            raise forms.ValidationError(_("The column mapping could not be read; preview the file again."))
        return value
