"""``{% lead_assignments lead %}``: the lead page's section with its assignment decisions, newest first."""

from __future__ import annotations

from typing import Any

from django import template

from assignment import selectors
from leads.models import Lead
from users.models import Role

register = template.Library()
SHOWN = 10


@register.inclusion_tag("assignment/_lead_assignments.html", takes_context=True)
def lead_assignments(context: dict[str, Any], lead: Lead) -> dict[str, Any]:
    """The caller has already checked that the viewer may see ``lead``; managers may re-run the rules."""
    user = context.get("user")
    return {
        "decisions": list(selectors.lead_decisions(lead=lead)[:SHOWN]),
        "lead": lead,
        "can_rerun": getattr(user, "role", None) in (Role.MANAGER, Role.ADMIN),
        "csrf_token": context.get("csrf_token"),
    }
