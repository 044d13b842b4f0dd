"""Scoring pages: rule set versions, the rule editor, preview and apply; the predictive model."""

from django.urls import path

from scoring import views
from scoring.models import RescoreMode

app_name = "scoring"
urlpatterns = [
    path("scoring/", views.rule_set_list, name="rule_sets"),
    path("scoring/<int:rule_set_id>/", views.rule_set_detail, name="rule_set"),
    path("scoring/<int:rule_set_id>/copy/", views.rule_set_copy, name="rule_set_copy"),
    path("scoring/<int:rule_set_id>/rules/new/", views.rule_edit, name="rule_new"),
    path("scoring/<int:rule_set_id>/rules/<int:rule_id>/", views.rule_edit, name="rule_edit"),
    path("scoring/<int:rule_set_id>/rules/<int:rule_id>/delete/", views.rule_delete, name="rule_delete"),
    path(
        "scoring/<int:rule_set_id>/preview/",
        views.rule_set_rescore,
        {"mode": RescoreMode.PREVIEW},
        name="rule_set_preview",
    ),
    path(
        "scoring/<int:rule_set_id>/apply/", views.rule_set_rescore, {"mode": RescoreMode.APPLY}, name="rule_set_apply"
    ),
    path("scoring/jobs/<int:job_id>/", views.rescore_job_detail, name="job"),
    path("scoring/model/", views.predictive_model_detail, name="model"),
    path("scoring/model/train/", views.predictive_model_train, name="model_train"),
]
