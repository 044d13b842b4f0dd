"""Database backends of the project (thin subclasses of Django's)."""
