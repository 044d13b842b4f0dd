"""The assignment API under /api/v1/assignment/ and /api/v1/leads/<id>/assignments/."""
