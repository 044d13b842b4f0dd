"""Lead pages."""

from django.urls import path
from django.views.generic import RedirectView

from leads import views
from leads.views import duplicates, webforms

app_name = "leads"
urlpatterns = [
    path("", RedirectView.as_view(pattern_name="leads:list", permanent=False), name="home"),
    path("leads/", views.lead_list, name="list"),
    path("leads/new/", views.lead_create, name="create"),
    path("leads/<int:lead_id>/", views.lead_detail, name="detail"),
    path("leads/<int:lead_id>/edit/", views.lead_edit, name="edit"),
    path("leads/<int:lead_id>/stage/", views.lead_stage_change, name="stage"),
    path("leads/<int:lead_id>/activities/", views.activity_log, name="activity_log"),
    path("leads/<int:lead_id>/tasks/", views.task_create, name="task_create"),
    path("pipeline/", views.pipeline_status, name="pipeline_status"),
    path("imports/", views.import_list, name="import_list"),
    path("imports/new/", views.import_new, name="import_new"),
    path("imports/<int:job_id>/", views.import_detail, name="import_detail"),
    path("imports/<int:job_id>/undo/", views.import_undo, name="import_undo"),
    path("tasks/", views.task_list, name="task_list"),
    path("forms/", webforms.webform_list, name="webform_list"),
    path("forms/new/", webforms.webform_create, name="webform_create"),
    path("forms/<int:form_id>/", webforms.webform_edit, name="webform_edit"),
    path("forms/submissions/", webforms.submission_list, name="submission_list"),
    path("forms/submissions/<int:submission_id>/release/", webforms.submission_release, name="submission_release"),
    path("forms/submissions/<int:submission_id>/reject/", webforms.submission_reject, name="submission_reject"),
    path("forms/submissions/<int:submission_id>/delete/", webforms.submission_delete, name="submission_delete"),
    path("duplicates/", duplicates.duplicate_list, name="duplicate_list"),
    path("duplicates/merge/", duplicates.duplicate_merge, name="duplicate_merge"),
    path("merges/<int:merge_id>/", duplicates.merge_detail, name="merge_detail"),
    path("merges/<int:merge_id>/undo/", duplicates.merge_undo, name="merge_undo"),
    path("tasks/<int:task_id>/complete/", views.task_complete, name="task_complete"),
    path("tasks/<int:task_id>/reopen/", views.task_reopen, name="task_reopen"),
]
