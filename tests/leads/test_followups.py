"""Follow-up tasks: the services, who sees which task, and ``/api/v1/tasks/``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone
from rest_framework.test import APIClient

from leads import selectors, services
from leads.models import Interaction, Lead, Stage, Task, TaskKind
from tests.conftest import Org
from tests.factories import LeadFactory
from users.models import User

ClientFor = Callable[[User], APIClient]


def make_task(lead: Lead, assignee: User, *, due_in: timedelta = timedelta(days=1), **extra: Any) -> Task:
    return Task.objects.create(
        lead=lead, assignee=assignee, title=extra.pop("title", "Call back"), due_at=timezone.now() + due_in, **extra
    )


def results(response: Any) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.content
    return list(response.json()["results"])


# --- services ------------------------------------------------------------------------------------


def test_task_create_for_someone_who_can_see_the_lead(org: Org) -> None:
    # given a lead in North's pool (every North rep sees it)
    lead = LeadFactory.create(owner=None, team=org.north)
    due = timezone.now() + timedelta(days=2)

    # when the manager gives a teammate a follow-up
    task = services.task_create(
        lead=lead, title="  Send　quote ", due_at=due, assignee=org.rep2, created_by=org.manager, kind=TaskKind.EMAIL
    )

    # then it is stored for that rep, open, with the title tidied (full-width space folded)
    assert (task.assignee, task.created_by, task.kind, task.due_at, task.done_at) == (
        org.rep2,
        org.manager,
        TaskKind.EMAIL,
        due,
        None,
    )
    assert task.title == "Send quote"


@pytest.mark.parametrize("assignee", ["rep_south", "rep2"])
def test_task_assignee_must_see_the_lead(org: Org, assignee: str) -> None:
    # given a lead owned by org.rep (a teammate sees only their own leads and the pool; South sees nothing)
    lead = LeadFactory.create(owner=org.rep, team=org.north)

    # when a task is given to someone who cannot see it
    with pytest.raises(ValidationError) as raised:
        services.task_create(
            lead=lead, title="Call", due_at=timezone.now(), assignee=getattr(org, assignee), created_by=org.manager
        )

    # then the assignee field says so and nothing is stored
    assert "assignee" in raised.value.message_dict
    assert not Task.objects.exists()


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"title": "  "}, "title"),
        ({"title": "x" * 201}, "title"),
        ({"kind": "fax"}, "kind"),
        ({"due_at": None}, "due_at"),
    ],
)
def test_task_create_rejects_bad_fields(org: Org, kwargs: dict[str, Any], field: str) -> None:
    lead = LeadFactory.create(owner=org.rep, team=org.north)
    data: dict[str, Any] = {"title": "Call", "due_at": timezone.now(), "kind": TaskKind.CALL, **kwargs}
    with pytest.raises(ValidationError) as raised:
        services.task_create(lead=lead, assignee=org.rep, created_by=org.rep, **data)
    assert field in raised.value.message_dict
    assert not Task.objects.exists()


def test_completing_a_call_with_a_note_logs_the_call_once(org: Org) -> None:
    # given a new lead with a call follow-up for its owner
    lead = LeadFactory.create(owner=org.rep, team=org.north)
    task = make_task(lead, org.rep, kind=TaskKind.CALL)

    # when the rep completes it with what was said, then clicks again
    services.task_complete(task=task, by=org.rep, note="Wants a demo")
    services.task_complete(task=task, by=org.rep, note="Wants a demo")

    # then the task is done, the call is on the lead once, and the first touch moved the stage
    task.refresh_from_db()
    lead.refresh_from_db()
    assert task.done_at is not None
    assert list(Interaction.objects.filter(lead=lead).values_list("type", "properties")) == [
        ("call", {"note": "Wants a demo"})
    ]
    assert lead.stage == Stage.CONTACTED


@pytest.mark.parametrize(("kind", "note"), [(TaskKind.TODO, "Sent the brochure"), (TaskKind.CALL, "")])
def test_completing_other_tasks_logs_no_activity(org: Org, kind: str, note: str) -> None:
    # given a to-do, or a call completed without a note
    lead = LeadFactory.create(owner=org.rep, team=org.north)
    task = make_task(lead, org.rep, kind=kind)

    # when it is completed
    services.task_complete(task=task, by=org.rep, note=note)

    # then it is done but nothing else is logged and the stage does not move
    lead.refresh_from_db()
    assert Task.objects.get().done_at is not None
    assert not Interaction.objects.exists()
    assert lead.stage == Stage.NEW


def test_reopen_puts_the_task_back_on_the_list(org: Org) -> None:
    lead = LeadFactory.create(owner=org.rep, team=org.north)
    task = make_task(lead, org.rep)
    services.task_complete(task=task, by=org.rep)

    services.task_reopen(task=task, by=org.rep)

    assert Task.objects.get().done_at is None
    assert list(selectors.task_visible_to(org.rep).filter(done_at__isnull=True)) == [task]


def test_task_update_checks_a_new_assignee(org: Org) -> None:
    # given a task on the rep's lead
    lead = LeadFactory.create(owner=org.rep, team=org.north)
    task = make_task(lead, org.rep)

    # when it is handed to South's rep, then it is refused and unchanged
    with pytest.raises(ValidationError) as raised:
        services.task_update(task=task, by=org.manager, assignee=org.rep_south, title="Changed")
    assert "assignee" in raised.value.message_dict
    task.refresh_from_db()
    assert (task.assignee, task.title) == (org.rep, "Call back")

    # when it is handed to the manager (who sees the team's leads), then it moves
    services.task_update(task=task, by=org.manager, assignee=org.manager, title="Changed")
    task.refresh_from_db()
    assert (task.assignee, task.title) == (org.manager, "Changed")


def test_tasks_are_visible_exactly_when_their_lead_is(org: Org) -> None:
    # given tasks on the rep's lead, on the North pool, on a teammate's lead, and one on a South lead
    own = make_task(LeadFactory.create(owner=org.rep, team=org.north), org.rep, title="own")
    pool = make_task(LeadFactory.create(owner=None, team=org.north), org.rep2, title="pool")
    teammate = make_task(LeadFactory.create(owner=org.rep2, team=org.north), org.rep2, title="teammate")
    south_lead = LeadFactory.create(owner=org.rep_south, team=org.south)
    south = make_task(south_lead, org.rep_south, title="south")
    # and one on a lead the rep no longer sees (moved to South) but is still assigned to
    moved = make_task(LeadFactory.create(owner=org.rep_south, team=org.south), org.rep, title="moved")

    # then each role sees what it should; being the assignee of a task on an invisible lead is not enough
    assert {t.title for t in selectors.task_visible_to(org.rep)} == {own.title, pool.title}
    assert {t.title for t in selectors.task_visible_to(org.manager)} == {own.title, pool.title, teammate.title}
    assert {t.title for t in selectors.task_visible_to(org.rep_south)} == {south.title, moved.title}
    assert selectors.task_visible_to(org.marketing).count() == 5


def test_tasks_overdue_counts_my_open_late_tasks(org: Org) -> None:
    lead = LeadFactory.create(owner=org.rep, team=org.north)
    late = make_task(lead, org.rep, due_in=-timedelta(hours=1))
    make_task(lead, org.rep, due_in=timedelta(hours=1))  # not yet due
    done = make_task(lead, org.rep, due_in=-timedelta(days=1))
    services.task_complete(task=done, by=org.rep)
    make_task(lead, org.manager, due_in=-timedelta(days=1))  # someone else's

    assert list(selectors.tasks_overdue(org.rep)) == [late]


# --- API -----------------------------------------------------------------------------------------


def test_api_create_task_defaults_to_me(org: Org, client_for: ClientFor) -> None:
    # given a rep's lead
    lead = LeadFactory.create(owner=org.rep, team=org.north)
    due = (timezone.now() + timedelta(days=1)).replace(microsecond=0)

    # when the rep posts a follow-up without an assignee
    response = client_for(org.rep).post(
        "/api/v1/tasks/",
        {"lead": lead.pk, "title": "Call back", "kind": "call", "due_at": due.isoformat()},
        format="json",
    )

    # then it is theirs, open and not overdue
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["assignee"], body["lead"], body["lead_name"], body["is_done"], body["is_overdue"]) == (
        org.rep.pk,
        lead.pk,
        lead.name,
        False,
        False,
    )
    assert Task.objects.get().due_at == due


def test_api_invisible_lead_reads_like_a_missing_one(org: Org, client_for: ClientFor) -> None:
    # given a South lead
    south = LeadFactory.create(owner=org.rep_south, team=org.south)
    client = client_for(org.rep)
    payload = {"title": "Call", "due_at": timezone.now().isoformat()}

    # when a North rep names it, and an id that does not exist
    invisible = client.post("/api/v1/tasks/", {**payload, "lead": south.pk}, format="json")
    missing = client.post("/api/v1/tasks/", {**payload, "lead": 987654}, format="json")

    # then both are the same field error on "lead", and nothing is created
    assert invisible.status_code == missing.status_code == 400
    assert list(invisible.json()) == ["lead"]
    assert invisible.json()["lead"][0].replace(str(south.pk), "N") == missing.json()["lead"][0].replace("987654", "N")
    assert not Task.objects.exists()


def test_api_assignee_who_cannot_see_the_lead_is_a_field_error(org: Org, client_for: ClientFor) -> None:
    lead = LeadFactory.create(owner=org.rep, team=org.north)
    response = client_for(org.manager).post(
        "/api/v1/tasks/",
        {"lead": lead.pk, "title": "Call", "due_at": timezone.now().isoformat(), "assignee": org.rep_south.pk},
        format="json",
    )
    assert response.status_code == 400
    assert "assignee" in response.json()
    assert not Task.objects.exists()


def test_api_assignee_of_another_team_reads_like_a_missing_user(org: Org, client_for: ClientFor) -> None:
    """The error must not tell a rep which user ids exist outside the people they work with."""
    lead = LeadFactory.create(owner=org.rep, team=org.north)
    client = client_for(org.rep)
    payload = {"lead": lead.pk, "title": "Call", "due_at": timezone.now().isoformat()}

    other_team = client.post("/api/v1/tasks/", {**payload, "assignee": org.rep_south.pk}, format="json")
    missing = client.post("/api/v1/tasks/", {**payload, "assignee": 987654}, format="json")

    assert other_team.status_code == missing.status_code == 400
    assert list(other_team.json()) == list(missing.json()) == ["assignee"]
    assert other_team.json()["assignee"][0].replace(str(org.rep_south.pk), "N") == missing.json()["assignee"][
        0
    ].replace("987654", "N")
    assert not Task.objects.exists()


def test_api_missing_fields_are_named(org: Org, client_for: ClientFor) -> None:
    response = client_for(org.rep).post("/api/v1/tasks/", {"title": ""}, format="json")
    assert response.status_code == 400
    assert {"lead", "title", "due_at"} <= set(response.json())


def test_api_task_on_invisible_lead_is_404(org: Org, client_for: ClientFor) -> None:
    # given a South task
    task = make_task(LeadFactory.create(owner=org.rep_south, team=org.south), org.rep_south)
    client = client_for(org.rep)

    # then a North rep can neither read, change nor complete it
    assert client.get(f"/api/v1/tasks/{task.pk}/").status_code == 404
    assert client.patch(f"/api/v1/tasks/{task.pk}/", {"title": "x"}, format="json").status_code == 404
    assert client.post(f"/api/v1/tasks/{task.pk}/complete/", {}, format="json").status_code == 404
    task.refresh_from_db()
    assert (task.title, task.done_at) == ("Call back", None)


def test_api_update_complete_and_reopen(org: Org, client_for: ClientFor) -> None:
    # given a call task on the rep's new lead
    lead = LeadFactory.create(owner=org.rep, team=org.north)
    task = make_task(lead, org.rep, kind=TaskKind.CALL)
    client = client_for(org.rep)
    url = f"/api/v1/tasks/{task.pk}/"

    # when they move its due date, then complete it with a note
    later = (timezone.now() + timedelta(days=3)).replace(microsecond=0)
    assert client.patch(url, {"due_at": later.isoformat()}, format="json").status_code == 200
    done = client.post(f"{url}complete/", {"note": "Left a voicemail"}, format="json")

    # then it is done, the call is logged, the lead is contacted; reopening brings it back
    assert done.status_code == 200, done.content
    assert done.json()["is_done"] is True
    lead.refresh_from_db()
    assert lead.stage == Stage.CONTACTED
    assert Interaction.objects.get(lead=lead).properties == {"note": "Left a voicemail"}
    reopened = client.post(f"{url}reopen/", format="json")
    assert reopened.json()["is_done"] is False
    assert Task.objects.get().due_at == later


def test_api_patch_cannot_move_a_task_to_another_lead(org: Org, client_for: ClientFor) -> None:
    lead, other = (LeadFactory.create(owner=org.rep, team=org.north) for _ in range(2))
    task = make_task(lead, org.rep)
    client_for(org.rep).patch(f"/api/v1/tasks/{task.pk}/", {"lead": other.pk}, format="json")
    task.refresh_from_db()
    assert task.lead == lead


def test_api_list_filters(org: Org, client_for: ClientFor) -> None:
    # given the rep's tasks: one late, one due tomorrow, one done, plus a teammate's task on the pool
    mine = LeadFactory.create(owner=org.rep, team=org.north)
    pool = LeadFactory.create(owner=None, team=org.north)
    make_task(mine, org.rep, title="late", due_in=-timedelta(hours=2))
    make_task(mine, org.rep, title="tomorrow", due_in=timedelta(days=1))
    done = make_task(mine, org.rep, title="done", due_in=-timedelta(days=2))
    services.task_complete(task=done, by=org.rep)
    make_task(pool, org.rep2, title="teammate", due_in=timedelta(days=5))
    client = client_for(org.rep)

    def titles(query: str) -> list[str]:
        return [t["title"] for t in results(client.get(f"/api/v1/tasks/?{query}"))]

    # then each filter keeps what it says, soonest due first
    assert titles("") == ["done", "late", "tomorrow", "teammate"]
    assert titles("status=open") == ["late", "tomorrow", "teammate"]
    assert titles("status=done") == ["done"]
    assert titles("overdue=true") == ["late"]
    assert titles("mine=true&status=open") == ["late", "tomorrow"]
    assert titles(f"assignee={org.rep2.pk}") == ["teammate"]
    assert titles(f"lead={pool.pk}") == ["teammate"]
    soon = (timezone.now() + timedelta(days=2)).isoformat().replace("+", "%2B")
    now = timezone.now().isoformat().replace("+", "%2B")
    assert titles(f"due_after={now}&due_before={soon}") == ["tomorrow"]
    assert client.get("/api/v1/tasks/?status=someday").status_code == 400


def test_api_list_pages_by_due_time_without_gaps(org: Org, client_for: ClientFor) -> None:
    # given 7 tasks, two sharing a due time
    lead = LeadFactory.create(owner=org.rep, team=org.north)
    same = timezone.now() + timedelta(days=1)
    created = [make_task(lead, org.rep, title=f"t{i}", due_in=timedelta(hours=i)) for i in range(5)]
    created += [Task.objects.create(lead=lead, assignee=org.rep, title=f"tie{i}", due_at=same) for i in range(2)]
    client = client_for(org.rep)

    # when the rep walks the list 3 at a time
    seen: list[int] = []
    url: str | None = "/api/v1/tasks/?page_size=3"
    while url:
        body = client.get(url).json()
        seen += [t["id"] for t in body["results"]]
        url = body["next"]

    # then every task appears exactly once, in due order
    assert sorted(seen) == sorted(t.pk for t in created)
    assert len(seen) == len(set(seen))
    due = [Task.objects.get(pk=pk).due_at for pk in seen]
    assert due == sorted(due)


def test_api_list_query_count_does_not_grow(
    org: Org, client_for: ClientFor, django_assert_max_num_queries: Callable[..., Any]
) -> None:
    # given 40 tasks across 20 leads for the manager's team
    for i in range(20):
        owner = org.rep if i % 2 else org.rep2
        lead = LeadFactory.create(owner=owner, team=org.north)
        make_task(lead, owner, title=f"a{i}")
        make_task(lead, org.manager, title=f"b{i}")
    client = client_for(org.manager)

    # when the manager lists them: a fixed number of queries (no N+1 on leads or assignees)
    with django_assert_max_num_queries(6):
        rows = results(client.get("/api/v1/tasks/?page_size=100"))
    assert len(rows) == 40


def test_a_task_on_a_lead_moved_out_of_sight_is_out_of_sight_too(org: Org, client_for) -> None:
    from leads.services.followups import task_create

    lead = LeadFactory.create(name="Private Lead Quince", owner=org.rep, team=org.north)
    task = task_create(lead=lead, title="Call back", due_at=timezone.now(), assignee=org.rep, created_by=org.rep)
    Lead.objects.filter(pk=lead.pk).update(owner=org.rep_south, team=org.south)
    client = client_for(org.rep)

    detail = client.get(f"/api/v1/tasks/{task.pk}/")
    listed = client.get("/api/v1/tasks/")
    complete = client.post(f"/api/v1/tasks/{task.pk}/complete/", {"note": "injected"}, format="json")

    assert detail.status_code == 404
    assert "Quince" not in listed.content.decode()
    assert complete.status_code == 404
    assert not Interaction.objects.filter(lead=lead).exists()
