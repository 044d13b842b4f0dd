"""Data step: the default rule set (active), its grade bands and thresholds, so scoring works out of the box."""

from django.db import migrations


def create_default(apps, schema_editor):
    from scoring import rules

    rule_set_model = apps.get_model("scoring", "ScoringRuleSet")
    if rule_set_model.objects.exists():
        return
    band_model = apps.get_model("scoring", "GradeBand")
    rule_model = apps.get_model("scoring", "ScoringRule")
    row = rule_set_model.objects.create(
        name="Default",
        version=1,
        is_active=True,
        half_life_days=rules.DEFAULT_RULE_SET.half_life_days,
        mql_threshold=rules.DEFAULT_RULE_SET.thresholds.mql,
        sql_threshold=rules.DEFAULT_RULE_SET.thresholds.sql,
    )
    band_model.objects.bulk_create([band_model(rule_set=row, **band) for band in rules.default_band_rows()])
    rule_model.objects.bulk_create([rule_model(rule_set=row, **rule) for rule in rules.default_rule_rows()])


class Migration(migrations.Migration):
    dependencies = [("scoring", "0001_initial")]

    operations = [migrations.RunPython(create_default, migrations.RunPython.noop)]
