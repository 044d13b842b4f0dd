"""One foreign key on the score card, the cascading one.

Migration 0009 replaced the card's foreign key with one that cascades on delete, but Django adds a
new table's foreign keys at the end of the migration, after that step: every database migrated
from scratch had both, and every card insert (an import's 50,000 new leads, each web-form lead)
checked the lead twice. The model now says ``db_constraint=False`` (Django makes no constraint);
the database keeps ``leads_leadscore_lead_id_fk`` (ON DELETE CASCADE) and nothing else.
"""

import django.db.models.deletion
from django.db import migrations, models

CASCADE_FK = "leads_leadscore_lead_id_fk"


def one_foreign_key(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return  # SQLite keeps the key its table was created with
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "SELECT conname FROM pg_constraint WHERE conrelid = 'leads_leadscore'::regclass AND contype = 'f'"
        )
        names = [name for (name,) in cursor.fetchall()]
        for name in names:
            if name != CASCADE_FK:
                cursor.execute(f'ALTER TABLE leads_leadscore DROP CONSTRAINT "{name}"')
        if CASCADE_FK not in names:
            cursor.execute(
                f"ALTER TABLE leads_leadscore ADD CONSTRAINT {CASCADE_FK} FOREIGN KEY (lead_id)"
                " REFERENCES leads_lead (id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED"
            )


class Migration(migrations.Migration):
    dependencies = [
        ("leads", "0009_lead_score_table"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="leadscore",
                    name="lead",
                    field=models.OneToOneField(
                        db_constraint=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="scorecard",
                        serialize=False,
                        to="leads.lead",
                    ),
                ),
            ],
            database_operations=[migrations.RunPython(one_foreign_key, migrations.RunPython.noop)],
        ),
    ]
