"""Lead pages, one module per area."""

from leads.views.leads import lead_create, lead_detail, lead_edit, lead_list, lead_stage_change

__all__ = ["lead_create", "lead_detail", "lead_edit", "lead_list", "lead_stage_change"]
