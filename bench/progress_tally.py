"""Campaign progress at a province's scale: the tallies' refresh and the reads (PostgreSQL).

    .venv/bin/python bench/progress_tally.py                      # 1,000,000 students, ≈ 10 min
    .venv/bin/python bench/progress_tally.py --students 100000    # quick run
    .venv/bin/python bench/progress_tally.py --reuse              # the last run's data again

Recreates the database `registry_bench_progress` (127.0.0.1:5432, user postgres), applies the
migrations and seeds, with plain SQL, one province (440000: 10 cities × 10 counties, 30 schools a
county, 8 classes a school) with `--students` students, and three live campaigns each with a form
for every student (half returned on paper), a photo for 60 % of them (verdicts mixed), change
requests with their current review steps for 1 % (a third overdue) and problem records for 0.5 %.
The database's triggers mark every school as the rows go in, as they would in production.

Then it measures, and prints (and writes to bench/out/progress_tally.json):
1. the full refresh of every marked school (what the nightly recount costs), in schools a second;
2. one event (a photo's verdict written) until it shows in the counts: the refresh of one school;
3. the reads the API makes for a node (its counts, the first page of its children and the as-of)
   for the province, one county and one school, from `--clients` concurrent tasks on as many
   connections (the API's read lane), `--calls` each: p50/p95/p99 in ms;
4. for comparison, the province's counts computed live from the source tables (the design not
   taken), once.
It does not go through HTTP (authentication and JSON add the same to every call: see
bench/http_auth.py for those figures).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

DB_NAME = os.environ.get("BENCH_DB_NAME", "registry_bench_progress")
PG = "postgresql://postgres@127.0.0.1:5432"
os.environ["DATABASE_URL"] = f"{PG}/{DB_NAME}"
os.environ.setdefault("DB_POOL_SIZE", "16")
os.environ.setdefault("SEED_DEMO", "false")
os.environ.setdefault("SECOND_FACTOR_REQUIRED", "false")

import sys  # noqa: E402

import asyncpg  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

OUT = Path(__file__).resolve().parent / "out"
PROVINCE = "440000"
CITIES, COUNTIES, SCHOOLS, CLASSES = 10, 10, 30, 8


async def recreate() -> None:
    admin = await asyncpg.connect(f"{PG}/postgres")
    try:
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", DB_NAME
        )
        await admin.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}"')
        await admin.execute(f'CREATE DATABASE "{DB_NAME}"')
    finally:
        await admin.close()


SEED = """
INSERT INTO region (code, name, level, parent_code) VALUES ('440000', '广东省', 'province', NULL);
INSERT INTO region (code, name, level, parent_code)
  SELECT '44' || lpad(c::text, 2, '0') || '00', '市' || c, 'city', '440000'
  FROM generate_series(1, {cities}) c;
INSERT INTO region (code, name, level, parent_code)
  SELECT '44' || lpad(c::text, 2, '0') || lpad(k::text, 2, '0'), '县' || c || '-' || k, 'county',
         '44' || lpad(c::text, 2, '0') || '00'
  FROM generate_series(1, {cities}) c, generate_series(1, {counties}) k;
INSERT INTO school (code, name, region_code, administered_by)
  SELECT 'S' || lpad(n::text, 8, '0'), '学校' || n,
         (SELECT code FROM region WHERE level = 'county' ORDER BY code
          OFFSET (n - 1) / {schools} LIMIT 1), 'county'
  FROM generate_series(1, {cities} * {counties} * {schools}) n;
INSERT INTO school_class (school, region_code, grade, name)
  SELECT s.id, s.region_code, k, k || '班' FROM school s, generate_series(1, {classes}) k;
INSERT INTO account (phone, name, role, status, password_hash, password_changed_at,
                     must_change_password, scope_kind, created_at, last_active_at)
  VALUES ('13800000000', 'bench', 'sysadmin', 'active', 'x', now(), false, 'national', now(),
          now());
CREATE TEMP TABLE class_no AS SELECT id, school, region_code,
  row_number() OVER (ORDER BY id) - 1 AS n FROM school_class;
INSERT INTO student (registry_number, school, school_class, region_code, status, name, fields,
                     created_at, updated_at)
  SELECT 'B' || i, k.school, k.id, k.region_code, 'enrolled', '学生' || i, '{{}}', now(), now()
  FROM generate_series(1, {students}) i
  JOIN class_no k ON k.n = i % (SELECT count(*) FROM class_no);
INSERT INTO campaign (region_code, name, starts_at, ends_at, forms_open, corrections_open,
                      created_by, created_at)
  SELECT '440000', '核查' || c, now() - interval '20 days', now() + interval '10 days' * c,
         true, true, 1, now() FROM generate_series(1, 3) c;
INSERT INTO issued_form (form_id, campaign, student, school, school_class, region_code, snapshot,
                         registration_code_hash, registration_uses, issued_by, issued_at,
                         paper_returned_at)
  SELECT c.id || '-' || s.id, c.id, s.id, s.school, s.school_class, s.region_code, '{{}}',
         md5(c.id || '-' || s.id), 0, 1, now() - (s.id % 14) * interval '1 day',
         CASE WHEN s.id % 2 = 0 THEN now() - (s.id % 7) * interval '1 day' END
  FROM campaign c, student s;
INSERT INTO upload (student, campaign, form, school, school_class, region_code, uploaded_by,
                    on_behalf, storage_key, content_hash, width, height, status,
                    check_attempts, created_at)
  SELECT f.student, f.campaign, f.id, f.school, f.school_class, f.region_code, 1, false,
         'k' || f.id, md5(f.id::text), 1200, 1600,
         (ARRAY['matches','matches','matches','differs','corrections_written','unsigned',
                'retake','uploaded'])[1 + f.student % 8],
         0, now() - (f.student % 10) * interval '1 day'
  FROM issued_form f WHERE f.student % 10 < 6;
INSERT INTO change_request (student, school, school_class, region_code, field_code, chain,
                            old_value, new_value, reason, source, state, round, author,
                            created_at, updated_at)
  SELECT s.id, s.school, s.school_class, s.region_code, 'health', 'ordinary', '1', '2', '',
         'registrar', 'in_review', 1, 1, now() - interval '5 days', now()
  FROM student s WHERE s.id % 100 = 0;
INSERT INTO review_step (subject_kind, subject_id, round, position, kind, role, student, school,
                         school_class, region_code, state, became_current_at, due_on, reason,
                         created_at)
  SELECT 'change_request', r.id, 1, 1, 'approve', 'school_leader', r.student, r.school,
         r.school_class, r.region_code, 'current', now() - interval '5 days',
         CASE WHEN r.id % 3 = 0 THEN current_date - 1 ELSE current_date + 5 END, '',
         now() - interval '5 days'
  FROM change_request r;
INSERT INTO problem_case (student, school, school_class, region_code, kind, source, state,
                          detail, reason, created_at, updated_at)
  SELECT s.id, s.school, s.school_class, s.region_code, 'id_invalid', 'local', 'open', '', '',
         now(), now()
  FROM student s WHERE s.id % 200 = 0;
"""


async def seed(students: int) -> dict[str, float]:
    conn = await asyncpg.connect(os.environ["DATABASE_URL"])
    timings: dict[str, float] = {}
    try:
        sql = SEED.format(
            cities=CITIES, counties=COUNTIES, schools=SCHOOLS, classes=CLASSES, students=students
        )
        for statement in [s.strip() for s in sql.split(";\n") if s.strip()]:
            started = time.perf_counter()
            await conn.execute(statement)
            name = " ".join(statement.split()[:3])
            timings[name] = timings.get(name, 0.0) + time.perf_counter() - started
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    return timings


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


async def main(args: argparse.Namespace) -> dict[str, Any]:
    if not args.reuse:
        await recreate()
    from backend.config import get_settings
    from backend.db import close_pool, open_pool
    from backend.migrate import migrate

    await migrate()
    figures: dict[str, Any] = {"students": args.students}
    if not args.reuse:
        started = time.perf_counter()
        figures["seed_seconds"] = await seed(args.students)
        figures["seed_total_s"] = round(time.perf_counter() - started, 1)
        print(f"seeded in {figures['seed_total_s']} s")

    settings = get_settings()
    await open_pool(settings)
    try:
        from backend.db import fetch_row
        from backend.parents.tables import Upload
        from backend.reports import progress, progress_refresh

        if args.reuse:  # the seed stays; the nightly recount's marks, as they would be
            await progress_refresh.mark_live_regions()
        marked = await fetch_row("SELECT COUNT(DISTINCT school_id) AS n FROM progress_mark")
        started = time.perf_counter()
        counted = await progress_refresh.refresh(budget_seconds=3600)
        full = time.perf_counter() - started
        figures["full_refresh"] = {
            "schools_marked": marked["n"] if marked else None,
            "schools_counted": counted,
            "seconds": round(full, 1),
            "schools_per_s": round(counted / full, 1),
        }
        print("full refresh", figures["full_refresh"])

        # One event until it shows: a photo's verdict written, then the refresh that counts it.
        one = (
            await Upload.select(Upload.id, Upload.school).where(Upload.status == "uploaded").first()
        )
        assert one is not None
        event_times = []
        for _ in range(5):
            t0 = time.perf_counter()
            await Upload.update({Upload.status: "matches"}).where(Upload.id == one["id"])
            await progress_refresh.refresh()
            event_times.append((time.perf_counter() - t0) * 1000)
            await Upload.update({Upload.status: "uploaded"}).where(Upload.id == one["id"])
            await progress_refresh.refresh()
        figures["one_school_refresh_ms"] = {
            "median": round(statistics.median(event_times), 1),
            "max": round(max(event_times), 1),
        }
        print("one event to counted (ms)", figures["one_school_refresh_ms"])

        campaign = (await fetch_row("SELECT MIN(id) AS id FROM campaign"))["id"]  # type: ignore[index]
        county = (await fetch_row("SELECT MIN(code) AS c FROM region WHERE level = 'county'"))["c"]  # type: ignore[index]
        school = await fetch_row("SELECT id, name, region_code FROM school ORDER BY id LIMIT 1")
        assert school is not None
        nodes = {
            "province": progress.Node(progress.NodeLevel.province, "广东省", PROVINCE),
            "county": progress.Node(progress.NodeLevel.county, county, county),
            "school": progress.Node(
                progress.NodeLevel.school, school["name"], school["region_code"], school["id"]
            ),
        }

        async def one_call(node: progress.Node) -> float:
            t0 = time.perf_counter()
            await progress.node_counts(campaign, node)
            await progress.children(campaign, node, 50, 0)
            await progress.as_of(node)
            return (time.perf_counter() - t0) * 1000

        figures["reads_ms"] = {}
        for name, node in nodes.items():
            for _ in range(3):
                await one_call(node)  # warm
            latencies: list[float] = []

            async def client(node: progress.Node = node, out: list[float] = latencies) -> None:
                for _ in range(args.calls):
                    out.append(await one_call(node))

            t0 = time.perf_counter()
            await asyncio.gather(*(client() for _ in range(args.clients)))
            wall = time.perf_counter() - t0
            figures["reads_ms"][name] = {
                "p50": round(pct(latencies, 50), 1),
                "p95": round(pct(latencies, 95), 1),
                "p99": round(pct(latencies, 99), 1),
                "calls_per_s": round(len(latencies) / wall, 1),
            }
            print(name, figures["reads_ms"][name])

        # The design not taken: the province's counts live from the sources.
        t0 = time.perf_counter()
        await fetch_row(
            "SELECT COUNT(*) AS forms, COUNT(paper_returned_at) AS returned FROM issued_form "
            "WHERE campaign = {} AND region_code >= '440000' AND region_code <= '449999' "
            "AND superseded_at IS NULL",
            campaign,
        )
        await fetch_row(
            "SELECT status, COUNT(*) FROM (SELECT status, ROW_NUMBER() OVER (PARTITION BY "
            "student ORDER BY COALESCE(last_sent_at, created_at) DESC, id DESC) AS rn "
            "FROM upload WHERE campaign = {} AND region_code >= '440000' "
            "AND region_code <= '449999') l WHERE rn = 1 GROUP BY status",
            campaign,
        )
        figures["live_province_ms"] = round((time.perf_counter() - t0) * 1000, 1)
        print("live province counts (ms)", figures["live_province_ms"])
    finally:
        await close_pool()
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--students", type=int, default=1_000_000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument(
        "--reuse", action="store_true", help="keep the database of the last run (no seeding)"
    )
    arguments = parser.parse_args()
    result = asyncio.run(main(arguments))
    OUT.mkdir(exist_ok=True)
    (OUT / "progress_tally.json").write_text(json.dumps(result, indent=2, ensure_ascii=False))
