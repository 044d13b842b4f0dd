"""Lead pages, one module per area."""

from leads.views.activity import activity_log
from leads.views.followups import task_complete, task_create, task_list, task_reopen
from leads.views.imports import import_detail, import_list, import_new, import_undo
from leads.views.leads import lead_create, lead_detail, lead_edit, lead_list, lead_stage_change
from leads.views.pipeline import pipeline_status

__all__ = [
    "activity_log",
    "import_detail",
    "import_list",
    "import_new",
    "import_undo",
    "lead_create",
    "lead_detail",
    "lead_edit",
    "lead_list",
    "lead_stage_change",
    "pipeline_status",
    "task_complete",
    "task_create",
    "task_list",
    "task_reopen",
]
