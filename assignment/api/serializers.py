"""Assignment API serializers: validate and shape; the services write."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from assignment import rules as engine
from assignment import services
from assignment.models import AssignmentDecision, AssignmentRule, Notification, RepProfile, Strategy, Trigger
from leads.api.serializers import UserBriefSerializer
from users.models import User

# A preview's outcome; a plain string in the schema (an enum would collide with the decision's "outcome").
PREVIEW_OUTCOME_HELP = "assigned (winner set), queued (a rule matched, nobody eligible) or no_rule."


def _raise_as_drf(exc: DjangoValidationError) -> None:
    raise serializers.ValidationError(exc.message_dict if hasattr(exc, "error_dict") else exc.messages) from exc


class RuleSerializer(serializers.ModelSerializer[AssignmentRule]):
    conditions = serializers.JSONField(
        required=False,
        help_text='All must hold: [{"field": "region", "operator": "in", "value": ["East"]}]; fields: lead fields or attr.<key>; operators as in scoring rules.',
    )
    triggers = serializers.JSONField(required=False, help_text=f"Any of: {', '.join(engine.TRIGGERS)}.")
    options = serializers.JSONField(
        required=False, help_text="Strategy options, validated per strategy (docs/assignment.md)."
    )
    pool_reps = serializers.PrimaryKeyRelatedField(
        queryset=User.objects.filter(is_active=True), many=True, required=False
    )
    last_user = serializers.IntegerField(source="cursor.last_user_id", read_only=True, allow_null=True, default=None)
    assigned = serializers.IntegerField(source="cursor.assigned", read_only=True, default=0)

    class Meta:
        model = AssignmentRule
        fields = [
            "id", "name", "position", "is_enabled", "conditions", "triggers", "pool", "pool_team", "pool_reps",
            "strategy", "options", "last_user", "assigned", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = ["created_at", "updated_at"]

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        instance = self.instance

        def value(name: str, default: Any) -> Any:
            return attrs.get(name, getattr(instance, name) if instance is not None else default)

        try:
            services.rule_validate(
                strategy=value("strategy", Strategy.ROUND_ROBIN),
                conditions=value("conditions", []),
                triggers=value("triggers", [Trigger.NEW, Trigger.MANUAL, Trigger.BULK]),
                options=value("options", {}),
            )
        except DjangoValidationError as exc:
            _raise_as_drf(exc)
        if value("pool", "everyone") == "reps" and not attrs.get(
            "pool_reps", instance.pool_reps.all() if instance else []
        ):
            raise serializers.ValidationError({"pool_reps": ["Name at least one rep for a list pool."]})
        return attrs

    def create(self, validated_data: dict[str, Any]) -> AssignmentRule:
        reps = validated_data.pop("pool_reps", [])
        return services.rule_save(rule=AssignmentRule(**validated_data), pool_reps=reps)

    def update(self, instance: AssignmentRule, validated_data: dict[str, Any]) -> AssignmentRule:
        reps = validated_data.pop("pool_reps", None)
        for name, value in validated_data.items():
            setattr(instance, name, value)
        return services.rule_save(rule=instance, pool_reps=reps)


class ReorderSerializer(serializers.Serializer[Any]):
    rule_ids = serializers.ListField(
        child=serializers.IntegerField(), min_length=1, help_text="Rule ids, first to try first."
    )


class SampleLeadSerializer(serializers.Serializer[Any]):
    """A lead to test against: an existing one (``lead``) or made-up fields (``fields`` and ``attributes``)."""

    lead = serializers.IntegerField(required=False, help_text="An existing lead you can see.")
    fields = serializers.DictField(
        required=False, help_text='Lead fields, e.g. {"region": "East", "score": 85, "grade": "hot"}.'
    )  # type: ignore[assignment]
    attributes = serializers.DictField(required=False, help_text="Custom attributes.")
    trigger = serializers.ChoiceField(choices=Trigger.choices, default=Trigger.NEW)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if "lead" not in attrs and "fields" not in attrs:
            raise serializers.ValidationError({"lead": ["Give a lead id or sample fields."]})
        unknown = sorted(set(attrs.get("fields", {})) - set(services.lead_condition_fields()))
        if unknown:
            raise serializers.ValidationError({"fields": [f"Unknown lead fields: {', '.join(unknown)}."]})
        return attrs


class CandidateSerializer(serializers.Serializer[Any]):
    user = serializers.IntegerField()
    name = serializers.CharField()
    open = serializers.IntegerField(help_text="Open leads owned.")
    max_open = serializers.IntegerField(allow_null=True)
    today = serializers.IntegerField(help_text="Leads received today.")
    daily = serializers.IntegerField(allow_null=True, help_text="Daily capacity.")
    available = serializers.BooleanField(help_text="Switched on, not out of office, in working hours.")
    weight = serializers.FloatField(allow_null=True, help_text="The strategy's weight (load ratio, conversion rate…).")
    excluded = serializers.CharField(help_text="Why this rep could not take the lead; empty if eligible.")


class MemberSerializer(serializers.Serializer[Any]):
    user = serializers.IntegerField()
    role = serializers.CharField()


class TestResultSerializer(serializers.Serializer[Any]):
    outcome = serializers.CharField(help_text=PREVIEW_OUTCOME_HELP)
    rule = serializers.IntegerField(allow_null=True)
    rule_name = serializers.CharField(allow_blank=True)
    winner = serializers.IntegerField(allow_null=True)
    reason = serializers.CharField()
    candidates = CandidateSerializer(many=True)
    supporting = MemberSerializer(many=True)
    rules_skipped = serializers.ListField(child=serializers.CharField())


def decision_data(decision: engine.Decision) -> dict[str, Any]:
    outcome = "no_rule" if decision.rule is None else ("assigned" if decision.winner_id is not None else "queued")
    return {
        "outcome": outcome,
        "rule": decision.rule.id if decision.rule else None,
        "rule_name": decision.rule.name if decision.rule else "",
        "winner": decision.winner_id,
        "reason": decision.reason,
        "candidates": decision.candidates_json(),
        "supporting": [{"user": user, "role": role} for user, role in decision.supporting],
        "rules_skipped": list(decision.rules_skipped),
    }


class DecisionSerializer(serializers.ModelSerializer[AssignmentDecision]):
    winner = UserBriefSerializer(read_only=True)
    previous_owner = UserBriefSerializer(read_only=True)
    decided_by = UserBriefSerializer(read_only=True)
    candidates = CandidateSerializer(many=True, read_only=True)
    supporting = MemberSerializer(many=True, read_only=True)

    class Meta:
        model = AssignmentDecision
        fields = [
            "id", "decided_at", "trigger", "outcome", "rule", "rule_name", "strategy", "winner", "reason",
            "candidates", "supporting", "previous_owner", "decided_by",
        ]  # fmt: skip


class RepProfileSerializer(serializers.ModelSerializer[RepProfile]):
    user_detail = UserBriefSerializer(source="user", read_only=True)
    working_hours = serializers.JSONField(required=False, help_text='{"mon": [["09:00", "18:00"]], …}; {} = any time.')
    out_of_office = serializers.JSONField(required=False, help_text='[{"start": "2026-12-24", "end": "2026-12-26"}]')
    territories = serializers.ListField(child=serializers.CharField(max_length=100), required=False, max_length=200)
    industries = serializers.ListField(child=serializers.CharField(max_length=100), required=False, max_length=200)
    skills = serializers.ListField(child=serializers.CharField(max_length=100), required=False, max_length=200)

    class Meta:
        model = RepProfile
        fields = [
            "id", "user", "user_detail", "is_available", "daily_capacity", "max_open_leads", "time_zone",
            "working_hours", "out_of_office", "territories", "industries", "tier", "skills", "updated_at",
        ]  # fmt: skip
        read_only_fields = ["updated_at"]

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        instance = self.instance

        def value(name: str, default: Any) -> Any:
            return attrs.get(name, getattr(instance, name) if instance is not None else default)

        try:
            services.profile_validate(
                time_zone=value("time_zone", "Asia/Shanghai"),
                working_hours=value("working_hours", {}),
                out_of_office=value("out_of_office", []),
            )
        except DjangoValidationError as exc:
            _raise_as_drf(exc)
        return attrs

    def create(self, validated_data: dict[str, Any]) -> RepProfile:
        return services.profile_save(profile=RepProfile(**validated_data))

    def update(self, instance: RepProfile, validated_data: dict[str, Any]) -> RepProfile:
        validated_data.pop("user", None)  # a profile stays with its person
        for name, value in validated_data.items():
            setattr(instance, name, value)
        return services.profile_save(profile=instance)


class AvailabilitySerializer(serializers.Serializer[Any]):
    available = serializers.BooleanField()


class BulkReassignSerializer(serializers.Serializer[Any]):
    lead_ids = serializers.ListField(child=serializers.IntegerField(), min_length=1, max_length=1000)
    owner = serializers.PrimaryKeyRelatedField(
        queryset=User.objects.filter(is_active=True),
        allow_null=True,
        required=False,
        help_text="Give every lead to this person; empty: re-run the rules (bulk trigger).",
    )


class BulkResultSerializer(serializers.Serializer[Any]):
    assigned = serializers.IntegerField()
    kept = serializers.IntegerField()
    queued = serializers.IntegerField()
    unchanged = serializers.IntegerField()
    not_found = serializers.ListField(
        child=serializers.IntegerField(), help_text="Ids you cannot see or that do not exist."
    )


class DryRunInputSerializer(serializers.Serializer[Any]):
    days = serializers.IntegerField(
        min_value=1, max_value=90, default=7, help_text="Replay leads created in the last N days."
    )
    rules = serializers.ListField(
        child=serializers.DictField(),
        required=False,
        max_length=100,
        help_text="A draft rule set (rule fields as in /rules/, in order); omitted: the enabled rules as saved.",
    )

    def validate_rules(self, value: list[dict[str, Any]]) -> list[dict[str, Any]]:
        errors: dict[str, Any] = {}
        for index, rule in enumerate(value):
            try:
                services.rule_validate(
                    strategy=str(rule.get("strategy") or Strategy.ROUND_ROBIN),
                    conditions=rule.get("conditions", []),
                    triggers=rule.get("triggers", [Trigger.NEW, Trigger.MANUAL, Trigger.BULK]),
                    options=rule.get("options", {}),
                )
            except DjangoValidationError as exc:
                errors[str(index)] = exc.message_dict
        if errors:
            raise serializers.ValidationError(errors)
        return value


class DryRunRowSerializer(serializers.Serializer[Any]):
    lead = serializers.IntegerField()
    lead_name = serializers.CharField()
    score = serializers.IntegerField()
    outcome = serializers.CharField(help_text=PREVIEW_OUTCOME_HELP)
    rule_name = serializers.CharField(allow_blank=True)
    winner = serializers.IntegerField(allow_null=True)
    reason = serializers.CharField()


class DryRunRepSerializer(serializers.Serializer[Any]):
    user = serializers.IntegerField()
    name = serializers.CharField()
    leads = serializers.IntegerField(help_text="Leads this rep would have received.")
    score_sum = serializers.IntegerField(help_text="The sum of those leads' scores.")


class DryRunSerializer(serializers.Serializer[Any]):
    leads = serializers.IntegerField()
    assigned = serializers.IntegerField()
    queued = serializers.IntegerField()
    no_rule = serializers.IntegerField()
    per_rep = DryRunRepSerializer(many=True)
    rows = DryRunRowSerializer(many=True, help_text="The first 500 leads, oldest first.")


def dry_run_data(result: services.DryRun) -> dict[str, Any]:
    rows = [
        {"lead": row.lead_id, "lead_name": row.lead_name, "score": row.score, **decision_data(row.decision)}
        for row in result.rows
    ]
    received: dict[int, list[int]] = {}
    for row in result.rows:
        if row.decision.winner_id is not None:
            received.setdefault(row.decision.winner_id, []).append(row.score)
    names = {rep.user_id: rep.name for rep in result.reps}
    return {
        "leads": len(rows),
        "assigned": sum(1 for row in rows if row["outcome"] == "assigned"),
        "queued": sum(1 for row in rows if row["outcome"] == "queued"),
        "no_rule": sum(1 for row in rows if row["outcome"] == "no_rule"),
        "per_rep": [
            {"user": user, "name": names.get(user, str(user)), "leads": len(scores), "score_sum": sum(scores)}
            for user, scores in sorted(received.items(), key=lambda item: -len(item[1]))
        ],
        "rows": rows[:500],
    }


class NotificationSerializer(serializers.ModelSerializer[Notification]):
    class Meta:
        model = Notification
        fields = ["id", "kind", "lead", "message", "created_at", "read_at"]


class RepStatsSerializer(serializers.Serializer[Any]):
    user = UserBriefSerializer()
    received = serializers.IntegerField(help_text="Leads assigned to this rep in the period.")
    capacity = serializers.IntegerField(
        allow_null=True, help_text="Daily capacity × days in the period; null: no limit."
    )
    score_sum = serializers.IntegerField(help_text="Sum of the received leads' scores when assigned.")
    open_leads = serializers.IntegerField()
    won = serializers.IntegerField()
    lost = serializers.IntegerField()
    conversion_rate = serializers.FloatField(allow_null=True, help_text="won / (won + lost) over owned leads.")
    breaches = serializers.IntegerField(help_text="First-touch deadlines missed in the period.")
    minutes_to_first_touch = serializers.FloatField(
        allow_null=True, help_text="Average minutes from assignment to first contact, leads received in the period."
    )
