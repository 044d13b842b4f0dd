"""Rescore benchmark: every lead scored again under a rule set on PostgreSQL, against a naive per-lead ORM loop.

    .venv/bin/python bench/rescore_bench.py [--leads 1000000] [--events 5000000] [--naive-sample 10000] [--reuse]

1. Seeds ``leadcrm_bench_rescore_seed`` (the BENCH_RESCORE_DATABASE_URL name + ``_seed``): migrations,
   the leads with ``api_bench``'s set-based seed and the interactions set-based too (12 types over the
   last 365 days, page URLs and download assets in their properties). ``--reuse`` keeps a seed of the
   same size. Each run measures on a fresh file-level copy of it (``CREATE DATABASE … TEMPLATE``),
   migrated and VACUUM ANALYZEd, so every run starts from the same arbitrary scores.
2. **First apply** of the active default rule set: the seeded scores are arbitrary, so nearly every
   lead changes: the worst case for the writes.
3. **A manager's edit**: a copy with demo requests 30 → 45, a new "+6 per pricing page view (cap 18)"
   rule and MQL 50 → 40; previewed, then applied. Each is one ``RescoreJob`` requested as the API
   does and run by a real ``celery -A leadcrm worker`` (prefork, ``--concurrency`` processes, 2 by
   default: one per core) through Redis (``BENCH_RESCORE_BROKER_URL``, db 13 by default); the time
   is from the request's commit until the bench sees the job done.
4. **Naive baseline, same run**: a random sample of leads, each loaded with the ORM, recomputed with
   ``scoring.services.lead_score_recompute`` and saved; its time extrapolated to all leads.
5. **Check**: a random sample's stored score and grade equal ``lead_score_recompute``.
Prints a table and writes bench/results/rescore_bench.json. It measures and reports; it never asserts.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]
import api_bench  # noqa: E402  (the lead seed and its helpers)
from procstat import BackendsCPU, machine_cpu_s, processes_cpu_s  # noqa: E402

RESULTS = ROOT / "bench" / "results"
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/leadcrm_bench_rescore"
TARGET_S = 60.0
TARGET_RATIO = 50.0
# Weighted: page views and e-mail opens are the bulk of any event log.
EVENT_TYPES = (["page_view"] * 8 + ["email_open"] * 4 + ["pricing_page_view", "content_download", "email_click"] * 2
               + ["webinar_registered", "webinar_attended", "form_submit", "call", "meeting", "demo_request",
                  "unsubscribe"])  # fmt: skip
URLS = ["/pricing", "/pricing/enterprise", "/blog/crm-tips", "/docs/api", "/", "/about"]
ASSETS = ["whitepaper", "ebook", "case-study"]


def log(message: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {message}", flush=True)


def interactions_sql(lo: int, hi: int, leads: int) -> str:
    types = api_bench.sql_array(EVENT_TYPES)
    urls, assets = api_bench.sql_array(URLS), api_bench.sql_array(ASSETS)
    mask = "9223372036854775807"
    return (
        "INSERT INTO leads_interaction (type, occurred_at, properties, created_at, lead_id) "
        f"SELECT t, now() - make_interval(secs => (h % 31536000)::float8), "
        f"CASE t WHEN 'page_view' THEN jsonb_build_object('url', ({urls})[1 + (h >> 30) % {len(URLS)}]) "
        f"WHEN 'content_download' THEN jsonb_build_object('asset', ({assets})[1 + (h >> 30) % {len(ASSETS)}]) "
        "ELSE '{}'::jsonb END, now(), 1 + (g % "
        f"{leads}) FROM (SELECT hashint8extended(i, 7) & {mask} AS h, hashint8extended(i, 11) & {mask} AS g, "
        f"({types})[1 + (hashint8extended(i, 13) & {mask}) % {len(EVENT_TYPES)}] AS t "
        f"FROM generate_series({lo}, {hi}) i) s"
    )


def seed_interactions(url: str, events: int, leads: int) -> dict[str, float]:
    """``events`` interactions set-based, indexes and constraints rebuilt after the load."""
    timings: dict[str, float] = {}
    with psycopg.connect(url, autocommit=True) as conn:
        indexes = conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'leads_interaction' AND indexname NOT IN "
            "(SELECT conname FROM pg_constraint WHERE conrelid = 'leads_interaction'::regclass)"
        ).fetchall()
        constraints = conn.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = 'leads_interaction'::regclass AND contype IN ('f', 'u')"
        ).fetchall()
        for name, _definition in constraints:
            conn.execute(f'ALTER TABLE leads_interaction DROP CONSTRAINT "{name}"')
        for name, _definition in indexes:
            conn.execute(f'DROP INDEX "{name}"')
    chunks = 8
    bounds = [(1 + events * k // chunks, events * (k + 1) // chunks) for k in range(chunks)]
    t0 = time.perf_counter()
    api_bench.run_parallel(url, [interactions_sql(lo, hi, leads) for lo, hi in bounds], setup="SET jit = off")
    timings["insert_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    api_bench.run_parallel(url, [d for _, d in indexes], setup="SET maintenance_work_mem = '1GB'")
    with psycopg.connect(url, autocommit=True) as conn:
        for name, definition in constraints:
            conn.execute(f'ALTER TABLE leads_interaction ADD CONSTRAINT "{name}" {definition}')
        # Leads keep the seed's last_activity_at: rewriting a million indexed rows would take minutes, and
        # the rules' "days inactive" is the newer of it and the latest event anyway (scoring.services).
        conn.execute("VACUUM (ANALYZE)")
        conn.execute("CHECKPOINT")
    timings["indexes_analyze_s"] = time.perf_counter() - t0
    return timings


def interaction_count(url: str) -> int | None:
    try:
        with psycopg.connect(url) as conn:
            return int(api_bench.scalar(conn, "SELECT count(*) FROM leads_interaction"))
    except psycopg.Error:
        return None


def clone(template: str, url: str) -> None:
    """``url``'s database as a file-level copy of ``template`` (seconds, where seeding takes minutes)."""
    name = urlsplit(url).path.lstrip("/")
    with psycopg.connect(api_bench.with_dbname(url, "postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{urlsplit(template).path.lstrip("/")}"')


def django_setup(url: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "leadcrm.settings")
    os.environ.setdefault("DJANGO_LOG_LEVEL", "WARNING")
    os.chdir(ROOT)
    import django

    django.setup()


class Worker:
    """``celery -A leadcrm worker`` (prefork, ``concurrency`` processes) on a queue of its own, as deployed."""

    def __init__(self, url: str, broker: str, queue: str, concurrency: int) -> None:
        self.queue = queue
        self.url = url
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "leadcrm.settings",
            "DATABASE_URL": url,
            "CELERY_BROKER_URL": broker,
            "CELERY_TASK_ALWAYS_EAGER": "false",
            "CELERY_TASK_DEFAULT_QUEUE": self.queue,
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "leadcrm", "worker", "-Q", self.queue, "-c", str(concurrency),
             "--pool", "prefork", "-l", "info", "--without-gossip", "--without-mingle", "--without-heartbeat",
             "-n", f"{self.queue}@%h"],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        self.lines: list[str] = []
        self.ready = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()
        if not self.ready.wait(60):
            self.stop()
            raise RuntimeError("the Celery worker did not start:\n" + "".join(self.lines[-30:]))

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)
            if " ready." in line:
                self.ready.set()

    def cpu_s(self) -> float:
        """CPU seconds used so far by the worker's processes (the parent and its pool children)."""
        pids = [self.process.pid]
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        if children.exists():
            pids += [int(p) for p in children.read_text().split()]
        return processes_cpu_s(pids)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()


def run_job(rule_set: Any, mode: str, worker: Worker) -> dict[str, Any]:
    """Request the job as the API does (``rescore_run_task`` on commit) and wait for the worker to finish it."""
    from django.db import transaction

    from scoring.models import RescoreJob, RescoreStatus
    from scoring.tasks import rescore_run_task

    job = RescoreJob.objects.create(rule_set=rule_set, mode=mode)
    backends = BackendsCPU(worker.url, interval=0.1)
    cpu0, machine0, t0 = worker.cpu_s(), machine_cpu_s(), time.perf_counter()
    with transaction.atomic():
        transaction.on_commit(lambda: rescore_run_task.delay(job.pk))
    while True:
        done = RescoreJob.objects.get(pk=job.pk)
        if done.status in (RescoreStatus.DONE, RescoreStatus.FAILED):
            break
        time.sleep(0.05)
    wall = time.perf_counter() - t0
    postgres_cpu, _count = backends.stop()
    if done.status == RescoreStatus.FAILED:
        raise RuntimeError(f"the {mode} failed: {done.error}")
    figures = {
        "seconds": round(wall, 1),
        "worker_cpu_s": round(worker.cpu_s() - cpu0, 1),
        "postgres_cpu_s": round(postgres_cpu, 1),
        "machine_cpu_s": round(machine_cpu_s() - machine0, 1),
        "parts": done.parts.count(),
        "leads": done.total,
        "changed_scores": done.changed_scores,
        "changed_grades": done.changed_grades,
        "stage_moves": done.stage_moves,
        "left_to_pipeline": done.skipped,
        "phases_s": done.summary.get("phases_s", {}),
        "grade_moves": dict(list(done.summary.get("grade_moves", {}).items())[:6]),
    }
    log(f"  {mode}: {wall:.1f} s ({done.total:,} leads, {done.changed_scores:,} scores changed, "
        f"{done.changed_grades:,} grades, {done.stage_moves:,} stage moves; CPU: worker {figures['worker_cpu_s']} s, "
        f"PostgreSQL {figures['postgres_cpu_s']} s, machine {figures['machine_cpu_s']} s; phases {figures['phases_s']})")  # fmt: skip
    return figures


def manager_edit() -> Any:
    from scoring import rules
    from scoring.models import ScoringRule, ScoringRuleSet
    from scoring.services import rule_set_copy

    draft = rule_set_copy(rule_set=ScoringRuleSet.objects.get(is_active=True), name="Bench: sharper intent")
    draft.rules.filter(event_type="demo_request").update(points=45)
    ScoringRule.objects.create(
        rule_set=draft,
        name="Pricing page",
        kind=rules.BEHAVIOUR,
        points=6,
        cap=18,
        event_type="page_view",
        event_filters=[{"path": "url", "operator": rules.CONTAINS, "value": "/pricing"}],
    )
    draft.mql_threshold = 40
    draft.save(update_fields=["mql_threshold"])
    return draft


def naive(sample: list[int]) -> float:
    """The loop a first version would write: per lead, load it, recompute from its facts, save it."""
    from django.utils import timezone

    from leads.models import Lead
    from scoring.services import lead_score_recompute

    t0 = time.perf_counter()
    for pk in sample:
        lead = Lead.objects.select_related("scorecard").get(pk=pk)
        result = lead_score_recompute(lead=lead, now=timezone.now())
        card = lead.scorecard
        card.score, card.grade, card.score_updated_at = result.score, result.grade, timezone.now()
        card.save(update_fields=["score", "grade", "score_updated_at"])
    return time.perf_counter() - t0


def check(sample: list[int]) -> dict[str, int]:
    from django.utils import timezone

    from leads.models import Lead
    from scoring.services import lead_score_recompute

    now = timezone.now()
    mismatches = 0
    for lead in Lead.objects.filter(pk__in=sample).select_related("scorecard"):
        result = lead_score_recompute(lead=lead, now=now)
        mismatches += (lead.score, lead.grade) != (result.score, result.grade)
    return {"checked": len(sample), "mismatches": mismatches}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--leads", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=5_000_000)
    parser.add_argument("--naive-sample", type=int, default=10_000)
    parser.add_argument("--check-sample", type=int, default=1_000)
    parser.add_argument("--reuse", action="store_true", help="Keep a database seeded with the same --leads.")
    parser.add_argument("--concurrency", type=int, default=2, help="Worker processes (the default: one per core).")
    args = parser.parse_args()
    url = os.environ.get("BENCH_RESCORE_DATABASE_URL", DEFAULT_URL)
    RESULTS.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": api_bench.machine(),
        "leads": args.leads,
        "events": args.events,
    }
    # The seeded database is kept as a template; each run measures on a fresh copy of it, so a run
    # starts from the same arbitrary scores whether it seeded or reused.
    template = api_bench.with_dbname(url, urlsplit(url).path.lstrip("/") + "_seed")
    seeded = api_bench.database_lead_count(template) if args.reuse else None
    if seeded == args.leads and interaction_count(template) == args.events:
        log(f"Reusing the seeded template {template}")
    else:
        log(f"Seeding {template}: {args.leads:,} leads, {args.events:,} interactions")
        api_bench.recreate_database(template)
        api_bench.manage(template, "migrate", "--noinput", "-v", "0")
        people = json.loads(api_bench.manage(template, "shell", "-c", api_bench.PEOPLE_SCRIPT).strip().splitlines()[-1])
        seed = api_bench.seed(template, args.leads, people)
        seed.update({f"interactions_{k}": v for k, v in seed_interactions(template, args.events, args.leads).items()})
        report["seed"] = {k: round(v, 1) for k, v in seed.items()}
        log("  " + ", ".join(f"{k} {v}" for k, v in report["seed"].items()))
    t0 = time.perf_counter()
    clone(template, url)
    api_bench.manage(url, "migrate", "--noinput", "-v", "0")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE)")  # autovacuum may be off: the planner and visibility map need it
    log(f"Copied the template to {url}, migrated and analyzed in {time.perf_counter() - t0:.1f} s")
    broker = os.environ.get("BENCH_RESCORE_BROKER_URL", "redis://127.0.0.1:6379/13")
    queue = f"bench-rescore-{os.getpid()}"
    os.environ.update(
        {"CELERY_BROKER_URL": broker, "CELERY_TASK_ALWAYS_EAGER": "false", "CELERY_TASK_DEFAULT_QUEUE": queue}
    )
    django_setup(url)
    worker = Worker(url, broker, queue, args.concurrency)
    report["worker"] = {"concurrency": args.concurrency, "pool": "prefork"}
    log(f"Worker ready: {args.concurrency} processes on queue {worker.queue}")
    try:
        run_jobs(report, worker)
    finally:
        worker.stop()
    report["load_average_after_jobs"] = api_bench.load_average()
    finish(report, args)


def run_jobs(report: dict[str, Any], worker: Worker) -> None:
    from scoring.models import RescoreMode, ScoringRuleSet

    report["load_average_before"] = api_bench.load_average()
    log("First apply of the default rule set (the seeded scores are arbitrary: nearly every lead changes)")
    default = ScoringRuleSet.objects.get(is_active=True)
    report["first_preview"] = run_job(default, RescoreMode.PREVIEW, worker)  # an apply needs one
    report["first_apply"] = run_job(default, RescoreMode.APPLY, worker)
    log("A manager's edit: preview, then apply")
    draft = manager_edit()
    report["edit_preview"] = run_job(draft, RescoreMode.PREVIEW, worker)
    report["edit_apply"] = run_job(draft, RescoreMode.APPLY, worker)
    report["preview_equals_apply"] = all(
        report["edit_preview"][k] == report["edit_apply"][k]
        for k in ("leads", "changed_scores", "changed_grades", "stage_moves")
    )


def finish(report: dict[str, Any], args: argparse.Namespace) -> None:
    from leads.models import Lead

    ids = list(Lead.objects.values_list("pk", flat=True))
    rng = random.Random(2026)
    sample = rng.sample(ids, min(args.naive_sample, len(ids)))
    log(f"Naive per-lead ORM loop on {len(sample):,} leads")
    naive_s = naive(sample)
    per_lead = naive_s / len(sample)
    report["naive"] = {
        "sample": len(sample),
        "seconds": round(naive_s, 1),
        "ms_per_lead": round(per_lead * 1000, 2),
        "extrapolated_s": round(per_lead * len(ids), 1),
    }
    report["check"] = check(rng.sample(ids, min(args.check_sample, len(ids))))
    report["load_average_after"] = api_bench.load_average()
    report["ratio_edit_apply"] = round(report["naive"]["extrapolated_s"] / report["edit_apply"]["seconds"], 1)
    report["ratio_first_apply"] = round(report["naive"]["extrapolated_s"] / report["first_apply"]["seconds"], 1)
    (RESULTS / "rescore_bench.json").write_text(json.dumps(report, indent=2, ensure_ascii=False))
    print_report(report)


def print_report(report: dict[str, Any]) -> None:
    n = report["leads"]
    print(f"\nleadcrm rescore benchmark: {n:,} leads, {report['events']:,} interactions")
    print(f"{report['machine']}")
    if "seed" in report:
        print(f"seed: {report['seed']}")
    print(f"{'run':<16}{'seconds':>9}{'changed':>12}{'grades':>10}{'stages':>10}   target")
    for key in ("first_preview", "first_apply", "edit_preview", "edit_apply"):
        row = report[key]
        verdict = "PASS" if row["seconds"] <= TARGET_S else "MISS"
        print(
            f"{key:<16}{row['seconds']:>9.1f}{row['changed_scores']:>12,}{row['changed_grades']:>10,}"
            f"{row['stage_moves']:>10,}   ≤ {TARGET_S:.0f} s {verdict}"
        )
    naive = report["naive"]
    print(
        f"naive loop: {naive['ms_per_lead']} ms/lead on {naive['sample']:,} leads → {naive['extrapolated_s']:,.0f} s "
        f"for all; ratio {report['ratio_edit_apply']}× (edit), {report['ratio_first_apply']}× (first apply), "
        f"target ≥ {TARGET_RATIO:.0f}×"
    )
    print(f"preview figures equal apply: {report['preview_equals_apply']}; check: {report['check']}")
    print(f"load average before/after: {report['load_average_before']} / {report['load_average_after']}")


if __name__ == "__main__":
    main()
