"""Settings entry point: production overrides when DJANGO_ENV=production, else the base."""

import os

if os.environ.get("DJANGO_ENV", "").lower() == "production":
    from leadcrm.settings.production import *  # noqa: F403
else:
    from leadcrm.settings.base import *  # noqa: F403
