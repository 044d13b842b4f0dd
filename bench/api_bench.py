"""API benchmark: N leads in PostgreSQL behind gunicorn, timed over real HTTP, against an OFFSET baseline.

    .venv/bin/python bench/api_bench.py [--leads 1000000] [--requests 200] [--reuse]

1. (Re)creates the database named by BENCH_DATABASE_URL and migrates it with ``manage.py migrate``.
2. Makes teams, users of every role and API keys through the Django services, then seeds the leads
   set-based in SQL (``INSERT … SELECT … FROM generate_series``): indexes and foreign keys are dropped
   for the load and rebuilt after it, two connections at a time (one per core); VACUUM ANALYZE.
3. Starts gunicorn (2 sync workers) and measures p50/p95 and the X-DB-Queries header per scenario.
4. Times the OFFSET pagination that keyset pagination replaces, straight through psycopg.
5. Prints a table with PASS/MISS against the targets and writes bench/results/api_bench.json.
It measures and reports; it never asserts. Gunicorn is stopped whatever happens.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import math
import os
import platform
import queue
import random
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit, urlunsplit

import psycopg

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
PYTHON = sys.executable
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/leadcrm_bench"
BROKER_URL = os.environ.get("BENCH_API_BROKER_URL", "redis://127.0.0.1:6379/11")
LIST_P95_MS = 50.0
CREATE_P95_MS = 30.0
SEED_S_PER_MILLION = 60.0
DEEP_PAGE = 1000
PAGE_SIZE = 50
SEED_TABLES = ("leads_lead", "leads_lead_tags", "leads_leadscore")

# --- vocabularies for the SQL seed ---------------------------------------------------------------
CN_SURNAMES = ["王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭"]
CN_SURNAMES_PY = [
    "wang",
    "li",
    "zhang",
    "liu",
    "chen",
    "yang",
    "huang",
    "zhao",
    "wu",
    "zhou",
    "xu",
    "sun",
    "ma",
    "zhu",
    "hu",
    "guo",
]
CN_GIVEN = ["伟", "娜", "芳", "敏", "静", "磊", "强", "洋", "艳", "勇", "军", "杰", "晓明", "丽华", "志强", "欣怡"]
CN_GIVEN_PY = [
    "wei",
    "na",
    "fang",
    "min",
    "jing",
    "lei",
    "qiang",
    "yang",
    "yan",
    "yong",
    "jun",
    "jie",
    "xiaoming",
    "lihua",
    "zhiqiang",
    "xinyi",
]
EN_FIRST = [
    "James",
    "Mary",
    "Robert",
    "Linda",
    "David",
    "Emily",
    "Oliver",
    "Sophie",
    "Priya",
    "Daniel",
    "Sarah",
    "George",
]
EN_LAST = ["Smith", "Johnson", "Brown", "Garcia", "Miller", "Davis", "Wilson", "Taylor", "Clark", "Patel", "Nguyen", "Murphy",
           "Evans", "Hughes", "Walker", "Wright", "Moore", "Harris", "Lewis", "Cohen"]  # fmt: skip
BRANDS_CN = ["云帆", "数澜", "智源", "优品", "恒瑞", "华信", "星河", "天成", "博远", "鼎新"]
BRANDS_PY = ["yunfan", "shulan", "zhiyuan", "youpin", "hengrui", "huaxin", "xinghe", "tiancheng", "boyuan", "dingxin"]
BRANDS_EN = [
    "Acme",
    "Northwind",
    "Bluewave",
    "Summit",
    "Brightpath",
    "Ironclad",
    "Silverline",
    "Evergreen",
    "Redwood",
    "Keystone",
]
# Eight places per team (team 0 East China, 1 South China, 2 International): (city, region, country).
PLACES = [
    ("上海", "华东", "CN"), ("杭州", "华东", "CN"), ("南京", "华东", "CN"), ("苏州", "华东", "CN"),
    ("宁波", "华东", "CN"), ("合肥", "华东", "CN"), ("北京", "华北", "CN"), ("天津", "华北", "CN"),
    ("深圳", "华南", "CN"), ("广州", "华南", "CN"), ("厦门", "华南", "CN"), ("东莞", "华南", "CN"),
    ("珠海", "华南", "CN"), ("福州", "华南", "CN"), ("成都", "西南", "CN"), ("重庆", "西南", "CN"),
    ("New York", "North America", "US"), ("San Francisco", "North America", "US"), ("Austin", "North America", "US"),
    ("Seattle", "North America", "US"), ("Boston", "North America", "US"), ("Chicago", "North America", "US"),
    ("London", "Europe", "GB"), ("Manchester", "Europe", "GB"),
]  # fmt: skip
INDUSTRIES = ["SaaS", "Manufacturing", "E-commerce", "Finance", "Healthcare", "Education", "Logistics", "Retail",
              "Automotive", "Energy", "Media", "Real estate"]  # fmt: skip
CN_SUFFIX = ["软件科技有限公司", "精密制造有限公司", "电子商务有限公司", "金融服务有限公司", "医疗科技有限公司", "教育科技有限公司",
             "供应链管理有限公司", "零售连锁有限公司", "汽车零部件有限公司", "新能源有限公司", "文化传媒有限公司", "置业有限公司"]  # fmt: skip
EN_SUFFIX = ["Software", "Manufacturing", "Commerce", "Capital", "Health", "Learning", "Logistics", "Retail", "Motors",
             "Energy", "Media", "Properties"]  # fmt: skip
SIZES = ["1-10", "11-50", "51-200", "201-500", "501-1000", "1001-5000", "5000+"]
CN_TITLES = [
    "总经理",
    "副总裁",
    "销售总监",
    "市场总监",
    "IT总监",
    "采购经理",
    "IT经理",
    "市场经理",
    "运营经理",
    "工程师",
]
EN_TITLES = ["CEO", "VP Sales", "Director of Marketing", "Head of IT", "Procurement Manager", "IT Manager", "Marketing Manager",
             "Operations Manager", "Software Engineer", "Marketing Specialist"]  # fmt: skip
INTERESTS = [
    "CRM",
    "Marketing automation",
    "Lead scoring",
    "Analytics",
    "Integrations",
    "API",
    "Mobile app",
    "Data security",
]
# Weighted pools of 100 (or 20): most leads are early in the funnel, ads and forms bring the most.
STAGE_POOL = (
    ["new"] * 30
    + ["contacted"] * 20
    + ["nurturing"] * 18
    + ["mql"] * 10
    + ["sql"] * 7
    + ["converted"] * 5
    + ["lost"] * 8
    + ["recycled"] * 2
)
SOURCE_POOL = (
    ["online_ads"] * 4
    + ["web_form"] * 4
    + ["social_media"] * 3
    + ["content"] * 2
    + ["event"] * 2
    + ["referral", "import", "promotion", "api", "other"]
)
LOST_REASONS = ["预算不足", "选择了竞争对手", "No budget", "Chose a competitor", "Unresponsive"]
TAGS = ["VIP", "重点客户", "回访", "展会线索", "partner", "needs-demo", "budget-approved", "competitor-user"]
CAMPAIGNS = [("百度搜索推广", "online_ads", "baidu-sem"), ("Google Ads — Global", "online_ads", "google-global"),
             ("微信公众号", "social_media", "wechat-oa"), ("深圳高交会", "event", "chtf"), ("CRM 白皮书", "content", "whitepaper"),
             ("双十一年付八折", "promotion", "double11"), ("Customer referral", "referral", "referral")]  # fmt: skip

PEOPLE_SCRIPT = """
import json, secrets
from users.models import Role
from users.services import team_get_or_create, user_create
pw = secrets.token_urlsafe(16)
out = {"admin": user_create(username="bench_admin", password=pw, role=Role.ADMIN).pk, "teams": [], "reps": [], "managers": []}
user_create(username="bench_marketing", password=pw, role=Role.MARKETING)
for n, name in enumerate(["Bench East China", "Bench South China", "Bench International"]):
    team = team_get_or_create(name=name)
    out["teams"].append(team.pk)
    out["managers"].append(user_create(username=f"bench_manager{n}", password=pw, role=Role.MANAGER, team=team).pk)
    out["reps"] += [user_create(username=f"bench_rep{n}_{k}", password=pw, role=Role.REP, team=team).pk for k in range(4)]
print(json.dumps(out))
"""


def log(message: str) -> None:
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {message}", flush=True)


# --- database -----------------------------------------------------------------------------------


def scalar(conn: psycopg.Connection[Any], query: str, params: tuple[Any, ...] = ()) -> Any:
    row = conn.execute(query, params).fetchone()
    return row[0] if row else None


def with_dbname(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


def recreate_database(url: str) -> None:
    name = urlsplit(url).path.lstrip("/")
    with psycopg.connect(with_dbname(url, "postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def database_lead_count(url: str) -> int | None:
    try:
        with psycopg.connect(url) as conn:
            count = scalar(conn, "SELECT count(*) FROM leads_lead")
    except psycopg.Error:
        return None
    return int(count)


def manage(url: str, *args: str) -> str:
    """Run manage.py against the bench database; return its stdout (its stderr goes to ours)."""
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_LOG_LEVEL": "WARNING"}
    done = subprocess.run(
        [PYTHON, "manage.py", *args], cwd=ROOT, env=env, check=True, stdout=subprocess.PIPE, text=True
    )
    return done.stdout


def api_key(url: str, username: str) -> str:
    return manage(url, "create_api_key", "--user", username, "--name", "bench").strip().splitlines()[-1]


def sql_array(values: list[str]) -> str:
    return "ARRAY[" + ",".join("'" + v.replace("'", "''") + "'" for v in values) + "]::text[]"


# NOT NULL columns this seed does not know (added by a later migration) get a neutral value by type.
FILLERS = {
    "text": "''", "character varying": "''", "boolean": "false", "integer": "0", "bigint": "0", "smallint": "0",
    "numeric": "0", "double precision": "0", "jsonb": "'{}'::jsonb", "timestamp with time zone": "created_at",
    "date": "created_at::date", "uuid": "gen_random_uuid()",
}  # fmt: skip


def unknown_not_null_columns(conn: psycopg.Connection[Any], known: str) -> dict[str, str]:
    names = {c.strip() for c in known.split(",")}
    rows = conn.execute(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'leads_lead' "
        "AND is_nullable = 'NO' AND column_default IS NULL AND is_generated = 'NEVER' AND is_identity = 'NO'"
    ).fetchall()
    extra = {}
    for name, data_type in rows:
        if name in names:
            continue
        if data_type not in FILLERS:
            raise RuntimeError(
                f"leads_lead.{name} ({data_type}) is NOT NULL without a default: teach bench/api_bench.py a value"
            )
        extra[name] = FILLERS[data_type]
    return extra


LEAD_COLUMNS = """id, name, email, phone, company, job_title, website, industry, company_size, country, region, city,
    interests, attributes, source, campaign_id, utm_source, utm_medium, utm_campaign, utm_term, utm_content,
    stage, lost_reason, first_contacted_at, mql_at, sql_at, converted_at, lost_at, owner_id, team_id,
    last_activity_at, do_not_contact, created_at, updated_at, created_by_id"""


def lead_insert_sql(
    lo: int, hi: int, n: int, anchor: datetime, people: dict[str, Any], campaign_ids: list[int], extra: dict[str, str]
) -> str:
    """INSERT of leads lo..hi. Pseudo-random but deterministic: every draw is a hash of (row, k)."""
    a = sql_array
    # 0 ≤ h(k) < 2^63, independent per k; ids are explicit so the two loaders never overlap.
    hashes = ",\n".join(f"(hashint8extended(g.i, {k}) & 9223372036854775807) AS h{k}" for k in range(1, 9))
    stamp = f"'{anchor.isoformat()}'::timestamptz"
    reps = "ARRAY[" + ",".join(str(r) for r in people["reps"]) + "]::bigint[]"
    teams = "ARRAY[" + ",".join(str(t) for t in people["teams"]) + "]::bigint[]"
    campaigns = "ARRAY[" + ",".join(str(c) for c in campaign_ids) + "]::bigint[]"
    cities, regions, countries = (a([p[k] for p in PLACES]) for k in range(3))
    # One statement writes the leads and their score cards from the same drawn rows (the seed connection
    # runs with triggers off, so the database's card-per-lead trigger does not add default cards).
    return f"""
WITH lead AS MATERIALIZED (
    SELECT *, created_at + ({stamp} - created_at) * ((h1 / 7 % 1000000) / 1000000.0) AS activity
    FROM (
        SELECT i, h1, h2, h3, h4, h5, h6, h7, h8,
               (h1 % 3)::int AS t,
               (h1 % 3)::int * 8 + (h2 / 64 % 8)::int AS place,
               (h3 / 64 % {len(INDUSTRIES)})::int AS ind,
               ({a(STAGE_POOL)})[1 + h4 / 64 % {len(STAGE_POOL)}] AS stage,
               ({a(SOURCE_POOL)})[1 + h5 / 1024 % {len(SOURCE_POOL)}] AS source,
               (h6 / 1024 % 101)::int AS score,
               -- Two years of leads in id order, with a few hours of jitter.
               {stamp} - interval '730 days' * (1 - i::float8 / {n}) - interval '1 second' * (h7 / 1024 % 14400) AS created_at
        FROM (SELECT g.i, {hashes} FROM generate_series({lo}, {hi}) AS g(i)) AS raw
    ) AS drawn
),
inserted AS (
INSERT INTO leads_lead ({LEAD_COLUMNS}{"".join(", " + c for c in extra)})
SELECT
    i,
    CASE WHEN t < 2 THEN ({a(CN_SURNAMES)})[1 + h2 % {len(CN_SURNAMES)}] || ({a(CN_GIVEN)})[1 + h3 % {len(CN_GIVEN)}]
         ELSE ({a(EN_FIRST)})[1 + h2 % {len(EN_FIRST)}] || ' ' || ({a(EN_LAST)})[1 + h3 % {len(EN_LAST)}] END,
    CASE WHEN t < 2 THEN ({a(CN_GIVEN_PY)})[1 + h3 % {len(CN_GIVEN_PY)}] || '.' || ({a(CN_SURNAMES_PY)})[1 + h2 % {len(CN_SURNAMES_PY)}]
         ELSE lower(({a(EN_FIRST)})[1 + h2 % {len(EN_FIRST)}] || '.' || ({a(EN_LAST)})[1 + h3 % {len(EN_LAST)}]) END
        || '.' || i || '@' || ({a(BRANDS_PY)})[1 + h4 % {len(BRANDS_PY)}] || '.example.com',
    CASE WHEN t < 2 THEN '+86' || (ARRAY['138','139','186','159'])[1 + i % 4] || lpad((i % 100000000)::text, 8, '0')
         WHEN place >= 22 THEN '+447' || (ARRAY['4','5','7','8'])[1 + i % 4] || lpad((i % 100000000)::text, 8, '0')
         ELSE '+1' || (ARRAY['212','415','646','617'])[1 + i % 4] || (2000000 + i % 8000000)::text END,
    CASE WHEN t < 2 THEN ({cities})[1 + place] || ({a(BRANDS_CN)})[1 + h4 % {len(BRANDS_CN)}] || ({a(CN_SUFFIX)})[1 + ind]
         ELSE ({a(BRANDS_EN)})[1 + h4 % {len(BRANDS_EN)}] || ' ' || ({a(EN_SUFFIX)})[1 + ind] || ' Inc.' END,
    CASE WHEN t < 2 THEN ({a(CN_TITLES)})[1 + h5 % {len(CN_TITLES)}] ELSE ({a(EN_TITLES)})[1 + h5 % {len(EN_TITLES)}] END,
    '',
    ({a(INDUSTRIES)})[1 + ind],
    ({a(SIZES)})[1 + h5 / 16 % {len(SIZES)}],
    ({countries})[1 + place], ({regions})[1 + place], ({cities})[1 + place],
    jsonb_build_array(({a(INTERESTS)})[1 + h6 % {len(INTERESTS)}]),
    jsonb_build_object('plan', (ARRAY['starter','pro','enterprise'])[1 + h6 / 16 % 3], 'employees', 2 + h6 / 64 % 5000),
    source,
    CASE WHEN h7 % 2 = 0 THEN ({campaigns})[1 + h7 / 2 % {len(campaign_ids)}] END,
    CASE source WHEN 'online_ads' THEN CASE WHEN t < 2 THEN 'baidu' ELSE 'google' END WHEN 'social_media' THEN 'wechat' ELSE '' END,
    CASE source WHEN 'online_ads' THEN 'cpc' WHEN 'social_media' THEN 'social' ELSE '' END,
    CASE source WHEN 'online_ads' THEN 'sem-always-on' ELSE '' END,
    '', '',
    stage,
    CASE WHEN stage = 'lost' THEN ({a(LOST_REASONS)})[1 + h7 / 8 % {len(LOST_REASONS)}] ELSE '' END,
    CASE WHEN stage <> 'new' THEN least(created_at + interval '1 day', {stamp}) END,
    CASE WHEN stage IN ('mql', 'sql', 'converted') THEN least(created_at + interval '3 days', {stamp}) END,
    CASE WHEN stage IN ('sql', 'converted') THEN least(created_at + interval '7 days', {stamp}) END,
    CASE WHEN stage = 'converted' THEN least(created_at + interval '14 days', {stamp}) END,
    CASE WHEN stage = 'lost' THEN least(created_at + interval '5 days', {stamp}) END,
    CASE WHEN h8 % 5 = 0 THEN NULL ELSE ({reps})[1 + t * 4 + h8 / 5 % 4] END,
    ({teams})[1 + t],
    activity,
    h8 / 8 % 100 = 0,
    created_at, activity, NULL{"".join(", " + v for v in extra.values())}
FROM lead
)
INSERT INTO leads_leadscore (lead_id, score, grade, score_updated_at)
SELECT i, score, CASE WHEN score >= 80 THEN 'hot' WHEN score >= 50 THEN 'warm' ELSE 'cold' END, activity FROM lead
"""


def run_parallel(url: str, statements: list[str], workers: int = 2, setup: str = "") -> dict[str, float]:
    """Run statements on ``workers`` connections (one per core), each in its own transaction; return their durations."""
    work: queue.Queue[str] = queue.Queue()
    for statement in statements:
        work.put(statement)
    errors: list[BaseException] = []
    durations: dict[str, float] = {}

    def worker() -> None:
        try:
            with psycopg.connect(url, autocommit=True) as conn:
                if setup:
                    conn.execute(setup)
                while True:
                    try:
                        statement = work.get_nowait()
                    except queue.Empty:
                        return
                    t0 = time.perf_counter()
                    conn.execute(statement)
                    durations[statement] = time.perf_counter() - t0
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return durations


def seed(url: str, n: int, people: dict[str, Any]) -> dict[str, float]:
    """Load ``n`` leads set-based; return the time of each phase in seconds."""
    timings: dict[str, float] = {}
    anchor = datetime.now(UTC).replace(microsecond=0)
    with psycopg.connect(url, autocommit=True) as conn:
        campaign_ids = [
            scalar(
                conn,
                "INSERT INTO leads_campaign (name, channel, cost, currency, starts_on, utm_campaign, created_at)"
                " VALUES (%s, %s, 10000, 'CNY', current_date - 365, %s, now()) RETURNING id",
                campaign,
            )
            for campaign in CAMPAIGNS
        ]
        tag_ids = [scalar(conn, "INSERT INTO leads_tag (name) VALUES (%s) RETURNING id", (t,)) for t in TAGS]
        extra = unknown_not_null_columns(conn, LEAD_COLUMNS)
        # Loading into bare tables and building each index once is several times faster than
        # maintaining 17 indexes (two of them GIN) and 4 foreign keys row by row.
        tables = ", ".join(f"'{t}'" for t in SEED_TABLES)
        indexes = conn.execute(
            f"SELECT indexname, indexdef FROM pg_indexes WHERE tablename IN ({tables}) AND indexname NOT IN "
            f"(SELECT conname FROM pg_constraint WHERE conrelid::regclass::text IN ({tables}))"
        ).fetchall()
        constraints = conn.execute(
            f"SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
            f"WHERE conrelid::regclass::text IN ({tables}) AND contype IN ('f', 'u')"
        ).fetchall()
        started = time.perf_counter()
        for table, name, _definition in constraints:
            conn.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
        for name, _definition in indexes:
            conn.execute(f'DROP INDEX "{name}"')

    chunks = 8
    bounds = [(1 + n * k // chunks, n * (k + 1) // chunks) for k in range(chunks)]
    t0 = time.perf_counter()
    # JIT compiling the big SELECT costs more than it saves here.
    leads_sql = [lead_insert_sql(lo, hi, n, anchor, people, campaign_ids, extra) for lo, hi in bounds if lo <= hi]
    run_parallel(url, leads_sql, setup="SET jit = off; SET session_replication_role = replica")
    tags = "ARRAY[" + ",".join(map(str, tag_ids)) + "]::bigint[]"
    # About 30 % of the leads carry a tag, 10 % two.
    run_parallel(
        url,
        [
            f"INSERT INTO leads_lead_tags (lead_id, tag_id) SELECT i, ({tags})[1 + h % {len(tag_ids)}] FROM "
            f"(SELECT i, hashint8extended(i, 99) & 9223372036854775807 AS h FROM generate_series({lo}, {hi}) i) s "
            f"WHERE h / 1024 % 10 < 3 "
            f"UNION ALL SELECT i, ({tags})[1 + (h + 1) % {len(tag_ids)}] FROM "
            f"(SELECT i, hashint8extended(i, 99) & 9223372036854775807 AS h FROM generate_series({lo}, {hi}) i) s "
            f"WHERE h / 1024 % 10 = 0"
            for lo, hi in bounds
            if lo <= hi
        ],
    )
    timings["insert_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    # The slowest build (trigram GIN) goes first so that the other connection takes all the B-trees.
    ordered = sorted(indexes, key=lambda row: ("gin" not in row[1].lower(), row[0]))
    builds = run_parallel(
        url,
        [row[1] for row in ordered],
        setup="SET maintenance_work_mem = '1GB'; SET max_parallel_maintenance_workers = 0",
    )
    timings["indexes_s"] = time.perf_counter() - t0
    by_definition = {definition: name for name, definition in indexes}
    for definition, seconds in sorted(builds.items(), key=lambda item: -item[1])[:3]:
        timings[f"index_{by_definition[definition]}_s"] = seconds
    t0 = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        for table, name, definition in sorted(constraints, key=lambda row: "UNIQUE" not in row[2]):
            conn.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
        for table in ("leads_lead", "leads_lead_tags"):  # the score cards are keyed by lead, not a sequence
            conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
    timings["constraints_s"] = time.perf_counter() - t0
    timings["seed_total_s"] = time.perf_counter() - started
    timings["seed_target_s"] = SEED_S_PER_MILLION * n / 1_000_000

    t0 = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        # The steady state of a live table: statistics, visibility map and hint bits set, no dirty backlog.
        conn.execute("VACUUM (ANALYZE)")
        conn.execute("CHECKPOINT")
    timings["vacuum_analyze_s"] = time.perf_counter() - t0
    return timings


# --- HTTP ---------------------------------------------------------------------------------------


@dataclass
class Reply:
    status: int
    ms: float
    queries: int | None
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


class Api:
    """One client connection with an API key. Gunicorn's sync workers close it after each answer and
    http.client reconnects, so every timing includes a (local) TCP connect, as a real client's would."""

    def __init__(self, port: int, key: str) -> None:
        self.port = port
        self.key = key
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def call(self, method: str, path: str, payload: Any = None) -> Reply:
        headers = {"Authorization": f"Api-Key {self.key}", "Accept": "application/json", "Connection": "keep-alive"}
        body = None
        if payload is not None:
            body = json.dumps(payload).encode()
            headers["Content-Type"] = "application/json"
        started = time.perf_counter()
        try:
            self.conn.request(method, path, body=body, headers=headers)
            response = self.conn.getresponse()
            data = response.read()
        except (ConnectionError, http.client.HTTPException):
            # A worker closed the connection between two requests: reconnect once and retry.
            self.conn.close()
            started = time.perf_counter()
            self.conn.request(method, path, body=body, headers=headers)
            response = self.conn.getresponse()
            data = response.read()
        elapsed = (time.perf_counter() - started) * 1000
        queries = response.getheader("X-DB-Queries")
        return Reply(response.status, elapsed, int(queries) if queries is not None else None, data)


def local_path(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + ("?" + parts.query if parts.query else "")


@dataclass
class Scenario:
    name: str
    what: str
    target_ms: float | None
    who: str = "admin"
    method: str = "GET"
    path: str = ""  # the request (one of them, for retrieve and create) replayed by EXPLAIN on a miss
    payload: dict[str, Any] | None = None
    samples: list[Reply] = field(default_factory=list)
    load_1min: float | None = None

    def ms(self) -> list[float]:
        return [s.ms for s in self.samples]

    def summary(self) -> dict[str, Any]:
        ms = sorted(self.ms())
        ok = [s for s in self.samples if 200 <= s.status < 300]
        queries = Counter(s.queries for s in self.samples)
        p95 = percentile(ms, 95)
        return {
            "what": self.what,
            "request": f"{self.method} {self.path}",
            "user": self.who,
            "n": len(ms),
            "errors": len(self.samples) - len(ok),
            "statuses": dict(Counter(s.status for s in self.samples)),
            "p50_ms": round(percentile(ms, 50), 2),
            "p95_ms": round(p95, 2),
            "max_ms": round(ms[-1], 2) if ms else None,
            "mean_ms": round(sum(ms) / len(ms), 2) if ms else None,
            "queries": {str(k): v for k, v in sorted(queries.items(), key=lambda kv: str(kv[0]))},
            "queries_mode": queries.most_common(1)[0][0] if queries else None,
            "target_p95_ms": self.target_ms,
            "load_1min_after": round(self.load_1min, 2) if self.load_1min is not None else None,
            "result": None
            if self.target_ms is None
            else ("PASS" if p95 <= self.target_ms and len(ok) == len(ms) else "MISS"),
        }


def percentile(sorted_values: list[float], pct: float) -> float:
    """Nearest-rank percentile."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(pct / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def measure(scenario: Scenario, call: Callable[[int], Reply], requests: int, warmup: int) -> Scenario:
    for k in range(warmup):
        call(-1 - k)
    for k in range(requests):
        scenario.samples.append(call(k))
    # Other work on the same cores shows up here: a high figure marks a figure to distrust.
    scenario.load_1min = os.getloadavg()[0]
    s = scenario.summary()
    log(
        f"  {scenario.name:<24} p50 {s['p50_ms']:>7.1f} ms  p95 {s['p95_ms']:>7.1f} ms  queries {s['queries']}  errors {s['errors']}"
    )
    if s["errors"]:
        bad = next(r for r in scenario.samples if not 200 <= r.status < 300)
        log(f"    first error {bad.status}: {bad.body[:300]!r}")
    return scenario


def walk(api: Api, first: str, pages: int) -> tuple[str, list[Reply]]:
    """Follow ``next`` from ``first`` until page ``pages``; return that page's URL and the replies on the way."""
    path, replies = first, []
    for _ in range(pages - 1):
        reply = api.call("GET", path)
        replies.append(reply)
        next_url = reply.json().get("next") if reply.status == 200 else None
        if not next_url:
            raise RuntimeError(f"no next page after {len(replies)} pages of {first} (status {reply.status})")
        path = local_path(next_url)
    return path, replies


def flush_broker() -> None:
    """Drop the pipeline tasks the creates enqueued (nobody consumes the bench broker)."""
    import redis

    redis.Redis.from_url(BROKER_URL).flushdb()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_gunicorn(url: str, port: int, logfile: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "DJANGO_DEBUG": "false",
        "LEADCRM_QUERY_COUNT_HEADER": "1",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        # As in production, a write only enqueues the pipeline (a Redis LPUSH on commit): no worker consumes
        # this broker, so a create measures the API, not a scoring run inside the request.
        "CELERY_BROKER_URL": BROKER_URL,
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "DJANGO_LOG_LEVEL": "WARNING",
        # The benchmark is one client sending thousands of requests a minute: not what throttling is for.
        "API_THROTTLE_USER": "1000000/min",
    }
    gunicorn = shutil.which("gunicorn", path=str(Path(PYTHON).parent)) or "gunicorn"
    with logfile.open("wb") as out:
        return subprocess.Popen(
            [gunicorn, "leadcrm.wsgi:application", "--workers", "2", "--bind", f"127.0.0.1:{port}", "--timeout", "120"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def wait_ready(proc: subprocess.Popen[bytes], api: Api, logfile: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {proc.returncode}:\n{logfile.read_text()[-2000:]}")
        try:
            if api.call("GET", "/api/v1/leads/?page_size=1").status == 200:
                return
        except OSError:
            api.conn.close()
        time.sleep(0.3)
    raise RuntimeError(f"gunicorn did not answer within 60 s:\n{logfile.read_text()[-2000:]}")


def stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()  # gunicorn's master stops its workers gracefully on SIGTERM
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# --- the OFFSET baseline ------------------------------------------------------------------------

LIST_COLUMNS = "leads_lead.*, leads_leadscore.*, users_user.*, users_team.*, leads_campaign.*"
LIST_FROM = (
    "FROM leads_lead JOIN leads_leadscore ON leads_leadscore.lead_id = leads_lead.id "
    "LEFT JOIN users_user ON users_user.id = leads_lead.owner_id "
    "LEFT JOIN users_team ON users_team.id = leads_lead.team_id "
    "LEFT JOIN leads_campaign ON leads_campaign.id = leads_lead.campaign_id"
)


def decode_cursor(path: str) -> dict[str, Any]:
    raw = parse_qs(urlsplit(path).query)["cursor"][0]
    return dict(json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))))


def search_fragments(url: str, n: int) -> dict[str, str]:
    """What a user types into the search box: part of a name, of an e-mail address, of a company domain."""
    with psycopg.connect(url) as conn:
        email = (
            scalar(conn, "SELECT email FROM leads_lead WHERE id = %s", (max(1, n // 3),))
            or "wei.wang.1@yunfan.example.com"
        )
    return {
        "name": "smith",  # a common Latin surname: about 1.7 % of the leads
        "name_cn": "王伟",  # two characters: too short for a trigram, about 0.3 % of the leads
        "email": email.split("@")[0],  # one lead
        "company": "yunfan.example",  # one company domain of ten: about 10 % of the leads
    }


def baseline(url: str, page: int, cursor: dict[str, Any], repeats: int) -> dict[str, Any]:
    """Page ``page`` of ORDER BY score DESC the old way (OFFSET + COUNT(*)) and the keyset way, in SQL only."""
    offset = (page - 1) * PAGE_SIZE
    offset_sql = f"SELECT {LIST_COLUMNS} {LIST_FROM} ORDER BY leads_leadscore.score DESC, leads_leadscore.lead_id DESC LIMIT {PAGE_SIZE} OFFSET {offset}"
    keyset_sql = (
        f"SELECT {LIST_COLUMNS} {LIST_FROM} WHERE (leads_leadscore.score, leads_leadscore.lead_id) < (%s, %s) "
        f"ORDER BY leads_leadscore.score DESC, leads_leadscore.lead_id DESC LIMIT {PAGE_SIZE + 1}"
    )
    timings: dict[str, list[float]] = {"offset_page_ms": [], "count_ms": [], "offset_total_ms": [], "keyset_sql_ms": []}
    with psycopg.connect(url) as conn:
        for k in range(repeats + 5):
            t0 = time.perf_counter()
            conn.execute(offset_sql).fetchall()
            t1 = time.perf_counter()
            conn.execute("SELECT count(*) FROM leads_lead").fetchone()
            t2 = time.perf_counter()
            conn.execute(keyset_sql, (cursor["k"], cursor["id"])).fetchall()
            t3 = time.perf_counter()
            conn.rollback()
            if k >= 5:  # warm-up
                timings["offset_page_ms"].append((t1 - t0) * 1000)
                timings["count_ms"].append((t2 - t1) * 1000)
                timings["offset_total_ms"].append((t2 - t0) * 1000)
                timings["keyset_sql_ms"].append((t3 - t2) * 1000)
        plans = {
            "offset": "\n".join(r[0] for r in conn.execute(f"EXPLAIN (ANALYZE, BUFFERS) {offset_sql}").fetchall()),
            "count": "\n".join(
                r[0] for r in conn.execute("EXPLAIN (ANALYZE, BUFFERS) SELECT count(*) FROM leads_lead").fetchall()
            ),
            "keyset": "\n".join(
                r[0]
                for r in conn.execute(
                    f"EXPLAIN (ANALYZE, BUFFERS) {keyset_sql}", (cursor["k"], cursor["id"])
                ).fetchall()
            ),
        }
    result: dict[str, Any] = {"page": page, "offset": offset, "repeats": repeats, "plans": plans}
    for name, values in timings.items():
        values.sort()
        result[name.replace("_ms", "_p50_ms")] = round(percentile(values, 50), 2)
        result[name.replace("_ms", "_p95_ms")] = round(percentile(values, 95), 2)
    return result


# --- why a scenario missed ----------------------------------------------------------------------

EXPLAIN_SCRIPT = """
import json, os, time
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
out = {}
for item in json.loads(os.environ["BENCH_EXPLAIN"]):
    client = Client(HTTP_AUTHORIZATION="Api-Key " + item["key"], HTTP_HOST="127.0.0.1")
    def send():
        if item["method"] == "POST":
            unique = time.time_ns()  # a fresh e-mail and phone, or dedupe turns the create into an update
            payload = dict(item["payload"], email=f"explain.{unique}@bench.example.com", phone=f"+86136{unique % 10**8:08d}")
            return client.post(item["path"], payload, content_type="application/json")
        return client.get(item["path"])
    send()
    with CaptureQueriesContext(connection) as ctx:
        t0 = time.perf_counter()
        response = send()
        elapsed = (time.perf_counter() - t0) * 1000
    queries = [{"ms": float(q["time"]) * 1000, "sql": q["sql"]} for q in ctx.captured_queries]
    entry = {"method": item["method"], "path": item["path"], "status": response.status_code,
             "in_process_ms": round(elapsed, 1), "sql_ms": round(sum(q["ms"] for q in queries), 1), "queries": queries}
    if item["method"] == "GET" and queries:
        slowest = max(queries, key=lambda q: q["ms"])
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + slowest["sql"])
            entry["plan"] = [row[0] for row in cursor.fetchall()]
    out[item["name"]] = entry
print(json.dumps(out))
"""


def explain(url: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    """Replay each request in-process (same key, same URL), capture its SQL, EXPLAIN ANALYZE the slowest query."""
    # Other people edit the tree while this runs: a replay with newer models than the schema proves nothing.
    check = subprocess.run(
        [PYTHON, "manage.py", "migrate", "--check"],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": url},
        capture_output=True,
        text=True,
    )
    if check.returncode != 0:
        reason = (
            "the code changed during the run (unapplied migrations); run again with --reuse to apply them and explain"
        )
        return {item["name"]: {"error": reason} for item in items}
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "DJANGO_LOG_LEVEL": "WARNING",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "CELERY_BROKER_URL": BROKER_URL,
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "BENCH_EXPLAIN": json.dumps(items),
    }
    done = subprocess.run(
        [PYTHON, "manage.py", "shell", "-c", EXPLAIN_SCRIPT],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        return {item["name"]: {"error": done.stderr[-2000:]} for item in items}
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


# --- main ---------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        "?",
    )
    mem_kb = next(
        (
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        ),
        0,
    )
    return {
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "ram_gb": round(mem_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "os": platform.platform(),
    }


def postgres_info(url: str) -> dict[str, Any]:
    names = ("server_version", "shared_buffers", "work_mem", "effective_cache_size", "random_page_cost", "jit")
    with psycopg.connect(url) as conn:
        info = {name: scalar(conn, f"SHOW {name}") for name in names}
        info["leads_table_size"] = scalar(conn, "SELECT pg_size_pretty(pg_total_relation_size('leads_lead'))")
    return info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--leads", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=200, help="Measured requests per scenario.")
    parser.add_argument("--warmup", type=int, default=20, help="Unmeasured requests per scenario first.")
    parser.add_argument("--reuse", action="store_true", help="Keep the database when it was seeded with --leads leads.")
    parser.add_argument("--deep-page", type=int, default=DEEP_PAGE, help="The deep page reached by following next.")
    args = parser.parse_args()
    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL)
    RESULTS.mkdir(parents=True, exist_ok=True)
    deep_page = args.deep_page
    report: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "leads": args.leads,
        "requests": args.requests,
        "deep_page": deep_page,
    }

    existing = database_lead_count(url) if args.reuse else None
    # A run's POSTs add leads, so a reused database holds a few more than it was seeded with.
    if existing is not None and args.leads <= existing < args.leads + 10_000:
        log(f"Reusing {url} ({args.leads:,} leads); applying any new migrations")
        manage(url, "migrate", "--noinput", "-v", "0")
        report["seed"] = {"reused": True}
    else:
        log(f"Creating {url} and migrating")
        t0 = time.perf_counter()
        recreate_database(url)
        manage(url, "migrate", "--noinput", "-v", "0")
        migrate_s = time.perf_counter() - t0
        log("Users, teams and role groups through users.services")
        t0 = time.perf_counter()
        people = json.loads(manage(url, "shell", "-c", PEOPLE_SCRIPT).strip().splitlines()[-1])
        people_s = time.perf_counter() - t0
        log(f"Seeding {args.leads:,} leads set-based")
        timings = seed(url, args.leads, people)
        report["seed"] = {
            "migrate_s": round(migrate_s, 1),
            "people_s": round(people_s, 1),
            **{k: round(v, 1) for k, v in timings.items()},
        }
        log("  " + ", ".join(f"{k} {v}" for k, v in report["seed"].items()))
    report["postgres"] = postgres_info(url)
    fragments = search_fragments(url, args.leads)

    users = {"admin": "bench_admin", "rep": "bench_rep0_0", "manager": "bench_manager0"}
    keys = {who: api_key(url, username) for who, username in users.items()}
    port = free_port()
    logfile = RESULTS / "gunicorn.log"
    proc: subprocess.Popen[bytes] | None = None
    scenarios: list[Scenario] = []
    deep: dict[str, str] = {}
    walks: dict[str, list[Reply]] = {}
    report["load_average"] = {"before_measuring": load_average()}
    try:
        log(f"gunicorn on 127.0.0.1:{port} (2 sync workers), log {logfile}")
        flush_broker()
        proc = start_gunicorn(url, port, logfile)
        apis = {who: Api(port, key) for who, key in keys.items()}
        wait_ready(proc, apis["admin"], logfile)
        n, warm = args.requests, args.warmup
        lst = "/api/v1/leads/"

        def run(scenario: Scenario, call: Callable[[int], Reply] | None = None) -> None:
            api = apis[scenario.who]
            scenarios.append(measure(scenario, call or (lambda _k: api.call(scenario.method, scenario.path)), n, warm))

        log(f"Measuring ({n} requests per scenario after {warm} warm-up requests)")
        run(Scenario("list_p1", "page 1, ?ordering=-score", LIST_P95_MS, path=f"{lst}?ordering=-score"))
        run(
            Scenario(
                "list_created_p1", "page 1, ?ordering=-created_at", LIST_P95_MS, path=f"{lst}?ordering=-created_at"
            )
        )
        for who, ordering, name in (
            ("admin", "-score", "list_deep"),
            ("admin", "-created_at", "list_deep_created"),
            ("rep", "-score", "rep_list_deep"),
        ):
            t0 = time.perf_counter()
            deep[name], walks[name] = walk(apis[who], f"{lst}?ordering={ordering}", deep_page)
            log(f"  walked {deep_page - 1} pages ({ordering}, {who}) in {time.perf_counter() - t0:.1f} s")
            what = f"page {deep_page}, ?ordering={ordering}, reached by following next"
            run(Scenario(name, what + (" (rep)" if who == "rep" else ""), LIST_P95_MS, who=who, path=deep[name]))
        for name, what, query in (
            ("list_2_filters", "two filters, default ordering (-created_at)", "stage=new&source=online_ads"),
            ("list_2_filters_score", "two filters, ?ordering=-score", "stage=new&source=online_ads&ordering=-score"),
            ("list_q_name", f"q={fragments['name']} (Latin name)", "q=" + quote(fragments["name"])),
            (
                "list_q_name_cn",
                f"q={fragments['name_cn']} (Chinese name, 2 characters)",
                "q=" + quote(fragments["name_cn"]),
            ),
            ("list_q_email", f"q={fragments['email']} (e-mail local part)", "q=" + quote(fragments["email"])),
            ("list_q_company", f"q={fragments['company']} (company domain)", "q=" + quote(fragments["company"])),
        ):
            run(Scenario(name, what, LIST_P95_MS, path=f"{lst}?{query}"))
        rng = random.Random(42)
        ids = [rng.randint(1, args.leads) for _ in range(n + warm)]
        run(
            Scenario("retrieve", "GET one lead (random ids)", None, path=f"{lst}{ids[0]}/"),
            lambda k: apis["admin"].call("GET", f"{lst}{ids[k]}/"),
        )
        stamp = int(time.time())

        def new_lead(k: int) -> dict[str, Any]:
            return {
                "name": f"压测线索 {stamp}-{k}",
                "email": f"bench.{stamp}.{k + warm}@bench.example.com",
                "phone": f"+86137{(stamp + k + warm) % 100_000_000:08d}",
                "company": "上海压测科技有限公司",
                "job_title": "IT经理",
                "industry": "SaaS",
                "region": "华东",
                "city": "上海",
                "source": "api",
                "attributes": {"plan": "pro", "employees": 120},
            }

        create = Scenario(
            "create", "POST a lead (JSON)", CREATE_P95_MS, method="POST", path=lst, payload=new_lead(-1000)
        )
        run(create, lambda k: apis["admin"].call("POST", lst, new_lead(k)))
        run(
            Scenario(
                "rep_list_p1",
                "page 1, ?ordering=-score as a rep (own + team pool)",
                LIST_P95_MS,
                who="rep",
                path=f"{lst}?ordering=-score",
            )
        )
        run(
            Scenario(
                "manager_list_p1",
                "page 1, ?ordering=-score as a manager",
                LIST_P95_MS,
                who="manager",
                path=f"{lst}?ordering=-score",
            )
        )
    finally:
        stop(proc)
        log("gunicorn stopped")
        flush_broker()
    report["load_average"]["after_measuring"] = load_average()

    results = {s.name: s.summary() for s in scenarios}
    # Queries per request must not grow with depth: page 1 vs page 1000 vs every page on the way.
    constancy: dict[str, Any] = {}
    for name, replies in walks.items():
        first = (
            "rep_list_p1"
            if name.startswith("rep_")
            else ("list_created_p1" if name.endswith("_created") else "list_p1")
        )
        on_way = Counter(r.queries for r in replies)
        modes = {results[first]["queries_mode"], results[name]["queries_mode"], on_way.most_common(1)[0][0]}
        walk_ms = sorted(r.ms for r in replies)
        constancy[name] = {
            "page1_mode": results[first]["queries_mode"],
            "deep_mode": results[name]["queries_mode"],
            "walk_queries": {str(k): v for k, v in on_way.items()},
            "walk_p50_ms": round(percentile(walk_ms, 50), 2),
            "walk_p95_ms": round(percentile(walk_ms, 95), 2),
            "result": "PASS" if len(modes) == 1 else "MISS",
        }
    report["scenarios"] = results
    report["queries_constant"] = constancy
    if "list_deep" in deep:
        log("OFFSET baseline through psycopg")
        base = baseline(url, deep_page, decode_cursor(deep["list_deep"]), repeats=max(20, args.requests // 4))
        keyset_http = results["list_deep"]["p50_ms"]
        base["keyset_http_p50_ms"] = keyset_http
        base["ratio_offset_sql_vs_keyset_http"] = round(base["offset_total_p50_ms"] / keyset_http, 1)
        base["ratio_offset_sql_vs_keyset_sql"] = round(base["offset_total_p50_ms"] / base["keyset_sql_p50_ms"], 1)
        report["baseline"] = base

    report["search_fragments"] = fragments
    misses = [sc for sc in scenarios if results[sc.name]["result"] == "MISS"]
    if misses:
        log(f"EXPLAIN ANALYZE for {len(misses)} missed scenario(s), replayed in-process")
        report["explain"] = explain(
            url,
            [
                {"name": sc.name, "key": keys[sc.who], "method": sc.method, "path": sc.path, "payload": sc.payload}
                for sc in misses
            ],
        )
        flush_broker()
        plans = RESULTS / "api_bench_plans.txt"
        plans.write_text(
            "\n\n".join(
                f"== {name}: {e.get('method')} {e.get('path')} — {e.get('in_process_ms')} ms in process, {len(e.get('queries', []))} queries\n"
                + "\n".join(f"  {q['ms']:8.1f} ms  {q['sql']}" for q in e.get("queries", []))
                + "\n\nslowest query's plan:\n"
                + "\n".join(e.get("plan", [e.get("error", "")]))
                for name, e in report["explain"].items()
            )
        )
        log(f"Wrote {plans}")
    print_report(report)
    out = RESULTS / "api_bench.json"
    out.write_text(json.dumps(report, indent=2, ensure_ascii=False))
    log(f"Wrote {out}")


PLAN_WORDS = (
    "Seq Scan",
    "Sort Method",
    "Unique",
    "Bitmap Heap Scan",
    "Index Scan using lead",
    "Filter:",
    "Execution Time",
)


def print_report(report: dict[str, Any]) -> None:
    m, pg = report["machine"], report["postgres"]
    print(f"\nleadcrm API benchmark — {report['leads']:,} leads, {report['requests']} requests per scenario")
    print(
        f"{m['cpus']} × {m['cpu']}, {m['ram_gb']} GB RAM; PostgreSQL {pg['server_version']} (shared_buffers {pg['shared_buffers']}, jit {pg['jit']}); leads table {pg['leads_table_size']}"
    )
    seed_info = report["seed"]
    if not seed_info.get("reused"):
        print(
            f"seed: {seed_info['seed_total_s']} s, target < {seed_info['seed_target_s']} s "
            f"{'PASS' if seed_info['seed_total_s'] < seed_info['seed_target_s'] else 'MISS'} (insert {seed_info['insert_s']} s, indexes {seed_info['indexes_s']} s, constraints {seed_info['constraints_s']} s); VACUUM ANALYZE {seed_info['vacuum_analyze_s']} s\n"
            f"slowest index builds: "
            + ", ".join(f"{k[6:-2]} {v} s" for k, v in seed_info.items() if k.startswith("index_"))
        )
    print(f"\n{'scenario':<24}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}  {'queries':<14}{'errors':>6}{'load':>6}  target")
    for name, s in report["scenarios"].items():
        target = f"p95 ≤ {s['target_p95_ms']:.0f} ms {s['result']}" if s["target_p95_ms"] else "—"
        queries = ",".join(f"{k}×{v}" for k, v in s["queries"].items())
        print(
            f"{name:<24}{s['p50_ms']:>9.1f}{s['p95_ms']:>9.1f}{s['max_ms']:>9.1f}  {queries:<14}{s['errors']:>6}{s['load_1min_after']:>6.1f}  {target}"
        )
    print("\nqueries per request across pages:")
    for name, c in report["queries_constant"].items():
        print(f"  {name:<22} page 1: {c['page1_mode']}, page {report['deep_page']}: {c['deep_mode']}, on the way: {c['walk_queries']} "
              f"(walk p50 {c['walk_p50_ms']} ms, p95 {c['walk_p95_ms']} ms)  {c['result']}")  # fmt: skip
    load = report.get("load_average", {})
    print(
        f"\nload average (1, 5, 15 min) before measuring {load.get('before_measuring')}, after {load.get('after_measuring')} on {m['cpus']} cores"
    )
    for name, e in report.get("explain", {}).items():
        if "error" in e:
            print(f"  why {name}: EXPLAIN failed: {e['error'][-300:]}")
            continue
        slowest = max(e["queries"], key=lambda q: q["ms"]) if e["queries"] else {"ms": 0.0}
        key_lines = [line.strip() for line in e.get("plan", []) if any(word in line for word in PLAN_WORDS)]
        print(
            f"  why {name}: {e['in_process_ms']} ms in process, SQL {e['sql_ms']} ms in {len(e['queries'])} queries, slowest {slowest['ms']:.0f} ms"
        )
        for line in key_lines[:4]:
            print(f"      {line[:150]}")
    if "baseline" in report:
        b = report["baseline"]
        print(
            f"\nOFFSET baseline, page {b['page']} (OFFSET {b['offset']}) by -score, SQL only: page {b['offset_page_p50_ms']} ms + COUNT(*) "
            f"{b['count_p50_ms']} ms = {b['offset_total_p50_ms']} ms p50 (p95 {b['offset_total_p95_ms']} ms)\n"
            f"keyset page {b['page']}: SQL {b['keyset_sql_p50_ms']} ms, over HTTP {b['keyset_http_p50_ms']} ms p50\n"
            f"ratio OFFSET/keyset: {b['ratio_offset_sql_vs_keyset_sql']}× SQL-to-SQL, {b['ratio_offset_sql_vs_keyset_http']}× OFFSET SQL vs keyset over HTTP"
        )


if __name__ == "__main__":
    main()
