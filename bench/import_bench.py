"""Import benchmark: campaign lists through the real import job on PostgreSQL, against three baselines.

    .venv/bin/python bench/import_bench.py [--rows 100000] [--existing 100000] [--naive-rows 2000]
                                           [--iie-rows 20000] [--million] [--reuse]

1. (Re)creates the database ``leadcrm_bench_import`` (BENCH_IMPORT_DATABASE_URL) and migrates it.
2. Seeds ``--existing`` leads (bulk, not timed).
3. Writes the same ``--rows`` realistic rows as a UTF-8 and a GB18030 CSV: half of them duplicates of
   existing leads (e-mail in other case, phone in mixed formats: ``138 0013 8000``, ``+86-138…``,
   ``(0086)138…``), Chinese names and companies, a few bad rows.
4. Each measurement runs in its own process (clean peak RSS): ``import_create`` + ``import_run`` —
   the real worker code, in-process, no broker — for each file and ``on_duplicate`` mode, then undo.
5. Baselines on the same rows: (a) a naive per-row ORM loop (look up, then ORM creates) on a
   ``--naive-rows`` sample, (b) django-import-export's bulk mode (``use_bulk``) on ``--iie-rows``,
   (c) a raw ``COPY`` of the rows into a scratch table.
6. ``--million``: a 1,000,000-row file through the job, for the peak-memory figure.
Prints a table and writes bench/results/import_bench.json. It measures and reports; it never asserts.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import random
import resource
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from procstat import BackendsCPU, process_cpu_s

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
WORK = Path(os.environ.get("BENCH_IMPORT_WORKDIR", "/tmp/leadcrm_import_bench"))
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/leadcrm_bench_import"
PYTHON = sys.executable
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰涛明超秀霞平刚"
CITIES = ["上海", "北京", "深圳", "广州", "杭州", "成都", "南京", "武汉"]
INDUSTRIES = ["制造业", "软件", "零售", "金融", "教育", "医疗"]
HEADER = ["姓名", "手机", "邮箱", "公司", "职位", "行业", "城市", "备注"]


def existing_phone(i: int) -> str:
    return f"+86138{i:08d}"


def existing_email(i: int) -> str:
    return f"lead{i}@corp{i % 97}.example.cn"


def phone_variant(national: str, rng: random.Random) -> str:
    """The same number as people type it."""
    style = rng.randrange(4)
    if style == 0:
        return national
    if style == 1:
        return f"{national[:3]} {national[3:7]} {national[7:]}"
    if style == 2:
        return f"+86-{national[:3]}-{national[3:7]}-{national[7:]}"
    return f"(0086){national}"


def make_rows(n: int, existing: int, seed: int = 7) -> list[list[str]]:
    rng = random.Random(seed)
    rows = []
    for j in range(n):
        name = rng.choice(SURNAMES) + rng.choice(GIVEN) + (rng.choice(GIVEN) if rng.random() < 0.5 else "")
        company = (
            f"{rng.choice(CITIES)}{rng.choice(['华', '星', '博', '远'])}{rng.choice(['科技', '贸易', '实业'])}有限公司"
        )
        if j % 2 == 0 and existing:
            i = rng.randrange(existing)
            national = existing_phone(i)[3:]
            email = existing_email(i).upper() if rng.random() < 0.3 else existing_email(i)
            if rng.random() < 0.3:
                email = ""  # matched by phone only
        else:
            national = f"139{j:08d}"
            email = f"new{j}@example.com"
        phone = phone_variant(national, rng)
        note = '=HYPERLINK("x")' if j % 1000 == 0 else ""
        if j % 500 == 1:
            phone = "12345"  # a bad row
        rows.append([name, phone, email, company, "经理", rng.choice(INDUSTRIES), rng.choice(CITIES), note])
    return rows


def write_csv(path: Path, rows: list[list[str]], encoding: str) -> None:
    with path.open("w", encoding=encoding, newline="") as out:
        writer = csv.writer(out)
        writer.writerow(HEADER)
        writer.writerows(rows)


def write_csv_stream(path: Path, n: int, existing: int) -> None:
    """A big file written in slices, so the generator itself stays small."""
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(HEADER)
        for start in range(0, n, 50_000):
            block = make_rows(min(50_000, n - start), existing, seed=start)
            for k, row in enumerate(block):
                if row[2].startswith("new"):
                    row[2] = f"new{start + k}@example.com"
                    row[1] = f"139{start + k:08d}"
            writer.writerows(block)


# --- phases that run in a child process with Django set up -----------------------------------------


def django_setup(url: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ["CELERY_BROKER_URL"] = "memory://"
    os.environ["CELERY_TASK_ALWAYS_EAGER"] = "false"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "leadcrm.settings")
    os.environ.setdefault("DJANGO_LOG_LEVEL", "WARNING")
    # As a production worker runs: no debug cursor recording every statement (the other benches do the same).
    os.environ.setdefault("DJANGO_DEBUG", "false")
    sys.path.insert(0, str(REPO))
    import django

    django.setup()


def maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def load_average() -> float:
    return round(os.getloadavg()[0], 2)


def backend_cpu_s() -> float:
    """CPU seconds our PostgreSQL backend has used (/proc; the server runs on this host)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    return process_cpu_s(pid) or 0.0


def _cpu_since(cpu0: float, db_cpu0: float, rows: int, db_cpu: float | None = None) -> dict[str, float]:
    """Python and PostgreSQL CPU seconds since the marks, and rows per CPU second (load-independent)."""
    python_cpu = time.process_time() - cpu0
    if db_cpu is None:
        db_cpu = backend_cpu_s() - db_cpu0
    return {
        "python_cpu_s": round(python_cpu, 2),
        "db_cpu_s": round(db_cpu, 2),
        "rows_per_cpu_s": round(rows / max(python_cpu + db_cpu, 1e-9)),
    }


def phase_seed(args: argparse.Namespace) -> dict[str, Any]:
    from django.utils import timezone

    from leads.models import Lead, LeadStageChange

    now = timezone.now()
    for start in range(0, args.existing, 10_000):
        leads = [
            Lead(name=f"老客户{i}", email=existing_email(i), phone=existing_phone(i), company="", created_at=now,
                 last_activity_at=now)
            for i in range(start, min(args.existing, start + 10_000))
        ]  # fmt: skip
        Lead.objects.bulk_create(leads, batch_size=5000)
        LeadStageChange.objects.bulk_create(
            [LeadStageChange(lead_id=lead.pk, to_stage="new", changed_at=now) for lead in leads], batch_size=5000
        )
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE leads_lead")
    return {"existing": Lead.objects.count()}


def phase_import(args: argparse.Namespace) -> dict[str, Any]:
    from django.core.files.uploadedfile import (
        SimpleUploadedFile,  # noqa: F401 - imported for parity with uploads
        TemporaryUploadedFile,
    )

    from leads import services
    from leads.models import ImportJob, Lead
    from users.models import Role, User
    from users.services import user_create

    user = User.objects.filter(username="bench-marketing").first() or user_create(
        username="bench-marketing", password="bench-pw-123456", role=Role.MARKETING
    )
    path = Path(args.file)
    baseline_rss = maxrss_mb()
    upload = TemporaryUploadedFile(path.name, "text/csv", path.stat().st_size, None)
    with path.open("rb") as source:
        while chunk := source.read(1 << 20):
            upload.write(chunk)
    upload.seek(0)
    load_before = load_average()
    backends = BackendsCPU(args.url)
    db_cpu0, cpu0 = backend_cpu_s(), time.process_time()
    t0 = time.perf_counter()
    job = services.import_create(file=upload, by=user, on_duplicate=args.mode, tags=["bench"])
    t1 = time.perf_counter()
    services.import_run(job_id=job.pk)
    t2 = time.perf_counter()
    db_cpu, db_backends = backends.stop()
    job.refresh_from_db()
    # CPU time is what other work on the machine does not inflate: the contention-free cost.
    cpu = _cpu_since(cpu0 + backends.own_cpu_s, db_cpu0, job.total, db_cpu=db_cpu)
    dirty = Lead.objects.filter(dirty_since__isnull=False).count()
    result = {
        "file": path.name,
        "mode": args.mode,
        "rows": job.total,
        "create_s": round(t1 - t0, 2),
        "run_s": round(t2 - t1, 2),
        "total_s": round(t2 - t0, 2),
        "rows_per_s": round(job.total / (t2 - t0)),
        **cpu,
        "db_backends": db_backends,
        "load_average": [load_before, load_average()],
        "created": job.created,
        "updated": job.updated,
        "skipped": job.skipped,
        "failed": job.failed,
        "status": job.status,
        "marked_dirty": dirty,
        "baseline_rss_mb": round(baseline_rss),
        "peak_rss_mb": round(maxrss_mb()),
    }
    if not args.keep:
        t3 = time.perf_counter()
        services.import_undo(job=ImportJob.objects.get(pk=job.pk), by=user)
        result["undo_s"] = round(time.perf_counter() - t3, 2)
        Lead.objects.filter(dirty_since__isnull=False).update(dirty_since=None)
    return result


def _file_rows(path: Path, limit: int) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        return [row for _, row in zip(range(limit), reader, strict=False)]


def phase_naive(args: argparse.Namespace) -> dict[str, Any]:
    """What a straightforward importer does, per row with the ORM: normalize, look the person up, then create the
    lead, its first stage-history row, its tag and its ``import`` timeline event (the rows our import writes)."""
    from django.core.exceptions import ValidationError
    from django.db import transaction
    from django.db.models import Q

    from common.normalize import normalize_email, normalize_phone, normalize_text
    from leads.models import Interaction, Lead, LeadStageChange, Stage, Tag
    from users.models import User

    user = User.objects.filter(username="bench-marketing").first()
    tag, _ = Tag.objects.get_or_create(name="bench")
    rows = _file_rows(Path(args.file), args.naive_rows)
    created_ids = []
    db_cpu0, cpu0 = backend_cpu_s(), time.process_time()
    t0 = time.perf_counter()
    for line, row in enumerate(rows, start=2):
        try:
            email, phone = normalize_email(row["邮箱"]), normalize_phone(row["手机"])
        except ValidationError:
            continue
        with transaction.atomic():
            match = Lead.objects.filter(merged_into__isnull=True).filter(
                (Q(email=email) if email else Q(pk__in=[])) | (Q(phone=phone) if phone else Q(pk__in=[]))
            )
            if match.exists():
                continue
            lead = Lead(
                name=normalize_text(row["姓名"]), email=email, phone=phone, company=normalize_text(row["公司"]),
                job_title=normalize_text(row["职位"]), industry=normalize_text(row["行业"]),
                city=normalize_text(row["城市"]), source="import", created_by=user,
            )  # fmt: skip
            lead.full_clean()
            lead.save()
            LeadStageChange.objects.create(lead=lead, to_stage=Stage.NEW, changed_by=user, changed_at=lead.created_at)
            lead.tags.add(tag)
            Interaction.objects.create(
                lead=lead, type="import", properties={"file": Path(args.file).name, "line": line}, created_by=user
            )
            created_ids.append(lead.pk)
    seconds = time.perf_counter() - t0
    cpu = _cpu_since(cpu0, db_cpu0, len(rows))
    Lead.objects.filter(pk__in=created_ids).delete()
    return {"rows": len(rows), "seconds": round(seconds, 2), "rows_per_s": round(len(rows) / seconds), **cpu}


def phase_iie(args: argparse.Namespace) -> dict[str, Any]:
    """django-import-export in bulk mode, the usual Django answer: a bench-only Resource over Lead."""
    import tablib
    from django.db import transaction
    from import_export import fields, resources

    from leads.models import Lead

    class LeadResource(resources.ModelResource):
        name = fields.Field(attribute="name", column_name="姓名")
        phone = fields.Field(attribute="phone", column_name="手机")
        email = fields.Field(attribute="email", column_name="邮箱")
        company = fields.Field(attribute="company", column_name="公司")
        job_title = fields.Field(attribute="job_title", column_name="职位")
        industry = fields.Field(attribute="industry", column_name="行业")
        city = fields.Field(attribute="city", column_name="城市")

        class Meta:
            model = Lead
            fields = ("name", "phone", "email", "company", "job_title", "industry", "city")
            import_id_fields = ("email",)  # its dedupe: one lookup per row by the id field
            use_bulk = True
            batch_size = 1000
            skip_unchanged = True
            skip_diff = True
            use_transactions = True
            clean_model_instances = False

    rows = _file_rows(Path(args.file), args.iie_rows)
    dataset = tablib.Dataset(headers=HEADER[:7])
    for row in rows:
        dataset.append([row[h] for h in HEADER[:7]])
    # It updates the leads it matches by e-mail (their names, and phones as typed): all of it is rolled back
    # afterwards, so that a later run on the same database (--reuse) finds the seeded leads as they were.
    with transaction.atomic():
        db_cpu0, cpu0 = backend_cpu_s(), time.process_time()
        t0 = time.perf_counter()
        result = LeadResource().import_data(dataset, dry_run=False, raise_errors=False, collect_failed_rows=True)
        seconds = time.perf_counter() - t0
        cpu = _cpu_since(cpu0, db_cpu0, len(rows))
        transaction.set_rollback(True)
    return {
        "rows": len(rows),
        "seconds": round(seconds, 2),
        "rows_per_s": round(len(rows) / seconds),
        "note": "no phone normalization, dedupe on e-mail only (its import_id_fields), no history/timeline rows",
        "totals": {k: v for k, v in result.totals.items() if v},
        **cpu,
    }


def phase_copy(args: argparse.Namespace) -> dict[str, Any]:
    """The floor: the same rows COPYed as raw text into a scratch table, no parsing, no checks."""
    url = args.url
    path = Path(args.file)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_copy_scratch")
        conn.execute(
            "CREATE UNLOGGED TABLE bench_copy_scratch (name text, phone text, email text, company text, "
            "job_title text, industry text, city text, note text)"
        )
        t0 = time.perf_counter()
        copy_sql = "COPY bench_copy_scratch FROM STDIN WITH (FORMAT csv, HEADER true)"
        with conn.cursor() as cursor, path.open("rb") as source, cursor.copy(copy_sql) as copy:
            while chunk := source.read(1 << 20):
                copy.write(chunk)
        seconds = time.perf_counter() - t0
        rows = conn.execute("SELECT count(*) FROM bench_copy_scratch").fetchone()[0]  # type: ignore[index]
        conn.execute("DROP TABLE bench_copy_scratch")
    return {"rows": rows, "seconds": round(seconds, 3), "rows_per_s": round(rows / seconds)}


PHASES = {"seed": phase_seed, "import": phase_import, "naive": phase_naive, "iie": phase_iie}


def child(phase: str, url: str, extra: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    cmd = [PYTHON, __file__, "--phase", phase, "--url", url, *extra]
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env={**os.environ, **(env or {})}, check=False)
    if out.returncode != 0:
        print(out.stdout[-3000:], out.stderr[-5000:], file=sys.stderr)
        raise SystemExit(f"phase {phase} failed")
    return json.loads(out.stdout.strip().splitlines()[-1])


def recreate(url: str) -> None:
    base, name = url.rsplit("/", 1)
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "leadcrm.settings"}
    subprocess.run([PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=REPO, env=env, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--existing", type=int, default=100_000)
    parser.add_argument("--naive-rows", type=int, default=2_000)
    parser.add_argument("--iie-rows", type=int, default=20_000)
    parser.add_argument("--modes", default="skip,update")
    parser.add_argument("--million", action="store_true", help="also import a 1,000,000-row file (peak memory)")
    parser.add_argument("--reuse", action="store_true", help="keep the database and its seeded leads")
    parser.add_argument("--phase", choices=[*PHASES, "copy"], help=argparse.SUPPRESS)
    parser.add_argument("--url", default=os.environ.get("BENCH_IMPORT_DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--file", help=argparse.SUPPRESS)
    parser.add_argument("--mode", default="skip", help=argparse.SUPPRESS)
    parser.add_argument("--keep", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.phase == "copy":
        print(json.dumps(phase_copy(args)))
        return
    if args.phase:
        django_setup(args.url)
        print(json.dumps(PHASES[args.phase](args)))
        return

    WORK.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "rows": args.rows,
        "existing": args.existing,
    }
    if not args.reuse:
        print(f"recreating {args.url} …", flush=True)
        recreate(args.url)
        t0 = time.perf_counter()
        report["seed"] = child("seed", args.url, ["--existing", str(args.existing)])
        print(f"seeded {args.existing:,} leads in {time.perf_counter() - t0:.1f} s", flush=True)

    rows = make_rows(args.rows, args.existing)
    utf8, gb = WORK / "list-utf8.csv", WORK / "list-gb18030.csv"
    write_csv(utf8, rows, "utf-8")
    write_csv(gb, rows, "gb18030")
    report["file_mb"] = {"utf8": round(utf8.stat().st_size / 2**20, 1), "gb18030": round(gb.stat().st_size / 2**20, 1)}

    report["imports"] = []
    for mode in args.modes.split(","):
        for path in (utf8, gb):
            result = child("import", args.url, ["--file", str(path), "--mode", mode])
            report["imports"].append(result)
            print(
                f"import {path.name:<20} {mode:<6} {result['rows']:>8,} rows  {result['total_s']:>6.2f} s  "
                f"{result['rows_per_s']:>7,} rows/s  peak RSS {result['peak_rss_mb']} MB "
                f"(created {result['created']:,}, updated {result['updated']:,}, skipped {result['skipped']:,}, "
                f"failed {result['failed']:,}; undo {result.get('undo_s')} s; CPU python {result['python_cpu_s']} s "
                f"+ db {result['db_cpu_s']} s; load {result['load_average']})",
                flush=True,
            )
    report["load_average_after_imports"] = load_average()
    report["naive"] = child("naive", args.url, ["--file", str(utf8), "--naive-rows", str(args.naive_rows)])
    print(f"naive per-row ORM loop   {report['naive']}", flush=True)
    report["django_import_export"] = child("iie", args.url, ["--file", str(utf8), "--iie-rows", str(args.iie_rows)])
    print(f"django-import-export bulk {report['django_import_export']}", flush=True)
    report["copy"] = child("copy", args.url, ["--file", str(utf8)])
    print(f"raw COPY                 {report['copy']}", flush=True)

    if args.million:
        big = WORK / "list-1m.csv"
        write_csv_stream(big, 1_000_000, args.existing)
        result = child(
            "import",
            args.url,
            ["--file", str(big), "--mode", "skip", "--keep"],  # undoing 500,000 leads is not what is measured
            env={"LEADCRM_IMPORT_MAX_BYTES": str(1 << 30)},
        )
        result["file_mb"] = round(big.stat().st_size / 2**20, 1)
        report["million"] = result
        print(f"1,000,000 rows: {result}", flush=True)
        big.unlink()

    best = max(r["rows_per_s"] for r in report["imports"])
    worst = min(r["rows_per_s"] for r in report["imports"])
    slowest_cpu = min(r["rows_per_cpu_s"] for r in report["imports"])
    # The same ratios per CPU second (ours, Python + PostgreSQL): what a loaded machine does not distort.
    report["cpu_ratios"] = {
        "vs_naive": round(slowest_cpu / report["naive"]["rows_per_cpu_s"], 1),
        "vs_django_import_export": round(slowest_cpu / report["django_import_export"]["rows_per_cpu_s"], 1),
    }
    report["ratios"] = {
        "vs_naive": round(worst / report["naive"]["rows_per_s"], 1),
        "vs_django_import_export": round(worst / report["django_import_export"]["rows_per_s"], 1),
        "copy_over_ours": round(report["copy"]["rows_per_s"] / best, 1),
    }
    report["load_average_end"] = load_average()
    print(f"ratios (slowest of our runs): {report['ratios']}; per CPU second: {report['cpu_ratios']}")
    print(f"load average now {report['load_average_end']}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "import_bench.json").write_text(json.dumps(report, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
