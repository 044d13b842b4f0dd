"""App config for leads: the lead, its origin, its event log and its lifecycle."""

from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class LeadsConfig(AppConfig):
    name = "leads"
    verbose_name = _("Leads")

    def ready(self) -> None:
        from corsheaders.signals import check_request_enabled

        from leads.api.webforms import cors_allow_form_origin

        # A web form's submit URL answers CORS for that form's allowed origins only.
        check_request_enabled.connect(cors_allow_form_origin, dispatch_uid="leads-webform-cors")

        # Like permissions, the built-in event types are ensured after every migrate, and so after
        # every flush of a test database, which would otherwise leave the catalogue empty.
        def _ensure_catalogue(sender: AppConfig, **kwargs: object) -> None:
            from leads.services.catalogue import event_types_ensure_builtin

            event_types_ensure_builtin()

        post_migrate.connect(_ensure_catalogue, sender=self, dispatch_uid="leads-event-catalogue", weak=False)
