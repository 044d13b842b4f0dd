"""Writes for the leads app, one module per area; import from here (``from leads import services``)."""

from leads.services.activity import activity_log
from leads.services.events import events_ingest, visitor_link
from leads.services.followups import task_complete, task_create, task_reopen, task_update
from leads.services.imports import (
    import_create,
    import_error_rows,
    import_file_headers,
    import_preview,
    import_run,
    import_undo,
    import_undo_start,
)
from leads.services.intake import lead_find_match, lead_upsert
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
from leads.services.merge import lead_merge, lead_merge_undo
from leads.services.pipeline import leads_mark_dirty, pipeline_enqueue, pipeline_process_dirty
from leads.services.webforms import (
    submission_delete,
    submission_reject,
    submission_release,
    webform_create,
    webform_delete,
    webform_submit,
    webform_update,
)

__all__ = [
    "EDITABLE_FIELDS",
    "STAGE_TIMESTAMPS",
    "activity_log",
    "events_ingest",
    "import_create",
    "import_error_rows",
    "import_file_headers",
    "import_preview",
    "import_run",
    "import_undo",
    "import_undo_start",
    "interaction_record",
    "lead_assign",
    "lead_change_stage",
    "lead_create",
    "lead_delete",
    "lead_find_match",
    "lead_merge",
    "lead_merge_undo",
    "lead_update",
    "lead_upsert",
    "leads_mark_dirty",
    "pipeline_enqueue",
    "pipeline_process_dirty",
    "submission_delete",
    "submission_reject",
    "submission_release",
    "task_complete",
    "task_create",
    "task_reopen",
    "task_update",
    "visitor_link",
    "webform_create",
    "webform_delete",
    "webform_submit",
    "webform_update",
]
