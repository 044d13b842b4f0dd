"""Make ?q= plan well at a million leads (measured in docs/benchmarks.md)."""

from django.db import migrations

from common.db import PostgresOnlySQL


class Migration(migrations.Migration):
    dependencies = [("leads", "0005_collect_and_track")]

    operations = [
        # With the default sample the LIKE '%term%' estimate swung between 100 and 50,000 rows from one
        # ANALYZE to the next, and a low guess picked a 100-500 ms plan; a 10x sample makes it stable.
        PostgresOnlySQL(
            "ALTER TABLE leads_lead ALTER COLUMN search_text SET STATISTICS 1000",
            reverse_sql="ALTER TABLE leads_lead ALTER COLUMN search_text SET STATISTICS -1",
        ),
        # The new target only counts from the next ANALYZE, which autovacuum may take days to run.
        PostgresOnlySQL("ANALYZE leads_lead (search_text)", reverse_sql=migrations.RunSQL.noop),
    ]
