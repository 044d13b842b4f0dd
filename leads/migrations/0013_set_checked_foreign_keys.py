"""The keys an import writes for every row become set-checked keys on PostgreSQL (common/setfk.py).

A 100,000-row list spent a third of PostgreSQL's time in row-by-row foreign-key checks at commit.
The model fields say ``db_constraint=False``; on PostgreSQL their foreign keys (and the score card's
cascading one from 0009/0010) are replaced by statement-level triggers with the same guarantees.
SQLite keeps the keys its tables were created with (no table rebuild, so the score-card trigger stays).
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

from common.setfk import ForeignKey, SetForeignKeys

# (table, column, parent); all parents' key is "id". The score card's key cascades, as before.
SET_KEYS = [
    ForeignKey("leads_lead", "import_job_id", "leads_importjob"),
    ForeignKey("leads_lead", "created_by_id", "users_user"),
    ForeignKey("leads_leadscore", "lead_id", "leads_lead", on_delete="cascade"),
    ForeignKey("leads_leadstagechange", "lead_id", "leads_lead"),
    ForeignKey("leads_leadstagechange", "changed_by_id", "users_user"),
    ForeignKey("leads_interaction", "lead_id", "leads_lead"),
    ForeignKey("leads_interaction", "created_by_id", "users_user"),
    ForeignKey("leads_lead_tags", "lead_id", "leads_lead"),
    ForeignKey("leads_lead_tags", "tag_id", "leads_tag"),
    ForeignKey("leads_importrowerror", "job_id", "leads_importjob"),
]


def _constraints(cursor, key):
    cursor.execute(
        "SELECT c.conname FROM pg_constraint c JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY(c.conkey)"
        " WHERE c.conrelid = %s::regclass AND c.contype = 'f' AND a.attname = %s",
        [key.table, key.column],
    )
    return [name for (name,) in cursor.fetchall()]


def drop_row_keys(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        for key in SET_KEYS:
            for name in _constraints(cursor, key):
                cursor.execute(f'ALTER TABLE {key.table} DROP CONSTRAINT "{name}"')


def restore_row_keys(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        for key in SET_KEYS:
            if _constraints(cursor, key):
                continue
            cascade = " ON DELETE CASCADE" if key.on_delete == "cascade" else ""
            cursor.execute(
                f"ALTER TABLE {key.table} ADD CONSTRAINT {key.name} FOREIGN KEY ({key.column})"
                f" REFERENCES {key.parent} (id){cascade} DEFERRABLE INITIALLY DEFERRED"
            )


class Migration(migrations.Migration):
    dependencies = [
        ("leads", "0012_importjob_touched_at_undo_from"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="importrowerror",
                    name="job",
                    field=models.ForeignKey(
                        db_constraint=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="row_errors",
                        to="leads.importjob",
                    ),
                ),
                migrations.AlterField(
                    model_name="interaction",
                    name="created_by",
                    field=models.ForeignKey(
                        blank=True,
                        db_constraint=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                migrations.AlterField(
                    model_name="interaction",
                    name="lead",
                    field=models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="interactions",
                        to="leads.lead",
                    ),
                ),
                migrations.AlterField(
                    model_name="lead",
                    name="created_by",
                    field=models.ForeignKey(
                        blank=True,
                        db_constraint=False,
                        editable=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                migrations.AlterField(
                    model_name="lead",
                    name="import_job",
                    field=models.ForeignKey(
                        blank=True,
                        db_constraint=False,
                        editable=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="created_leads",
                        to="leads.importjob",
                    ),
                ),
                migrations.AlterField(
                    model_name="lead",
                    name="tags",
                    field=models.ManyToManyField(
                        blank=True, db_constraint=False, related_name="leads", to="leads.tag", verbose_name="tags"
                    ),
                ),
                migrations.AlterField(
                    model_name="leadstagechange",
                    name="changed_by",
                    field=models.ForeignKey(
                        blank=True,
                        db_constraint=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                migrations.AlterField(
                    model_name="leadstagechange",
                    name="lead",
                    field=models.ForeignKey(
                        db_constraint=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="stage_changes",
                        to="leads.lead",
                    ),
                ),
            ],
            database_operations=[
                migrations.RunPython(drop_row_keys, restore_row_keys),
                SetForeignKeys(SET_KEYS),
            ],
        ),
    ]
