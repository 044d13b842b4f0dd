"""Lead API serializers: validate and shape; the services do the writing."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _
from rest_framework import serializers

from common.serializers import PrebuiltFieldsMixin
from leads.models import Campaign, Interaction, Lead, LeadStageChange, Stage
from users.models import Role, Team, User

MAX_JSON_BYTES = 64 * 1024


class UserBriefSerializer(serializers.ModelSerializer[User]):
    name = serializers.CharField(source="__str__", read_only=True)

    class Meta:
        model = User
        fields = ["id", "username", "name"]


class CampaignSerializer(serializers.ModelSerializer[Campaign]):
    class Meta:
        model = Campaign
        fields = ["id", "name", "channel", "cost", "currency", "starts_on", "ends_on", "utm_campaign"]


class TagNamesField(serializers.ListField):
    """Tag names both ways: writes a list of names, reads the lead's (prefetched) tags as sorted names."""

    def to_representation(self, data: Any) -> list[str]:
        return sorted(tag.name for tag in data.all())


class LeadSerializer(PrebuiltFieldsMixin, serializers.ModelSerializer[Lead]):
    owner = serializers.PrimaryKeyRelatedField(
        queryset=User.objects.filter(is_active=True), allow_null=True, required=False
    )
    owner_detail = UserBriefSerializer(source="owner", read_only=True)
    team = serializers.PrimaryKeyRelatedField(queryset=Team.objects.all(), allow_null=True, required=False)
    campaign = serializers.PrimaryKeyRelatedField(queryset=Campaign.objects.all(), allow_null=True, required=False)
    tags = TagNamesField(
        child=serializers.CharField(max_length=50),
        required=False,
        max_length=50,
        help_text="Tag names; unknown tags are created.",
    )
    interests = serializers.ListField(child=serializers.CharField(max_length=100), required=False, max_length=100)
    attributes = serializers.DictField(required=False, help_text="Custom attributes: a flat JSON object.")
    stage = serializers.ChoiceField(choices=Stage.choices, required=False)
    # The score card's values (leads.LeadScore), read through the lead's properties.
    score = serializers.IntegerField(read_only=True)
    grade = serializers.CharField(read_only=True)
    score_updated_at = serializers.DateTimeField(read_only=True, allow_null=True)
    conversion_probability = serializers.FloatField(
        read_only=True, allow_null=True, help_text="P(convert) from the active predictive model; null until scored."
    )
    priority = serializers.FloatField(read_only=True, help_text="The queue order: score + 100 × probability.")

    class Meta:
        model = Lead
        fields = [
            "id", "name", "email", "phone", "company", "job_title", "website",
            "industry", "company_size", "country", "region", "city", "interests", "tags", "attributes",
            "source", "campaign", "utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content",
            "stage", "lost_reason", "first_contacted_at", "mql_at", "sql_at", "converted_at", "lost_at",
            "owner", "owner_detail", "team",
            "score", "grade", "score_updated_at", "conversion_probability", "priority",
            "last_activity_at", "do_not_contact", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = [
            "first_contacted_at", "mql_at", "sql_at", "converted_at", "lost_at",
            "score", "grade", "score_updated_at", "last_activity_at", "created_at", "updated_at",
        ]  # fmt: skip
        extra_kwargs: dict[str, dict[str, Any]] = {"email": {"validators": []}, "phone": {"validators": []}}

    def validate_attributes(self, value: dict[str, Any]) -> dict[str, Any]:
        import json

        for key, item in value.items():
            if isinstance(item, (dict, list)):
                raise serializers.ValidationError(
                    _("“%(key)s”: values must be text, numbers or booleans.") % {"key": key}
                )
        if len(json.dumps(value, ensure_ascii=False).encode()) > MAX_JSON_BYTES:
            raise serializers.ValidationError(_("Custom attributes may take at most 64 KB."))
        return value

    def validate_owner(self, owner: User | None) -> User | None:
        """A rep may take a lead or leave it in the pool, not hand it to someone else."""
        user = self.context["request"].user
        if owner is None or owner.pk == user.pk or user.role in (Role.ADMIN, Role.MARKETING):
            return owner
        if user.role == Role.MANAGER and (owner.team_id in user.managed_team_ids):
            return owner
        raise serializers.ValidationError(_("You may not assign leads to this user."))

    def validate_team(self, team: Team | None) -> Team | None:
        """Reps and managers move leads only within the teams they work in or lead."""
        user = self.context["request"].user
        if team is None or user.role in (Role.ADMIN, Role.MARKETING):
            return team
        if (user.role == Role.MANAGER and team.pk in user.managed_team_ids) or team.pk == user.team_id:
            return team
        raise serializers.ValidationError(_("You may not move leads to this team."))

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        stage = attrs.get("stage")
        if stage == Stage.LOST and not (attrs.get("lost_reason") or (self.instance and self.instance.lost_reason)):
            raise serializers.ValidationError({"lost_reason": [_("Say why the lead is lost.")]})
        user = self.context["request"].user
        creating_unowned = self.instance is None and "owner" not in attrs and "team" not in attrs
        if creating_unowned and user.role in (Role.REP, Role.MANAGER):
            # As on the lead page, a rep's or manager's new lead is theirs by default; left ownerless and
            # teamless it would vanish from their own view the moment it was created.
            attrs["owner"] = user
        return attrs


class LeadStageChangeSerializer(serializers.ModelSerializer[LeadStageChange]):
    changed_by = UserBriefSerializer(read_only=True)

    class Meta:
        model = LeadStageChange
        fields = ["id", "from_stage", "to_stage", "changed_by", "changed_at", "reason"]


class InteractionSerializer(serializers.ModelSerializer[Interaction]):
    class Meta:
        model = Interaction
        fields = ["id", "type", "occurred_at", "properties", "external_id", "created_at"]
