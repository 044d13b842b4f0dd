"""Web form pages for marketing: list, create/edit with the embeddable snippet, and the submission quarantine."""

from __future__ import annotations

from html import escape
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST
from rest_framework.exceptions import ValidationError as ApiValidationError

from common.pagination import keyset_paginate
from leads import selectors, services
from leads.models import Campaign, FormSubmission, SourceChannel, SubmissionStatus, WebForm
from leads.services.webforms import (
    PAGE_URL_FIELD,
    REFERRER_FIELD,
    RENDERED_AT_FIELD,
    field_mapping_format,
    field_mapping_parse,
)
from users.models import User

PAGE_SIZE = 50


class WebFormForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Name"), max_length=200)
    slug = forms.SlugField(
        label=gettext_lazy("Slug"), max_length=100, help_text=gettext_lazy("Part of the submit URL.")
    )
    field_mapping = forms.CharField(
        label=gettext_lazy("Field mapping"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 6}),
        help_text=gettext_lazy(
            "One “form field = target” per line; target is a lead field (name, email, phone, company…) or attr:<key>."
        ),
    )
    default_source = forms.ChoiceField(label=gettext_lazy("Source"), choices=SourceChannel.choices)
    default_campaign = forms.ModelChoiceField(
        label=gettext_lazy("Campaign"), queryset=Campaign.objects.order_by("name"), required=False
    )
    default_tags = forms.CharField(
        label=gettext_lazy("Tags"), required=False, help_text=gettext_lazy("Comma-separated.")
    )
    allowed_origins = forms.CharField(
        label=gettext_lazy("Allowed origins"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=gettext_lazy("One per line, e.g. https://www.example.com"),
    )
    success_url = forms.URLField(label=gettext_lazy("Success redirect URL"), required=False, assume_scheme="https")
    honeypot_field = forms.CharField(label=gettext_lazy("Honeypot field"), max_length=50, initial="website_url")
    rate_limit_per_minute = forms.IntegerField(label=gettext_lazy("Submissions per minute"), min_value=1, initial=30)
    is_active = forms.BooleanField(label=gettext_lazy("Active"), required=False, initial=True)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)

    def clean_field_mapping(self) -> dict[str, str]:
        return field_mapping_parse(self.cleaned_data["field_mapping"])

    def clean_default_tags(self) -> list[str]:
        return [t.strip() for t in self.cleaned_data["default_tags"].split(",") if t.strip()]

    def clean_allowed_origins(self) -> list[str]:
        return [line.strip().rstrip("/") for line in self.cleaned_data["allowed_origins"].splitlines() if line.strip()]

    @classmethod
    def initial_for(cls, form: WebForm) -> dict[str, Any]:
        return {
            "name": form.name,
            "slug": form.slug,
            "field_mapping": field_mapping_format(form.field_mapping or {}),
            "default_source": form.default_source,
            "default_campaign": form.default_campaign_id,
            "default_tags": ", ".join(form.default_tags or []),
            "allowed_origins": "\n".join(form.allowed_origins or []),
            "success_url": form.success_url,
            "honeypot_field": form.honeypot_field,
            "rate_limit_per_minute": form.rate_limit_per_minute,
            "is_active": form.is_active,
        }


def embed_snippet(request: HttpRequest, form: WebForm) -> str:
    """A plain HTML form that posts to the form's endpoint: the hidden honeypot, render time, page and referrer.

    The browser's Referer header on the post names the page the form is on; where the visitor came from
    before that page is only known to the page itself (``document.referrer``), so the snippet sends it.
    """
    url = request.build_absolute_uri(reverse("webform-submit", kwargs={"slug": form.slug}))
    fields = list((form.field_mapping or {}).keys()) or ["name", "email", "phone", "company"]
    # Field names are marketing's data: escape them, since this HTML is pasted into another site.
    lines = [f'<form method="post" action="{escape(url)}">']
    for name in fields:
        kind = "email" if (form.field_mapping or {}).get(name, name) == "email" else "text"
        lines.append(f'  <label>{escape(name)} <input type="{kind}" name="{escape(name)}"></label>')
    lines += [
        f'  <div style="position:absolute;left:-10000px" aria-hidden="true"><input type="text" name="{escape(form.honeypot_field)}" tabindex="-1" autocomplete="off"></div>',
        f'  <input type="hidden" name="{RENDERED_AT_FIELD}" value="">',
        f'  <input type="hidden" name="{PAGE_URL_FIELD}" value="">',
        f'  <input type="hidden" name="{REFERRER_FIELD}" value="">',
        # In the marketer's language: the page the snippet goes on is usually in it too.
        f'  <button type="submit">{escape(_("Send"))}</button>',
        "</form>",
        "<script>",
        "  (function (f) {",
        f'    f.elements["{RENDERED_AT_FIELD}"].value = Date.now();',
        f'    f.elements["{PAGE_URL_FIELD}"].value = location.href;',
        f'    f.elements["{REFERRER_FIELD}"].value = document.referrer;',
        "  })(document.currentScript.previousElementSibling);",
        "</script>",
    ]
    return "\n".join(lines)


def _save(request: HttpRequest, form: WebFormForm, instance: WebForm | None) -> WebForm | None:
    user: User = request.user  # type: ignore[assignment]
    if not form.is_valid():
        return None
    try:
        if instance is None:
            return services.webform_create(created_by=user, **form.cleaned_data)
        return services.webform_update(form=instance, **form.cleaned_data)
    except ValidationError as exc:
        for field, errors in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
        return None


@login_required
@permission_required("leads.view_webform", raise_exception=True)
def webform_list(request: HttpRequest) -> HttpResponse:
    return render(request, "leads/webform_list.html", {"forms": selectors.webform_list()})


@login_required
@permission_required("leads.add_webform", raise_exception=True)
def webform_create(request: HttpRequest) -> HttpResponse:
    form = WebFormForm(request.POST or None)
    if request.method == "POST" and (saved := _save(request, form, None)) is not None:
        messages.success(request, _("Form created. Copy the snippet below into your site."))
        return redirect("leads:webform_edit", form_id=saved.pk)
    return render(request, "leads/webform_form.html", {"form": form, "webform": None})


@login_required
@permission_required("leads.view_webform", raise_exception=True)
def webform_edit(request: HttpRequest, form_id: int) -> HttpResponse:
    webform = selectors.webform_list().filter(pk=form_id).first()
    if webform is None:
        raise Http404(_("No such form."))
    form = WebFormForm(request.POST or None, initial=WebFormForm.initial_for(webform))
    if request.method == "POST":
        if not request.user.has_perm("leads.change_webform"):
            raise PermissionDenied
        if _save(request, form, webform) is not None:
            messages.success(request, _("Form saved."))
            return redirect("leads:webform_edit", form_id=webform.pk)
    return render(
        request,
        "leads/webform_form.html",
        {
            "form": form,
            "webform": webform,
            "snippet": embed_snippet(request, webform),
            "submit_url": request.build_absolute_uri(reverse("webform-submit", kwargs={"slug": webform.slug})),
            "recent": selectors.submission_list(form_id=webform.pk)[:20],
        },
    )


@login_required
@permission_required("leads.view_formsubmission", raise_exception=True)
def submission_list(request: HttpRequest) -> HttpResponse:
    status = request.GET.get("status", SubmissionStatus.QUARANTINED)
    if status not in SubmissionStatus.values:
        status = SubmissionStatus.QUARANTINED
    queryset = selectors.submission_list(status=status)
    try:
        page = keyset_paginate(queryset, ordering="-received_at", cursor=request.GET.get("cursor"), page_size=PAGE_SIZE)
    except ApiValidationError:  # a bad cursor shows the first page
        page = keyset_paginate(queryset, ordering="-received_at", cursor=None, page_size=PAGE_SIZE)
    rows = [(s, sorted((str(k), str(v)) for k, v in (s.payload or {}).items())) for s in page.rows]
    return render(
        request,
        "leads/submission_list.html",
        {"page": page, "rows": rows, "status": status, "statuses": SubmissionStatus.choices},
    )


def _submission(submission_id: int) -> FormSubmission:
    submission = selectors.submission_list().filter(pk=submission_id).first()
    if submission is None:
        raise Http404(_("No such submission."))
    return submission


@login_required
@permission_required("leads.change_formsubmission", raise_exception=True)
@require_POST
def submission_release(request: HttpRequest, submission_id: int) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    try:
        lead = services.submission_release(submission=_submission(submission_id), by=user)
    except ValidationError as exc:
        messages.error(request, _("Could not release: %(errors)s") % {"errors": "; ".join(exc.messages)})
    else:
        messages.success(request, _("Released: the lead “%(name)s” was created or updated.") % {"name": lead.name})
    return redirect(f"{reverse('leads:submission_list')}?status=quarantined")


@login_required
@permission_required("leads.change_formsubmission", raise_exception=True)
@require_POST
def submission_reject(request: HttpRequest, submission_id: int) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    try:
        services.submission_reject(submission=_submission(submission_id), by=user)
    except ValidationError as exc:
        messages.error(request, "; ".join(exc.messages))
    else:
        messages.success(request, _("Submission rejected."))
    return redirect(f"{reverse('leads:submission_list')}?status=quarantined")


@login_required
@permission_required("leads.delete_formsubmission", raise_exception=True)
@require_POST
def submission_delete(request: HttpRequest, submission_id: int) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    submission = _submission(submission_id)
    try:
        services.submission_delete(submission=submission, by=user)
    except ValidationError as exc:
        messages.error(request, "; ".join(exc.messages))
    else:
        messages.success(request, _("Submission deleted, with the data it held."))
    return redirect(f"{reverse('leads:submission_list')}?status={submission.status}")
