"""Assignment data: rep profiles, ordered routing rules with their rotation cursors, decisions, the queue, lead teams."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Tier(models.TextChoices):
    JUNIOR = "junior", _("Junior")
    MID = "mid", _("Mid-level")
    SENIOR = "senior", _("Senior")


class RepProfile(models.Model):
    """How much and when a person can take leads, and what they are good at. A profile makes a user assignable."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, verbose_name=_("user"), on_delete=models.CASCADE, related_name="rep_profile"
    )
    is_available = models.BooleanField(_("available"), default=True, help_text=_("The rep's own on/off switch."))
    daily_capacity = models.PositiveIntegerField(
        _("new leads per day"), null=True, blank=True, help_text=_("Empty: no daily limit.")
    )
    max_open_leads = models.PositiveIntegerField(
        _("open leads at most"), null=True, blank=True, help_text=_("Empty: no limit.")
    )
    time_zone = models.CharField(_("time zone"), max_length=64, default="Asia/Shanghai")
    # {"mon": [["09:00", "12:00"], ["13:00", "18:00"]], …}; a weekday left out is a day off; {} = any time.
    working_hours = models.JSONField(_("working hours"), default=dict, blank=True)
    # [{"start": "2026-12-24", "end": "2026-12-26"}, …], both days included, in the rep's time zone.
    out_of_office = models.JSONField(_("out of office"), default=list, blank=True)
    territories = models.JSONField(_("territories / regions"), default=list, blank=True)
    industries = models.JSONField(_("industries"), default=list, blank=True)
    tier = models.CharField(_("seniority"), max_length=10, choices=Tier.choices, default=Tier.MID)
    skills = models.JSONField(_("skills"), default=list, blank=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("rep profile")
        verbose_name_plural = _("rep profiles")

    def __str__(self) -> str:
        return str(self.user)


class Trigger(models.TextChoices):
    NEW = "new", _("New lead")
    GRADE_UP = "grade_up", _("Grade or stage threshold crossed")
    MANUAL = "manual", _("Manual re-run")
    BULK = "bulk", _("Bulk reassignment")
    QUEUE = "queue", _("Taken from the queue")
    SLA = "sla", _("First-touch deadline missed")


class Strategy(models.TextChoices):
    RANDOM = "random", _("Random")
    ROUND_ROBIN = "round_robin", _("Round-robin")
    LOAD_BALANCED = "load_balanced", _("Load-balanced")
    PERFORMANCE = "performance", _("Capability / performance")
    POTENTIAL = "potential", _("Lead potential")
    TERRITORY = "territory", _("Region / territory")
    INDUSTRY = "industry", _("Industry")
    AVAILABILITY = "availability", _("Availability")
    TEAM = "team", _("Team / collaborative")


class PoolKind(models.TextChoices):
    TEAM = "team", _("A team")
    REPS = "reps", _("A list of reps")
    EVERYONE = "everyone", _("Everyone")


def default_triggers() -> list[str]:
    return [Trigger.NEW, Trigger.MANUAL, Trigger.BULK]


class AssignmentRule(models.Model):
    """One routing rule: when its conditions hold for a lead, its strategy picks an owner from its pool.

    Enabled rules are tried by ``position``; the first whose conditions hold and whose ``triggers``
    include the current trigger decides (if its pool has nobody eligible, the lead is queued).
    """

    name = models.CharField(_("name"), max_length=200)
    position = models.PositiveIntegerField(_("position"), default=0)
    is_enabled = models.BooleanField(_("enabled"), default=True)
    # [{"field": "region", "operator": "in", "value": ["华东", "East"], "negate": false}, …]: all must hold.
    conditions = models.JSONField(_("conditions"), default=list, blank=True)
    triggers = models.JSONField(_("triggers"), default=default_triggers, blank=True)
    pool = models.CharField(_("pool"), max_length=10, choices=PoolKind.choices, default=PoolKind.EVERYONE)
    pool_team = models.ForeignKey(
        "users.Team", verbose_name=_("team"), null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    pool_reps = models.ManyToManyField(
        settings.AUTH_USER_MODEL, verbose_name=_("reps"), blank=True, related_name="assignment_rules"
    )
    strategy = models.CharField(_("strategy"), max_length=20, choices=Strategy.choices, default=Strategy.ROUND_ROBIN)
    options = models.JSONField(_("strategy options"), default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["position", "id"]
        verbose_name = _("assignment rule")
        verbose_name_plural = _("assignment rules")

    def __str__(self) -> str:
        return self.name


class RuleCursor(models.Model):
    """The rotation state of one rule: whom round-robin gave the last lead. Locked while a lead is routed."""

    rule = models.OneToOneField(AssignmentRule, primary_key=True, on_delete=models.CASCADE, related_name="cursor")
    last_user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    assigned = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.rule_id}: {self.last_user_id}"


class Outcome(models.TextChoices):
    ASSIGNED = "assigned", _("Assigned")
    QUEUED = "queued", _("Queued")
    KEPT = "kept", _("Owner kept")


class AssignmentDecision(models.Model):
    """Why a lead went to whom: the rule, the strategy, every candidate with load and reason, the winner."""

    lead = models.ForeignKey("leads.Lead", on_delete=models.CASCADE, related_name="assignment_decisions")
    rule = models.ForeignKey(AssignmentRule, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    rule_name = models.CharField(_("rule"), max_length=200, blank=True)  # kept when the rule is deleted
    strategy = models.CharField(_("strategy"), max_length=20, blank=True)
    trigger = models.CharField(_("trigger"), max_length=20, choices=Trigger.choices)
    outcome = models.CharField(_("outcome"), max_length=10, choices=Outcome.choices)
    # [{"user": id, "name": …, "open": 3, "max_open": 20, "today": 1, "daily": 10, "available": true,
    #   "weight": 0.42, "excluded": "" | "reason in words"}, …]
    candidates = models.JSONField(_("candidates"), default=list, blank=True)
    winner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reason = models.TextField(_("reason"), blank=True)
    supporting = models.JSONField(_("supporting members"), default=list, blank=True)
    # The lead's score and grade when decided (the fairness view sums what each rep received).
    lead_score = models.IntegerField(_("score"), default=0)
    lead_grade = models.CharField(_("grade"), max_length=16, blank=True)
    previous_owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(_("at"), default=timezone.now)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-decided_at", "-id"]
        verbose_name = _("assignment decision")
        verbose_name_plural = _("assignment decisions")
        indexes = [
            models.Index(fields=["lead", "-decided_at"], name="decision_lead_idx"),
            # Capacity: how many leads each rep received today.
            models.Index(
                fields=["winner", "decided_at"], condition=models.Q(outcome="assigned"), name="decision_winner_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.lead_id}: {self.outcome} → {self.winner_id}"


class QueueEntry(models.Model):
    """A lead nobody could take yet; it waits in its team's queue until ``queue_drain`` assigns it."""

    lead = models.OneToOneField("leads.Lead", on_delete=models.CASCADE, related_name="assignment_queue_entry")
    team = models.ForeignKey("users.Team", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    rule = models.ForeignKey(AssignmentRule, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    reason = models.TextField(_("reason"), blank=True)
    queued_at = models.DateTimeField(_("queued"), default=timezone.now)
    attempts = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ["queued_at", "id"]
        verbose_name = _("queued lead")
        verbose_name_plural = _("team queue")

    def __str__(self) -> str:
        return f"{self.lead_id} @ {self.team_id}"


class MemberRole(models.TextChoices):
    OWNER = "owner", _("Owner")
    SUPPORT = "support", _("Supporting rep")
    SPECIALIST = "specialist", _("Specialist")
    SALES_ENGINEER = "sales_engineer", _("Sales engineer")


class LeadTeamMember(models.Model):
    """A person working a lead with its owner (collaborative assignment), with their role."""

    lead = models.ForeignKey("leads.Lead", on_delete=models.CASCADE, related_name="team_members")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    role = models.CharField(_("role"), max_length=20, choices=MemberRole.choices, default=MemberRole.SUPPORT)
    added_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["lead", "role", "id"]
        verbose_name = _("lead team member")
        verbose_name_plural = _("lead team members")
        constraints = [models.UniqueConstraint(fields=["lead", "user"], name="leadteam_unique_member")]

    def __str__(self) -> str:
        return f"{self.lead_id}: {self.user_id} ({self.role})"


class SlaPolicy(models.Model):
    """The first-touch deadline for leads of one grade, in the owner's working minutes."""

    grade = models.CharField(_("grade"), max_length=16, unique=True)
    minutes = models.PositiveIntegerField(_("working minutes to first touch"))
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        ordering = ["minutes"]
        verbose_name = _("first-touch deadline")
        verbose_name_plural = _("first-touch deadlines")

    def __str__(self) -> str:
        return f"{self.grade}: {self.minutes} min"


class SlaClock(models.Model):
    """The running first-touch deadline of a lead's current owner; restarted by each assignment."""

    lead = models.OneToOneField("leads.Lead", on_delete=models.CASCADE, related_name="sla_clock")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    rule = models.ForeignKey(AssignmentRule, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    started_at = models.DateTimeField(_("assigned"))
    due_at = models.DateTimeField(_("first touch due"))
    touched_at = models.DateTimeField(_("touched"), null=True, blank=True)
    breached_at = models.DateTimeField(_("breached"), null=True, blank=True)

    class Meta:
        verbose_name = _("first-touch clock")
        verbose_name_plural = _("first-touch clocks")
        indexes = [
            models.Index(
                fields=["due_at"],
                condition=models.Q(touched_at__isnull=True, breached_at__isnull=True),
                name="slaclock_running_idx",
            )
        ]

    def __str__(self) -> str:
        return f"{self.lead_id} due {self.due_at:%Y-%m-%d %H:%M}"


class NotificationKind(models.TextChoices):
    NEW_LEAD = "new_lead", _("New lead assigned")
    SLA_BREACH = "sla_breach", _("First-touch deadline missed")


class Notification(models.Model):
    """An in-app notice for one person (also e-mailed when they have an address)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="assignment_notices")
    kind = models.CharField(_("kind"), max_length=20, choices=NotificationKind.choices)
    lead = models.ForeignKey("leads.Lead", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    message = models.TextField(_("message"))
    created_at = models.DateTimeField(_("at"), default=timezone.now)
    read_at = models.DateTimeField(_("read"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        indexes = [models.Index(fields=["user", "-created_at"], name="notification_user_idx")]

    def __str__(self) -> str:
        return f"{self.user_id}: {self.kind}"
