"""``{% lead_assignments lead %}``: the lead page's section with its assignment decisions, newest first."""

from __future__ import annotations

from typing import Any

from django import template

from assignment import selectors
from leads.models import Lead

register = template.Library()
SHOWN = 10


@register.inclusion_tag("assignment/_lead_assignments.html")
def lead_assignments(lead: Lead) -> dict[str, Any]:
    """The caller has already checked that the viewer may see ``lead``."""
    return {"decisions": list(selectors.lead_decisions(lead=lead)[:SHOWN]), "lead": lead}
