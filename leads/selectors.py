"""Reads for leads. ``lead_visible_to`` is the one place that decides who sees which lead."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.contrib.auth.models import AnonymousUser
from django.db import connection
from django.db.models import Count, Min, Q, QuerySet, Sum
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import get_language, gettext
from rest_framework.exceptions import ValidationError

from common.db import SQLITE_COMPANY_KEY, SQLITE_NAME_KEY
from common.normalize import COMPANY_SUFFIXES, KEY_SEPARATORS
from leads.models import (
    EventType,
    FormSubmission,
    ImportJob,
    ImportRowError,
    Interaction,
    Lead,
    LeadMerge,
    LeadStageChange,
    PipelineRun,
    SubmissionStatus,
    Task,
    WebForm,
)
from users.models import ROLE_PRECEDENCE, Role, Team, User


def lead_visibility_q(user: User) -> Q | None:
    """The condition a lead must meet to be visible to ``user``; None means every lead."""
    role = user.role
    if role in (Role.ADMIN, Role.MARKETING):
        return None
    if role == Role.MANAGER:
        team_ids = user.managed_team_ids
        members = User.objects.filter(team_id__in=team_ids).values("id")
        # A manager also sees what they own themselves.
        return Q(team_id__in=team_ids) | Q(owner_id__in=members) | Q(owner_id=user.pk)
    if role == Role.REP:
        own = Q(owner_id=user.pk)
        if user.team_id is None:
            return own
        return own | Q(owner__isnull=True, team_id=user.team_id)
    return Q(pk__in=[])  # no role: nothing


def lead_visible_to(user: User | AnonymousUser) -> QuerySet[Lead]:
    """Every lead ``user`` may see, ready for list pages (owner, team and campaign joined)."""
    # The score card by a second query, not a join: see leads.api.listing.lead_list_values.
    qs = Lead.objects.select_related("owner", "team", "campaign").prefetch_related("tags", "scorecard")
    if not user.is_authenticated or not isinstance(user, User):
        return qs.none()
    condition = lead_visibility_q(user)
    return qs if condition is None else qs.filter(condition)


def user_assignable_to(user: User) -> QuerySet[User]:
    """People whose leads ``user`` may see: the choices of the owner filter and owner field."""
    people = User.objects.filter(is_active=True).order_by("username")
    role = user.role
    if role in (Role.ADMIN, Role.MARKETING):
        return people
    if role == Role.MANAGER:
        return people.filter(Q(team_id__in=user.managed_team_ids) | Q(pk=user.pk))
    if role == Role.REP and user.team_id is not None:
        return people.filter(Q(team_id=user.team_id) | Q(pk=user.pk))
    return people.filter(pk=user.pk)


def team_visible_to(user: User) -> QuerySet[Team]:
    """Teams ``user`` may filter by: all for marketing/admin, the led teams for a manager, a rep's own."""
    role = user.role
    if role in (Role.ADMIN, Role.MARKETING):
        return Team.objects.all()
    if role == Role.MANAGER:
        return Team.objects.filter(pk__in=user.managed_team_ids)
    return Team.objects.filter(pk=user.team_id) if user.team_id else Team.objects.none()


def lead_get_visible(*, user: User, lead_id: int) -> Lead:
    """The lead, or Lead.DoesNotExist when it does not exist *or* the user may not see it."""
    # One lead by id: its score card joined (a list prefetches the cards instead).
    return lead_visible_to(user).select_related("scorecard").get(pk=lead_id)


def lead_interactions(*, lead: Lead) -> QuerySet[Interaction]:
    return Interaction.objects.filter(lead=lead).select_related("created_by").order_by("-occurred_at", "-id")


def lead_stage_history(*, lead: Lead) -> QuerySet[LeadStageChange]:
    return LeadStageChange.objects.filter(lead=lead).select_related("changed_by").order_by("-changed_at", "-id")


# --- Track: event-type labels, the merged timeline, follow-up tasks ------------------------------


class EventTypeLabels:
    """Display names of the event-type catalogue in the active language.

    The catalogue is read once, on first use (one query however many rows are labelled); build one per
    request with ``event_type_labels_for(request)``. An unknown key is shown as the key itself.
    """

    def __init__(self) -> None:
        self._names: dict[str, tuple[str, str]] | None = None

    def _catalogue(self) -> dict[str, tuple[str, str]]:
        if self._names is None:
            self._names = {
                key: (name, name_zh)
                for key, name, name_zh in EventType.objects.order_by().values_list("key", "name", "name_zh")
            }
        return self._names

    def label(self, key: str) -> str:
        names = self._catalogue().get(key)
        if names is None:
            return key
        name, name_zh = names
        language = (get_language() or "").lower()
        return name_zh if name_zh and language.startswith("zh") else name or key


def event_type_labels_for(request: Any) -> EventTypeLabels:
    """The request's label cache (created on first use), shared by every caller within one request."""
    base = getattr(request, "_request", request)  # a DRF Request wraps the Django one
    labels = getattr(base, "_leadcrm_event_type_labels", None)
    if labels is None:
        labels = EventTypeLabels()
        base._leadcrm_event_type_labels = labels
    return labels


def event_type_get(*, key: str) -> EventType | None:
    return EventType.objects.filter(key=key, is_active=True).first()


class TimelineKind:
    # The rank orders entries with the same timestamp: a call logged with its stage move reads call, then move.
    STAGE = "stage"
    TASK = "task"
    INTERACTION = "interaction"


TIMELINE_RANK = {TimelineKind.STAGE: 0, TimelineKind.TASK: 1, TimelineKind.INTERACTION: 2}


@dataclass(frozen=True)
class TimelineEntry:
    """One line of a lead's timeline, whatever table it came from."""

    kind: str
    id: int
    occurred_at: datetime
    label: str
    actor: User | None
    type: str = ""  # the event-type key (interactions) or task kind (tasks)
    properties: dict[str, Any] = field(default_factory=dict)
    from_stage: str = ""
    to_stage: str = ""
    reason: str = ""
    title: str = ""
    notes: str = ""

    @property
    def cursor_key(self) -> tuple[datetime, int, int]:
        return (self.occurred_at, TIMELINE_RANK[self.kind], self.id)


@dataclass(frozen=True)
class TimelinePage:
    entries: list[TimelineEntry]
    next_cursor: str | None


def _timeline_encode(entry: TimelineEntry) -> str:
    payload = {"t": entry.occurred_at.isoformat(), "k": entry.kind, "id": entry.id}
    return base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode().rstrip("=")


def _timeline_decode(cursor: str) -> tuple[datetime, int, int]:
    """The cursor's (time, rank, id); a cursor is client input, so anything odd is a ValidationError."""
    try:
        payload = json.loads(base64.urlsafe_b64decode((cursor + "=" * (-len(cursor) % 4)).encode()))
        when = parse_datetime(payload["t"])
        rank = TIMELINE_RANK[payload["k"]]
        row_id = payload["id"]
        if when is None or not isinstance(row_id, int) or isinstance(row_id, bool):
            raise ValueError
    except (binascii.Error, ValueError, TypeError, KeyError, UnicodeDecodeError):
        raise ValidationError({"cursor": [gettext("Invalid cursor.")]}) from None
    if timezone.is_naive(when):
        when = timezone.make_aware(when, UTC)
    return when, rank, row_id


def _older_than(time_field: str, rank: int, position: tuple[datetime, int, int] | None) -> Q:
    """Rows of one source that sort after ``position`` in (time desc, rank desc, id desc) order."""
    if position is None:
        return Q()
    when, cursor_rank, row_id = position
    if rank < cursor_rank:
        return Q(**{f"{time_field}__lte": when})
    if rank > cursor_rank:
        return Q(**{f"{time_field}__lt": when})
    return Q(**{f"{time_field}__lt": when}) | Q(**{time_field: when, "id__lt": row_id})


def lead_timeline(
    *, lead: Lead, labels: EventTypeLabels, cursor: str | None = None, page_size: int = 50
) -> TimelinePage:
    """Everything that happened to the lead, newest first: interactions, stage changes, completed tasks.

    Keyset-paginated over (time, kind, id): each source is read with the same cursor condition and a
    limit of one page (three indexed queries, each on a ``(lead, time)`` index), and the three sorted
    runs are merged here. The cost of a page does not depend on how deep it is.
    """
    position = _timeline_decode(cursor) if cursor else None
    limit = page_size + 1
    stage = TIMELINE_RANK[TimelineKind.STAGE]
    task = TIMELINE_RANK[TimelineKind.TASK]
    interaction = TIMELINE_RANK[TimelineKind.INTERACTION]
    entries: list[TimelineEntry] = []
    for row in (
        Interaction.objects.filter(lead=lead)
        .filter(_older_than("occurred_at", interaction, position))
        .select_related("created_by")
        .order_by("-occurred_at", "-id")[:limit]
    ):
        entries.append(
            TimelineEntry(
                kind=TimelineKind.INTERACTION,
                id=row.pk,
                occurred_at=row.occurred_at,
                label=labels.label(row.type),
                actor=row.created_by,
                type=row.type,
                properties=row.properties if isinstance(row.properties, dict) else {"value": row.properties},
            )
        )
    for change in (
        LeadStageChange.objects.filter(lead=lead)
        .filter(_older_than("changed_at", stage, position))
        .select_related("changed_by")
        .order_by("-changed_at", "-id")[:limit]
    ):
        entries.append(
            TimelineEntry(
                kind=TimelineKind.STAGE,
                id=change.pk,
                occurred_at=change.changed_at,
                label=gettext("Stage changed") if change.from_stage else gettext("Lead created"),
                actor=change.changed_by,
                from_stage=change.from_stage,
                to_stage=change.to_stage,
                reason=change.reason,
            )
        )
    for done in (
        Task.objects.filter(lead=lead, done_at__isnull=False)
        .filter(_older_than("done_at", task, position))
        .select_related("assignee")
        .order_by("-done_at", "-id")[:limit]
    ):
        assert done.done_at is not None
        entries.append(
            TimelineEntry(
                kind=TimelineKind.TASK,
                id=done.pk,
                occurred_at=done.done_at,
                label=gettext("Task done"),
                actor=done.assignee,
                type=done.kind,
                title=done.title,
                notes=done.notes,
            )
        )
    entries.sort(key=lambda e: e.cursor_key, reverse=True)
    has_more = len(entries) > page_size
    entries = entries[:page_size]
    return TimelinePage(entries, _timeline_encode(entries[-1]) if has_more and entries else None)


def task_visible_to(user: User | AnonymousUser) -> QuerySet[Task]:
    """Tasks on the leads ``user`` can see. Being the assignee is not enough: a lead moved to another
    team takes its tasks out of sight too (its name and a way to write to it would leak)."""
    qs = Task.objects.select_related("lead", "assignee", "created_by")
    if not user.is_authenticated or not isinstance(user, User):
        return qs.none()
    condition = lead_visibility_q(user)
    if condition is None:
        return qs
    return qs.filter(lead_id__in=Lead.objects.filter(condition).values("pk"))


def tasks_overdue(user: User) -> QuerySet[Task]:
    """Open tasks assigned to ``user`` whose due time has passed (served by the open-tasks index)."""
    return task_visible_to(user).filter(assignee_id=user.pk, done_at__isnull=True, due_at__lt=timezone.now())


def lead_open_tasks(*, lead: Lead) -> QuerySet[Task]:
    return Task.objects.filter(lead=lead, done_at__isnull=True).select_related("assignee").order_by("due_at", "id")


def lead_task_assignees(*, lead: Lead, candidates: QuerySet[User]) -> list[User]:
    """Those of ``candidates`` who can see ``lead`` (and so may be given a task on it), in one query.

    Each candidate's visibility condition (``lead_visibility_q``, the one definition) becomes a
    conditional count over the single lead row.
    """
    people = list(candidates.prefetch_related("groups", "managed_teams"))
    checks: dict[str, Any] = {}
    for person in people:
        # Fill the per-user cached properties from the prefetch rather than two queries per person.
        names = {group.name for group in person.groups.all()}
        person.__dict__.setdefault(
            "role", Role.ADMIN if person.is_superuser else next((r for r in ROLE_PRECEDENCE if r.value in names), None)
        )
        person.__dict__.setdefault("managed_team_ids", [team.pk for team in person.managed_teams.all()])
        condition = lead_visibility_q(person)
        checks[f"u{person.pk}"] = Count("pk", filter=condition) if condition is not None else Count("pk")
    if not checks:
        return []
    seen = Lead.objects.filter(pk=lead.pk).aggregate(**checks)
    return [person for person in people if seen[f"u{person.pk}"]]


# --- Event pipeline (issue #4) ----------------------------------------------------------------


def leads_dirty_stale_count(*, older_than: float) -> int:
    """How many leads have been dirty for longer than ``older_than`` seconds (the sweeper's question)."""
    cutoff = timezone.now() - timedelta(seconds=older_than)
    return Lead.objects.filter(dirty_since__lt=cutoff).count()


def pipeline_queue_depth() -> int | None:
    """Messages waiting in the Celery queue (Redis LLEN); None without a Redis broker or when it does not answer."""
    from django.conf import settings

    from leadcrm.celery import app

    url = str(app.conf.broker_url or "")
    if app.conf.task_always_eager or not url.startswith(("redis://", "rediss://")):
        return None
    import redis

    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
        return int(client.llen(app.conf.task_default_queue or settings.CELERY_TASK_DEFAULT_QUEUE))
    except redis.RedisError:
        return None


def pipeline_status() -> dict[str, Any]:
    """Pipeline health: queue depth, dirty leads and the oldest wait, events last minute, failures last hour.

    Three queries, one LLEN and one cache read.
    """
    from django.core.cache import cache

    from common.tasks import HEARTBEAT_KEY

    queue_depth = pipeline_queue_depth()
    try:
        heartbeat = cache.get(HEARTBEAT_KEY)
    except Exception:  # the cache being down must not take the status page down with it
        heartbeat = None
    now = timezone.now()
    dirty = Lead.objects.filter(dirty_since__isnull=False).aggregate(count=Count("id"), oldest=Min("dirty_since"))
    minute = PipelineRun.objects.filter(started_at__gte=now - timedelta(minutes=1)).aggregate(
        events=Sum("events"), leads=Sum("leads")
    )
    failures = PipelineRun.objects.filter(started_at__gte=now - timedelta(hours=1)).aggregate(failed=Sum("failed"))
    oldest = dirty["oldest"]
    return {
        "queue_depth": queue_depth,
        "dirty_leads": dirty["count"],
        "oldest_dirty_age_s": round((now - oldest).total_seconds(), 1) if oldest else None,
        "events_last_minute": minute["events"] or 0,
        "leads_last_minute": minute["leads"] or 0,
        "failures_last_hour": failures["failed"] or 0,
        "last_heartbeat": (heartbeat or {}).get("at"),
    }


def lead_ids_visible(*, user: User, lead_ids: set[int]) -> dict[int, int]:
    """Map each requested lead id ``user`` may see to the lead its events belong to (a merged lead → its primary)."""
    if not lead_ids:
        return {}
    rows = lead_visible_to(user).prefetch_related(None).filter(pk__in=lead_ids).values_list("pk", "merged_into_id")
    found = dict(rows)
    primaries = {m for m in found.values() if m}
    if primaries:
        visible_primaries = set(
            lead_visible_to(user).prefetch_related(None).filter(pk__in=primaries).values_list("pk", flat=True)
        )
    else:
        visible_primaries = set()
    return {pk: (merged if merged in visible_primaries else pk) for pk, merged in found.items()}


def lead_ids_by_email(*, user: User, emails: set[str]) -> dict[str, int]:
    """Map normalized e-mail addresses to a visible, non-merged lead (the most recently created one)."""
    if not emails:
        return {}
    rows = (
        lead_visible_to(user)
        .prefetch_related(None)
        .filter(email__in=emails, merged_into__isnull=True)
        .order_by("email", "-created_at", "-pk")
        .values_list("email", "pk")
    )
    found: dict[str, int] = {}
    for email, pk in rows:
        found.setdefault(email, pk)
    return found


def import_jobs_visible_to(user: User) -> QuerySet[ImportJob]:
    """Imports ``user`` may see: every import for marketing and admins, otherwise the ones they started."""
    jobs = ImportJob.objects.select_related("created_by", "campaign").order_by("-created_at", "-id")
    if user.role in (Role.ADMIN, Role.MARKETING):
        return jobs
    return jobs.filter(created_by=user)


def import_job_get_visible(*, user: User, job_id: int) -> ImportJob:
    """The import, or ImportJob.DoesNotExist when it does not exist *or* the user may not see it."""
    return import_jobs_visible_to(user).get(pk=job_id)


def import_row_errors(*, job: ImportJob) -> QuerySet[ImportRowError]:
    """The rows an import rejected or skipped, in file order (errors.csv)."""
    return ImportRowError.objects.filter(job=job).order_by("line_number", "id")


# --- Collect: web forms, submissions, duplicates, merges -------------------------------------------


def webform_list() -> QuerySet[WebForm]:
    return WebForm.objects.select_related("default_campaign").annotate(
        quarantined=Count("submissions", filter=Q(submissions__status=SubmissionStatus.QUARANTINED))
    )


def submission_list(*, status: str | None = None, form_id: int | None = None) -> QuerySet[FormSubmission]:
    qs = FormSubmission.objects.select_related("form", "lead").order_by("-received_at", "-id")
    if status:
        qs = qs.filter(status=status)
    if form_id:
        qs = qs.filter(form_id=form_id)
    return qs


@dataclass(frozen=True)
class DuplicatePair:
    """Two unmerged leads that look like one person; ``primary`` is the older (the suggested survivor)."""

    primary: Lead
    duplicate: Lead
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class DuplicatePage:
    pairs: list[DuplicatePair]
    next_cursor: str | None


def _duplicate_branches() -> tuple[tuple[str, str], ...]:
    """(reason, the pair's FROM … WHERE) per reason. Pairs by e-mail and phone join the leads (already
    normalized on write) and keep the visible ones; pairs by name + company come from ``nc``, the visible
    leads' keys, grouped on PostgreSQL and joined to itself on SQLite.
    """
    name_company = (
        # The leads that share both keys are grouped (an aggregate, O(n)) and each group's pairs unnested:
        # no join for the planner to misjudge. As a self-join of ``nc`` it chose a nested loop whenever the
        # statistics were stale (right after an import: "company <> ''" estimated at one row) and took 128 s
        # on 150,000 leads. SQLite has no arrays; its demo-sized tables take the self-join.
        "(SELECT array_agg(id) AS ids FROM nc WHERE name_key <> '' AND company_key <> ''"
        " GROUP BY name_key, company_key HAVING count(*) > 1) AS g,"
        " unnest(g.ids) AS a(id), unnest(g.ids) AS b(id) WHERE a.id < b.id"
        if connection.vendor == "postgresql"
        else "nc a JOIN nc b ON b.name_key = a.name_key AND b.company_key = a.company_key AND a.id < b.id "
        "WHERE a.name_key <> '' AND a.company_key <> ''"
    )
    return (
        (
            "email",
            "{lead} a JOIN {lead} b ON b.email = a.email AND a.id < b.id "
            "JOIN v va ON va.id = a.id JOIN v vb ON vb.id = b.id WHERE a.email <> ''",
        ),
        (
            "phone",
            "{lead} a JOIN {lead} b ON b.phone = a.phone AND a.id < b.id "
            "JOIN v va ON va.id = a.id JOIN v vb ON vb.id = b.id WHERE a.phone <> ''",
        ),
        ("name_company", name_company),
    )


def _duplicate_keys_sql() -> tuple[str, str, list[str]]:
    """SQL for the duplicate keys of ``l.name`` and ``l.company`` (common.normalize.name_key/company_key).

    PostgreSQL computes them with regexp_replace, once per visible lead with a company (``nc``), and the
    pairs come from grouping on the keys (``_duplicate_branches``): set-based, no comparison of every
    lead with every other. SQLite has no regexp_replace; the same functions in Python are registered on
    its connections (common.db).
    """
    if connection.vendor == "postgresql":
        return (
            "regexp_replace(lower(l.name), %s, '', 'g')",
            "regexp_replace(regexp_replace(lower(l.company), %s, ''), %s, '', 'g')",
            [KEY_SEPARATORS, COMPANY_SUFFIXES, KEY_SEPARATORS],
        )
    return f"{SQLITE_NAME_KEY}(l.name)", f"{SQLITE_COMPANY_KEY}(l.company)", []


def lead_duplicate_pairs(*, user: User, cursor: str | None = None, page_size: int = 50) -> DuplicatePage:
    """Pairs of visible, unmerged leads with the same e-mail, phone, or name + company; newest duplicate first.

    Names and companies compare by key: lower-cased, without spaces and punctuation, a company also
    without its legal form ("ACME Ltd" = "Acme Limited", "上海华星科技有限公司" = "上海华星科技"); a company
    whose key is empty ("Inc.") pairs nobody. One set-based query (a self-join per reason, grouped per
    pair) with keyset paging on (duplicate, primary).
    """
    visible = lead_visible_to(user).filter(merged_into__isnull=True).order_by()
    visible_sql, visible_params = visible.values("id").query.sql_with_params()
    # The keys are computed from the visible leads' own rows: a join back to ``v`` is another plan that
    # stale statistics can spoil.
    named_sql, named_params = visible.exclude(company="").values("id", "name", "company").query.sql_with_params()
    position: tuple[int, int] | None = None
    if cursor:
        try:
            b_id, a_id = (int(part) for part in cursor.split("-", 1))
            position = (b_id, a_id)
        except ValueError:
            raise ValidationError({"cursor": [gettext("Invalid cursor.")]}) from None
    table = Lead._meta.db_table
    name_key, company_key, key_params = _duplicate_keys_sql()
    branches, params = [], []
    reasons = _duplicate_branches()
    for reason, source in reasons:
        flags = ", ".join(f"{int(reason == r)} AS by_{r}" for r, _s in reasons)
        keyset = " AND (b.id < %s OR (b.id = %s AND a.id < %s))" if position else ""
        branches.append(f"SELECT a.id AS a_id, b.id AS b_id, {flags} FROM {source.format(lead=table)}{keyset}")
        if position:
            params += [position[0], position[0], position[1]]
    reason_names = [r for r, _s in reasons]
    sql = (
        f"WITH v AS ({visible_sql}), "
        f"nc AS (SELECT l.id, {name_key} AS name_key, {company_key} AS company_key FROM ({named_sql}) AS l) "
        f"SELECT b_id, a_id, {', '.join(f'MAX(by_{r})' for r in reason_names)} FROM ("
        + " UNION ALL ".join(branches)
        + ") pairs GROUP BY b_id, a_id ORDER BY b_id DESC, a_id DESC LIMIT %s"
    )
    with connection.cursor() as db:
        db.execute(sql, [*visible_params, *key_params, *named_params, *params, page_size + 1])
        rows = db.fetchall()
    has_more = len(rows) > page_size
    rows = rows[:page_size]
    # The ids came out of the visible set already; no need to apply the condition (or prefetch tags) again.
    leads = Lead.objects.select_related("owner", "team").in_bulk({row[0] for row in rows} | {row[1] for row in rows})
    pairs = [
        DuplicatePair(
            primary=leads[row[1]],
            duplicate=leads[row[0]],
            reasons=tuple(name for name, flag in zip(reason_names, row[2:], strict=True) if flag),
        )
        for row in rows
        if row[0] in leads and row[1] in leads
    ]
    next_cursor = f"{rows[-1][0]}-{rows[-1][1]}" if has_more and rows else None
    return DuplicatePage(pairs=pairs, next_cursor=next_cursor)


def merge_visible_to(user: User | AnonymousUser) -> QuerySet[LeadMerge]:
    """Merges whose primary and merged lead the user may both see."""
    visible = lead_visible_to(user).order_by().values("id")
    return LeadMerge.objects.select_related("primary", "merged", "merged_by", "undone_by").filter(
        primary_id__in=visible, merged_id__in=visible
    )
