"""The scoring app's REST API."""
