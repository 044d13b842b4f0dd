"""PostgreSQL indexes the model cannot express portably: trigram search and JSON containment."""

from django.db import migrations

from common.db import PostgresOnlySQL


class Migration(migrations.Migration):
    dependencies = [("leads", "0002_initial")]

    operations = [
        PostgresOnlySQL("CREATE EXTENSION IF NOT EXISTS pg_trgm", reverse_sql=migrations.RunSQL.noop),
        # Free-text ?q= is "search_text LIKE '%term%'"; a trigram GIN index answers it without a scan.
        PostgresOnlySQL(
            "CREATE INDEX IF NOT EXISTS lead_search_trgm_idx ON leads_lead USING gin (search_text gin_trgm_ops)",
            reverse_sql="DROP INDEX IF EXISTS lead_search_trgm_idx",
        ),
        # ?attr.key=value is "attributes @> {key: value}".
        PostgresOnlySQL(
            "CREATE INDEX IF NOT EXISTS lead_attributes_gin_idx ON leads_lead USING gin (attributes jsonb_path_ops)",
            reverse_sql="DROP INDEX IF EXISTS lead_attributes_gin_idx",
        ),
    ]
