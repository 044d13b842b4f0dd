"""Template tags for follow-ups: the overdue count on the "My tasks" nav link."""

from __future__ import annotations

from typing import Any

from django import template

from leads import selectors
from users.models import User

register = template.Library()


@register.simple_tag(takes_context=True)
def overdue_task_count(context: dict[str, Any]) -> int:
    """Open tasks of the signed-in user past their due time: one COUNT on the open-tasks index."""
    user = context.get("user")
    if not isinstance(user, User) or not user.is_authenticated:
        return 0
    return selectors.tasks_overdue(user).count()
