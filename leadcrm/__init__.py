"""leadcrm project package: settings, Celery app, URL configuration."""

from leadcrm.celery import app as celery_app

__all__ = ("celery_app",)
