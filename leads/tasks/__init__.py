"""Celery tasks of the leads app, one module per area; Celery autodiscovers this package."""

from leads.tasks import (
    imports,  # noqa: F401
    pipeline,  # noqa: F401
)
