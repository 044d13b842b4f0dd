"""Assignment pages."""

from django.urls import path

from assignment import views

app_name = "assignment"
urlpatterns = [
    path("assignment/", views.rule_list, name="rule_list"),
    path("assignment/rules/new/", views.rule_edit, name="rule_new"),
    path("assignment/rules/<int:rule_id>/", views.rule_edit, name="rule_edit"),
    path("assignment/rules/<int:rule_id>/move/<str:direction>/", views.rule_move, name="rule_move"),
    path("assignment/rules/<int:rule_id>/toggle/", views.rule_toggle, name="rule_toggle"),
    path("assignment/me/", views.my_availability, name="me"),
    path("assignment/reassign/", views.bulk_reassign, name="bulk_reassign"),
    path("assignment/leads/<int:lead_id>/rerun/", views.lead_rerun, name="lead_rerun"),
]
