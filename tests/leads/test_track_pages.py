"""Lead page actions (quick log, one-click stage, follow-ups, merged timeline) and the My tasks page."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from leads import services
from leads.models import Interaction, Lead, Stage, Task, TaskKind
from tests.conftest import Org
from tests.factories import InteractionFactory, LeadFactory
from users.models import User


def signed_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def detail(lead: Lead) -> str:
    return reverse("leads:detail", kwargs={"lead_id": lead.pk})


def timeline_html(html: str) -> str:
    return html[html.index('data-testid="timeline"') :]


# --- quick log -----------------------------------------------------------------------------------


def test_lead_page_offers_one_button_per_activity_and_next_stages(org: Org) -> None:
    lead = LeadFactory.create(owner=org.rep, team=org.north)
    html = signed_in(org.rep).get(detail(lead)).content.decode()
    for label in ("Log call", "Log e-mail", "Log meeting", "Add note"):
        assert f'<summary class="btn">{label}</summary>' in html
    stage_buttons = html[html.index('data-testid="stage-buttons"') :]
    for label in ("Contacted", "Nurturing", "Marketing qualified", "Sales qualified", "Lost…"):
        assert label in stage_buttons


def test_logging_a_call_from_the_page_puts_it_on_top_and_contacts_the_lead(org: Org) -> None:
    # given a rep on their new lead, which has older web activity
    lead = LeadFactory.create(owner=org.rep, team=org.north)
    InteractionFactory.create(lead=lead, type="page_view", occurred_at=timezone.now() - timedelta(days=1))
    client = signed_in(org.rep)

    # when they open "Log call", pick an outcome and save
    response = client.post(
        reverse("leads:activity_log", kwargs={"lead_id": lead.pk}),
        {"kind": "call", "outcome": "connected", "note": "Budget approved <b>now</b>"},
    )

    # then they are back on the lead, the call is the newest entry, escaped, and the lead is contacted
    assert response.status_code == 302
    assert response["Location"] == detail(lead)
    html = client.get(detail(lead)).content.decode()
    assert "Call logged." in html
    timeline = timeline_html(html)
    assert timeline.index("Call") < timeline.index("Page view")
    assert "Connected" in timeline
    assert "Budget approved &lt;b&gt;now&lt;/b&gt;" in timeline
    assert "<b>now</b>" not in html
    lead.refresh_from_db()
    assert lead.stage == Stage.CONTACTED


def test_too_long_note_comes_back_with_the_error_and_the_text(org: Org) -> None:
    # given a rep's lead
    lead = LeadFactory.create(owner=org.rep, team=org.north)
    long_note = "很长的备注" * 2001

    # when they submit a note over the limit
    response = signed_in(org.rep).post(
        reverse("leads:activity_log", kwargs={"lead_id": lead.pk}), {"kind": "note", "note": long_note}
    )

    # then the page comes back with the form open, the error and their text; nothing is stored
    html = response.content.decode()
    assert response.status_code == 400
    assert re.search(r'<details class="quick-log-item" open data-testid="log-note">', html)
    assert "Ensure this value has at most 10000 characters" in html
    assert long_note in html
    assert not Interaction.objects.exists()


@pytest.mark.parametrize(
    ("url_name", "data"),
    [
        ("leads:activity_log", {"kind": "call"}),
        ("leads:task_create", {"title": "x", "kind": "call", "due_at": "2030-01-01T10:00"}),
        ("leads:stage", {"stage": "contacted"}),
    ],
)
def test_actions_on_another_teams_lead_are_404(org: Org, url_name: str, data: dict[str, str]) -> None:
    # given a South lead
    lead = LeadFactory.create(owner=org.rep_south, team=org.south)

    # when a North rep posts to it, then it does not exist for them and nothing changes
    response = signed_in(org.rep).post(reverse(url_name, kwargs={"lead_id": lead.pk}), data | {"assignee": org.rep.pk})
    assert response.status_code == 404
    lead.refresh_from_db()
    assert lead.stage == Stage.NEW
    assert not Interaction.objects.exists()
    assert not Task.objects.exists()


def test_one_click_stage_buttons_and_lost_needs_a_reason(org: Org) -> None:
    # given a rep's new lead
    lead = LeadFactory.create(owner=org.rep, team=org.north)
    client = signed_in(org.rep)
    url = reverse("leads:stage", kwargs={"lead_id": lead.pk})

    # when they click "Marketing qualified"
    client.post(url, {"stage": "mql"})

    # then it moves and the move is on the timeline with who did it
    lead.refresh_from_db()
    assert lead.stage == Stage.MQL
    html = client.get(detail(lead)).content.decode()
    assert re.search(r"New → Marketing qualified", timeline_html(html))

    # when they mark it lost without a reason, then it stays; with one, it moves
    client.post(url, {"stage": "lost", "reason": ""})
    lead.refresh_from_db()
    assert lead.stage == Stage.MQL
    client.post(url, {"stage": "lost", "reason": "Chose a competitor"})
    lead.refresh_from_db()
    assert (lead.stage, lead.lost_reason) == (Stage.LOST, "Chose a competitor")


def test_timeline_on_the_page_is_in_chinese_for_a_chinese_user(org: Org) -> None:
    # given a rep who prefers Chinese, and a lead with a call
    org.rep.language = "zh-hans"
    org.rep.save(update_fields=["language"])
    lead = LeadFactory.create(owner=org.rep, team=org.north)
    services.activity_log(lead=lead, kind="call", by=org.rep)

    # when they open the lead, then the event type reads in Chinese, not as a raw key
    html = signed_in(org.rep).get(detail(lead)).content.decode()
    assert '<span class="badge badge-call">电话</span>' in timeline_html(html)


def test_timeline_page_has_an_older_link_that_continues(org: Org) -> None:
    # given a lead with 45 page views (a page shows 30)
    lead = LeadFactory.create(owner=org.rep, team=org.north)
    start = timezone.now() - timedelta(days=10)
    for i in range(45):
        InteractionFactory.create(
            lead=lead, type="page_view", occurred_at=start + timedelta(hours=i), properties={"n": i}
        )
    client = signed_in(org.rep)

    # when the rep follows "Older"
    first = client.get(detail(lead)).content.decode()
    older = re.search(r'<a rel="next" href="\?cursor=([^"#]+)#h-timeline"', first)
    assert older is not None
    second = client.get(f"{detail(lead)}?cursor={older.group(1)}").content.decode()

    # then the second page continues where the first stopped
    assert first.count('data-testid="timeline-entry"') == 30
    assert second.count('data-testid="timeline-entry"') == 15
    assert 'data-testid="timeline-older"' not in second
    assert "<dt>n</dt><dd>14</dd>" in second
    assert "<dt>n</dt><dd>15</dd>" in first
    assert "<dt>n</dt><dd>15</dd>" not in second


def test_lead_page_query_count_does_not_grow_with_history(
    org: Org, django_assert_max_num_queries: Callable[..., Any]
) -> None:
    # given a lead with a long history by several people and open tasks
    lead = LeadFactory.create(owner=org.rep, team=org.north)
    for i in range(50):
        InteractionFactory.create(lead=lead, type="call", created_by=[org.rep, org.manager][i % 2])
    for i in range(10):
        Task.objects.create(lead=lead, assignee=org.rep, title=f"t{i}", due_at=timezone.now() + timedelta(hours=i))
    client = signed_in(org.manager)
    client.get(detail(lead))

    with django_assert_max_num_queries(20):
        response = client.get(detail(lead))
    assert response.status_code == 200


# --- follow-ups on the lead page, My tasks ---------------------------------------------------------


def test_add_follow_up_from_the_lead_page(org: Org) -> None:
    # given the manager on a North pool lead
    lead = LeadFactory.create(owner=None, team=org.north)
    client = signed_in(org.manager)
    html = client.get(detail(lead)).content.decode()
    # the assignee choices are the people who can see the lead: the manager and both North reps, not South
    assignee_select = html[html.index('name="assignee"') : html.index("</select>", html.index('name="assignee"'))]
    assert all(f'value="{u.pk}"' in assignee_select for u in (org.manager, org.rep, org.rep2))
    assert f'value="{org.rep_south.pk}"' not in assignee_select

    # when they give rep2 a call for tomorrow
    response = client.post(
        reverse("leads:task_create", kwargs={"lead_id": lead.pk}),
        {"title": "Call about pricing", "kind": "call", "due_at": "2030-05-01T10:30", "assignee": org.rep2.pk},
    )

    # then it is stored and listed on the lead page
    assert response.status_code == 302
    task = Task.objects.get()
    assert (task.assignee, task.kind, task.created_by) == (org.rep2, TaskKind.CALL, org.manager)
    assert "Call about pricing" in client.get(detail(lead)).content.decode()


def test_follow_up_form_errors_keep_the_input(org: Org) -> None:
    # given a rep's lead
    lead = LeadFactory.create(owner=org.rep, team=org.north)

    # when the rep submits a follow-up without a due time, and with someone who cannot see the lead
    response = signed_in(org.rep).post(
        reverse("leads:task_create", kwargs={"lead_id": lead.pk}),
        {"title": "Send the quote", "kind": "email", "due_at": "", "assignee": org.rep_south.pk},
    )

    # then the form is open again with both errors and the title kept; nothing stored
    html = response.content.decode()
    assert response.status_code == 400
    assert 'id="id_due_at_error"' in html
    assert 'id="id_assignee_error"' in html
    assert 'value="Send the quote"' in html
    assert '<details class="task-add" open' in html
    assert not Task.objects.exists()


def test_my_tasks_lists_open_tasks_by_due_with_overdue_highlighted(org: Org) -> None:
    # given the rep's tasks: one late, one later, one done, and a teammate's
    lead = LeadFactory.create(owner=org.rep, team=org.north, name="Lotus Robotics")
    now = timezone.now()
    Task.objects.create(lead=lead, assignee=org.rep, title="Later call", due_at=now + timedelta(days=2))
    Task.objects.create(lead=lead, assignee=org.rep, title="Late call", due_at=now - timedelta(hours=3))
    Task.objects.create(lead=lead, assignee=org.rep, title="Done call", due_at=now - timedelta(days=3), done_at=now)
    Task.objects.create(lead=lead, assignee=org.manager, title="Manager call", due_at=now - timedelta(hours=1))
    client = signed_in(org.rep)

    # when they open My tasks
    html = client.get(reverse("leads:task_list")).content.decode()

    # then their open tasks are listed soonest first, the late one highlighted, and the nav shows 1 overdue
    tasks = html[html.index('data-testid="my-tasks"') :]
    assert tasks.index("Late call") < tasks.index("Later call")
    assert "Done call" not in tasks
    assert "Manager call" not in tasks
    assert tasks.count("task-row task-overdue") == 1
    assert re.search(r'data-testid="overdue-badge">1<', html)
    assert "Lotus Robotics" in tasks

    # when they choose the Overdue filter, then only the late one is left
    overdue = client.get(reverse("leads:task_list") + "?overdue=1").content.decode()
    overdue_tasks = overdue[overdue.index('data-testid="my-tasks"') :]
    assert "Late call" in overdue_tasks
    assert "Later call" not in overdue_tasks


def test_mark_done_from_my_tasks_returns_there_and_clears_the_badge(org: Org) -> None:
    # given a late call task
    lead = LeadFactory.create(owner=org.rep, team=org.north)
    task = Task.objects.create(
        lead=lead, assignee=org.rep, title="Late call", kind=TaskKind.CALL, due_at=timezone.now() - timedelta(hours=1)
    )
    client = signed_in(org.rep)

    # when they mark it done with an outcome, from My tasks
    response = client.post(
        reverse("leads:task_complete", kwargs={"task_id": task.pk}),
        {"note": "Reached, wants a demo", "next": reverse("leads:task_list")},
    )

    # then they are back on My tasks, nothing is overdue, and the call is on the lead's timeline
    assert response["Location"] == reverse("leads:task_list")
    html = client.get(response["Location"]).content.decode()
    assert 'data-testid="overdue-badge"' not in html
    assert "No open tasks" in html
    assert Interaction.objects.get(lead=lead).properties == {"note": "Reached, wants a demo"}


def test_mark_done_never_redirects_off_site(org: Org) -> None:
    lead = LeadFactory.create(owner=org.rep, team=org.north)
    task = Task.objects.create(lead=lead, assignee=org.rep, title="x", due_at=timezone.now())
    response = signed_in(org.rep).post(
        reverse("leads:task_complete", kwargs={"task_id": task.pk}), {"next": "https://evil.example/"}
    )
    assert response["Location"] == detail(lead)


def test_tasks_of_another_team_cannot_be_completed_or_reopened(org: Org) -> None:
    task = Task.objects.create(
        lead=LeadFactory.create(owner=org.rep_south, team=org.south),
        assignee=org.rep_south,
        title="x",
        due_at=timezone.now(),
    )
    client = signed_in(org.rep)
    assert client.post(reverse("leads:task_complete", kwargs={"task_id": task.pk})).status_code == 404
    assert client.post(reverse("leads:task_reopen", kwargs={"task_id": task.pk})).status_code == 404
    task.refresh_from_db()
    assert task.done_at is None


def test_my_tasks_needs_sign_in(db: None) -> None:
    response = Client().get(reverse("leads:task_list"))
    assert response.status_code == 302
