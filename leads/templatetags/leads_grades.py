"""Template filter for lead grades: the default bands' keys in the reader's language."""

from __future__ import annotations

from django import template
from django.utils.translation import pgettext_lazy

register = template.Library()

# The default bands of scoring.rules; a custom band's key is shown as it is.
GRADE_LABELS = {
    "hot": pgettext_lazy("lead grade", "hot"),
    "warm": pgettext_lazy("lead grade", "warm"),
    "cold": pgettext_lazy("lead grade", "cold"),
}


@register.filter
def grade_label(grade: str) -> str:
    return str(GRADE_LABELS.get(grade, grade))
