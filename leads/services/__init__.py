"""Writes for the leads app, one module per area; import from here (``from leads import services``)."""

from leads.services.leads import (
    EDITABLE_FIELDS,
    STAGE_TIMESTAMPS,
    interaction_record,
    lead_assign,
    lead_change_stage,
    lead_create,
    lead_delete,
    lead_update,
)

__all__ = [
    "EDITABLE_FIELDS",
    "STAGE_TIMESTAMPS",
    "interaction_record",
    "lead_assign",
    "lead_change_stage",
    "lead_create",
    "lead_delete",
    "lead_update",
]
