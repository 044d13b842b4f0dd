"""The /api/v1/ router: every app registers its viewsets here."""

from django.urls import path
from rest_framework.routers import DefaultRouter

from assignment.api.views import (
    AvailabilityView,
    BulkReassignView,
    LeadAssignmentViewSet,
    NotificationViewSet,
    RepProfileViewSet,
    RepStatsView,
    RuleViewSet,
)
from leads.api.activity import ActivityViewSet
from leads.api.events import EventViewSet, PipelineStatusViewSet
from leads.api.followups import TaskViewSet
from leads.api.imports import ImportViewSet
from leads.api.merge import DuplicateListView, LeadMergeView, LeadMergeViewSet
from leads.api.timeline import TimelineViewSet
from leads.api.views import LeadViewSet
from leads.api.webforms import SubmissionViewSet, WebFormSubmitView, WebFormViewSet
from scoring.api.predictive import PredictiveModelViewSet
from scoring.api.rulesets import RescoreJobViewSet, RuleSetViewSet
from scoring.api.views import LeadScoreViewSet

router = DefaultRouter()
router.register("leads", LeadViewSet, basename="lead")
router.register("imports", ImportViewSet, basename="import")
router.register(r"leads/(?P<lead_id>\d+)/activities", ActivityViewSet, basename="lead-activity")
router.register(r"leads/(?P<lead_id>\d+)/timeline", TimelineViewSet, basename="lead-timeline")
router.register(r"leads/(?P<lead_id>\d+)/score", LeadScoreViewSet, basename="lead-score")
router.register("scoring/model", PredictiveModelViewSet, basename="predictive-model")
router.register("scoring/rule-sets", RuleSetViewSet, basename="scoring-rule-set")
router.register("scoring/rescore-jobs", RescoreJobViewSet, basename="rescore-job")
router.register(r"leads/(?P<lead_id>\d+)/assignments", LeadAssignmentViewSet, basename="lead-assignment")
router.register("assignment/rules", RuleViewSet, basename="assignment-rule")
router.register("assignment/profiles", RepProfileViewSet, basename="assignment-profile")
router.register("assignment/notifications", NotificationViewSet, basename="assignment-notification")
router.register("tasks", TaskViewSet, basename="task")
router.register("forms", WebFormViewSet, basename="webform")
router.register("submissions", SubmissionViewSet, basename="submission")
router.register("merges", LeadMergeViewSet, basename="merge")
router.register("events", EventViewSet, basename="event")
router.register("pipeline/status", PipelineStatusViewSet, basename="pipeline-status")

urlpatterns = [
    path("forms/<slug:slug>/submit/", WebFormSubmitView.as_view(), name="webform-submit"),
    path("duplicates/", DuplicateListView.as_view(), name="duplicate-list"),
    path("assignment/availability/", AvailabilityView.as_view(), name="assignment-availability"),
    path("assignment/bulk-reassign/", BulkReassignView.as_view(), name="assignment-bulk-reassign"),
    path("assignment/reps/stats/", RepStatsView.as_view(), name="assignment-rep-stats"),
    path("leads/<int:lead_id>/merge/", LeadMergeView.as_view(), name="lead-merge"),
    # A file name, not a collection: no trailing slash (the router would add one).
    path("imports/<int:pk>/errors.csv", ImportViewSet.as_view({"get": "errors_csv"}), name="import-errors-csv"),
    *router.urls,
]
