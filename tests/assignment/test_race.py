"""The race test of issue #6: 2 worker processes × 4 threads assign 1,000 new leads at once on PostgreSQL.

Every lead is routed twice over, concurrently: by the pipeline's post-score hook (batches of 25,
claimed by many tasks at once) and by a ``lead_route_task`` of its own. Each lead must end up with
exactly one owner and one assignment record, and the round-robin counts must differ by at most one.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pytest
from django.db import connection
from django.db.models import Count, F, Sum
from django.utils import timezone

from assignment.models import AssignmentDecision, Outcome, RuleCursor
from assignment.tasks import lead_route_task
from leads.models import Lead, PipelineRun
from leads.tasks.pipeline import process_dirty_leads_task
from tests.assignment.conftest import make_rule, profile
from tests.factories import make_user
from tests.pipeline.conftest import REPO, wait_until
from users.models import Role

pytestmark = [pytest.mark.postgres, pytest.mark.usefixtures("transactional_db")]

LEADS = 1000
PROCESSES, THREADS = 2, 4


def _start_threaded_worker(workers: Any, index: int) -> subprocess.Popen[str]:
    """Like ``Workers.start`` but with a thread pool, so each process runs ``THREADS`` tasks at once."""
    db = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "leadcrm.settings",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        "DATABASE_CONN_MAX_AGE": "0",
        "CELERY_BROKER_URL": workers.broker_url,
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "CELERY_TASK_DEFAULT_QUEUE": workers.queue,
        "REDIS_URL": workers.cache_url,
        "LEADCRM_PIPELINE_BATCH_SIZE": "25",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "leadcrm", "worker", "-Q", workers.queue, "--pool", "threads",
         "-c", str(THREADS), "-l", "warning", "--without-gossip", "--without-mingle", "--without-heartbeat",
         "-n", f"{workers.queue}-{index}@%h"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    workers.processes.append(process)
    return process


def test_two_processes_four_threads_assign_1000_leads_once_each_and_evenly(
    org: Any, workers_on: Any, redis_urls: dict[str, str]
) -> None:
    # Given four reps in one round-robin rule, and 1,000 new unowned leads waiting for the pipeline.
    reps = [org.rep, org.rep2, org.rep_south, make_user(Role.REP, team=org.north, username="rep4")]
    for rep in reps:
        profile(rep)
    make_rule("Everyone in turn", strategy="round_robin")
    now = timezone.now()
    Lead.objects.bulk_create(
        [Lead(name=f"Lead {i}", email=f"race{i}@example.com", dirty_since=now) for i in range(LEADS)]
    )
    lead_ids = list(Lead.objects.order_by("pk").values_list("pk", flat=True))

    # When two worker processes with four threads each route every lead twice over, all at once.
    workers = workers_on(redis_urls["broker"])
    for index in range(PROCESSES):
        _start_threaded_worker(workers, index)
    for position, lead_id in enumerate(lead_ids):
        lead_route_task.delay(lead_id, "new")
        if position % 100 == 0:
            process_dirty_leads_task.delay()

    done = wait_until(
        lambda: (
            not Lead.objects.filter(owner__isnull=True).exists()
            and not Lead.objects.filter(dirty_since__isnull=False).exists()
        ),
        timeout=240,
        interval=0.5,
    )

    # Then every lead has one owner and exactly one assignment record, and the rotation stayed even.
    assert done, f"{Lead.objects.filter(owner__isnull=True).count()} leads still without an owner"
    records = AssignmentDecision.objects.filter(outcome=Outcome.ASSIGNED)
    per_lead = records.values("lead").annotate(n=Count("pk"))
    assert {row["n"] for row in per_lead} == {1}
    assert per_lead.count() == LEADS
    owners = Lead.objects.values("owner").annotate(n=Count("pk"))
    counts = {row["owner"]: row["n"] for row in owners}
    assert set(counts) == {rep.pk for rep in reps}
    assert max(counts.values()) - min(counts.values()) <= 1
    # The owner on each lead is the winner its record names.
    assert not Lead.objects.exclude(assignment_decisions__winner_id=F("owner_id")).exists()
    assert RuleCursor.objects.get().assigned == LEADS
    # No batch failed (a deadlock would fail a lead's hook and show here, even though it is retried).
    assert (PipelineRun.objects.aggregate(n=Sum("failed"))["n"] or 0) == 0
