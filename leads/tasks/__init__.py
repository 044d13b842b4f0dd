"""Celery tasks of the leads app, one module per area; Celery autodiscovers this package."""
