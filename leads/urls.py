"""Lead pages."""

from django.urls import path
from django.views.generic import RedirectView

from leads import views

app_name = "leads"
urlpatterns = [
    path("", RedirectView.as_view(pattern_name="leads:list", permanent=False), name="home"),
    path("leads/", views.lead_list, name="list"),
    path("leads/new/", views.lead_create, name="create"),
    path("leads/<int:lead_id>/", views.lead_detail, name="detail"),
    path("leads/<int:lead_id>/edit/", views.lead_edit, name="edit"),
    path("leads/<int:lead_id>/stage/", views.lead_stage_change, name="stage"),
]
