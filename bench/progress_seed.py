"""The 1,000,000-student province of `bench/progress.py`, written in SQL.

Every row is made by PostgreSQL (`INSERT … SELECT … FROM generate_series`), never by the ORM
row by row: the point is a realistic *size and shape* for the progress counts, in minutes.
The shape (one province, `--cities` cities of `--counties` counties each, `--schools`
schools, `--classes` classes per school, `--students` students):

- the demo data (`backend.seed.seed_demo`, run first: its logins and its open campaign) is
  kept; its county 西湖区 (330106) is one of the counties and gets bench schools too;
- 3 campaigns of the province: two closed ones (about 13 and 7 months ago) and the demo's
  open one, moved to have started 20 days ago so the daily series has days to show;
- issued forms: every student in the closed campaigns, ~92 % in the open one;
- uploads (one per form that has one) with the verdict as their status: ~88 % of the forms
  of a closed campaign, ~55 % of the open one's; among them ~72 % `matches` and the rest
  spread over every other verdict and `check_failed` (see `UPLOAD_MIX`); none waits for its
  check (`uploaded`, `checking`): the worker's sweeper would run those checks, on photos that
  are not in the storage, all through the measures (`settle_uploads`);
- correction drafts, one per `corrections_written` upload of the open campaign;
- change requests (~4 % of the students in the open campaign, ~2 % in each closed one),
  each with its review steps (enter, then the county's review): pending at either step,
  some overdue (due date past), entered, applied, rejected, returned;
- problem records (~1.5 % of the students) in every state;
- if the issued forms have the paper-return columns (`paper_returned_at`,
  `paper_returned_by`), ~80 % of a closed campaign's forms and ~40 % of the open one's are
  ticked.

Which rows get what is decided by a hash of the row's id, so a reseed gives the same data.
Upload checks (`upload_check`, the reader's report) are not written: the upload's status
carries its verdict. Snapshots print only the name and the ID number.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any

import asyncpg

# status, share of the uploads in per mille (cumulative bounds are built from this)
UPLOAD_MIX: tuple[tuple[str, int], ...] = (
    ("matches", 720),
    ("differs", 60),
    ("corrections_written", 60),
    ("unsigned", 40),
    ("undated", 20),
    ("retake", 60),
    ("record_changed", 10),
    ("form_superseded", 10),
    ("not_this_form", 10),
    ("check_failed", 10),
)
assert sum(share for _, share in UPLOAD_MIX) == 1000

# A stable pseudo-random number in [0, 1000) per (row id, salt): PostgreSQL's own seeded hash,
# so that two salts on one row are independent.
H = "(abs(hashint8extended(({id})::bigint, {salt})) % 1000)::int"


def h(column: str, salt: int) -> str:
    return H.format(id=column, salt=salt)


@dataclass(frozen=True)
class Shape:
    students: int = 1_000_000
    cities: int = 11
    counties: int = 8  # per city
    schools: int = 2_000
    classes: int = 15  # per school

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


Log = Callable[[str], None]

# The big tables lose their secondary indexes during the load and get them back after:
# building an index once is several times faster than maintaining it row by row.
BULK_TABLES = ("student", "issued_form", "upload", "change_request", "review_step")

SEED_TABLE = """
CREATE TABLE IF NOT EXISTS bench_seed (
    key text PRIMARY KEY, shape jsonb NOT NULL, seconds jsonb NOT NULL, at timestamptz NOT NULL
)"""


async def seeded_shape(conn: asyncpg.Connection) -> dict[str, Any] | None:
    exists = await conn.fetchval("SELECT to_regclass('bench_seed') IS NOT NULL")
    if not exists:
        return None
    row = await conn.fetchrow("SELECT shape, seconds FROM bench_seed WHERE key = 'progress'")
    if row is None:
        return None
    import json

    return {"shape": json.loads(row["shape"]), "seconds": json.loads(row["seconds"])}


async def seed(conn: asyncpg.Connection, shape: Shape, log: Log) -> dict[str, float]:
    """Writes the province (the demo data must be there). Returns seconds per phase."""
    timings: dict[str, float] = {}

    async def phase(name: str, step: Callable[[], Awaitable[Any]]) -> None:
        started = time.perf_counter()
        await step()
        timings[name] = round(time.perf_counter() - started, 1)
        log(f"seed: {name} in {timings[name]:.1f} s")

    ids = await conn.fetchrow(
        """SELECT (SELECT id FROM account WHERE phone = '13900000001') AS province,
                  (SELECT id FROM account WHERE phone = '13900000005') AS registrar,
                  (SELECT id FROM account WHERE phone = '13900000007') AS parent,
                  (SELECT id FROM account WHERE phone = '13900000003') AS reviewer"""
    )
    if ids is None or None in ids.values():
        raise RuntimeError("the demo accounts are missing: seed the demo first")
    await conn.execute("SET synchronous_commit = off")
    await conn.execute("SET maintenance_work_mem = '256MB'")
    await conn.execute("SET work_mem = '64MB'")

    saved: list[str] = []

    async def drop_indexes() -> None:
        rows = await conn.fetch(
            """SELECT i.indexname, i.indexdef FROM pg_indexes i
               JOIN pg_class c ON c.relname = i.indexname
               LEFT JOIN pg_constraint k ON k.conindid = c.oid
               WHERE i.schemaname = 'public' AND i.tablename = ANY($1::text[])
                 AND k.oid IS NULL""",
            list(BULK_TABLES),
        )
        for row in rows:
            saved.append(row["indexdef"])
            await conn.execute(f'DROP INDEX "{row["indexname"]}"')

    async def rebuild_indexes() -> None:
        for definition in saved:
            await conn.execute(definition)

    await phase("drop secondary indexes", drop_indexes)
    await phase("regions, schools, classes", lambda: _tree(conn, shape))
    await phase(f"{shape.students:,} students", lambda: _students(conn, shape))
    await phase("3 campaigns", lambda: _campaigns(conn, ids["province"]))
    await phase("issued forms", lambda: _forms(conn, ids["registrar"]))
    await phase("uploads", lambda: _uploads(conn, ids["parent"]))
    await phase("correction drafts", lambda: _drafts(conn, ids["registrar"]))
    await phase("change requests and review steps", lambda: _requests(conn, ids))
    await phase("problem records", lambda: _problems(conn))
    await phase("paper returns", lambda: tick_paper(conn, ids["registrar"]))
    await phase("rebuild indexes", rebuild_indexes)
    await phase("vacuum analyze", lambda: conn.execute("VACUUM ANALYZE"))
    return timings


async def _tree(conn: asyncpg.Connection, shape: Shape) -> None:
    await conn.execute(
        """INSERT INTO region (code, name, level, parent_code)
           SELECT '33' || lpad(c::text, 2, '0') || '00', '基准市' || c, 'city', '330000'
           FROM generate_series(1, $1::int) c
           ON CONFLICT (code) DO NOTHING""",
        shape.cities,
    )
    await conn.execute(
        """INSERT INTO region (code, name, level, parent_code)
           SELECT '33' || lpad(c::text, 2, '0') || lpad(k::text, 2, '0'),
                  '基准市' || c || '第' || k || '区', 'county',
                  '33' || lpad(c::text, 2, '0') || '00'
           FROM generate_series(1, $1::int) c, generate_series(1, $2::int) k
           ON CONFLICT (code) DO NOTHING""",
        shape.cities,
        shape.counties,
    )
    await conn.execute(
        """CREATE TEMP TABLE bench_county AS
           SELECT (row_number() OVER (ORDER BY code) - 1)::int AS n, code FROM region
           WHERE level = 'county' AND code LIKE '33%'"""
    )
    counties = await conn.fetchval("SELECT count(*) FROM bench_county")
    await conn.execute(
        """INSERT INTO school (code, name, region_code, administered_by)
           SELECT '9' || lpad(i::text, 9, '0'),
                  '基准' || CASE WHEN i % 3 = 0 THEN '中学' ELSE '小学' END || i, c.code, 'county'
           FROM generate_series(0, $1::int - 1) i JOIN bench_county c ON c.n = i % $2::int""",
        shape.schools,
        counties,
    )
    await conn.execute(
        """INSERT INTO school_class (school, region_code, grade, name)
           SELECT s.id, s.region_code, 1 + k % 9, (1 + k % 9) || '年级(' || (1 + k / 9) || ')班'
           FROM school s, generate_series(0, $1::int - 1) k WHERE s.code LIKE '9%'""",
        shape.classes,
    )


async def _students(conn: asyncpg.Connection, shape: Shape) -> None:
    await conn.execute(
        """CREATE TEMP TABLE bench_class AS
           SELECT (row_number() OVER (ORDER BY k.id) - 1)::int AS n, k.id, k.school, k.region_code
           FROM school_class k JOIN school s ON s.id = k.school WHERE s.code LIKE '9%'"""
    )
    await conn.execute("CREATE INDEX ON bench_class (n)")
    classes = await conn.fetchval("SELECT count(*) FROM bench_class")
    # ID numbers: county + birth date + a sequence + a check character (not a valid check
    # digit: no check runs over them here). Unique per j, so per school too.
    await conn.execute(
        """INSERT INTO student (registry_number, school, school_class, region_code, status,
                                name, id_number, fields, created_at, updated_at)
           SELECT 'G' || x.idn, c.school, c.id, c.region_code, 'enrolled', x.nm, x.idn,
                  jsonb_build_object(
                      'name', x.nm, 'sex', (1 + j % 2)::text, 'birth_date', x.born::text,
                      'ethnicity', '01', 'nationality', 'CN', 'id_type', '1', 'id_number', x.idn,
                      'household_address', '浙江省基准市' || (j % 97) || '号',
                      'current_address', '浙江省基准市' || (j % 89) || '号' || (j % 7) || '室',
                      'phone', '138' || lpad((j % 100000000)::text, 8, '0'),
                      'guardian1_name', left(x.nm, 1) || '父', 'guardian1_relation', '1',
                      'guardian1_phone', '139' || lpad((j % 100000000)::text, 8, '0')),
                  now() - interval '400 days', now() - interval '400 days'
           FROM generate_series(0, $1::int - 1) j
           JOIN bench_class c ON c.n = j % $2::int
           CROSS JOIN LATERAL (
               SELECT date '2008-09-01' + (j % 4000) AS born,
                      (ARRAY['王','李','张','刘','陈','杨','赵','黄','周','吴','徐','孙'])
                      [1 + j % 12]
                      || (ARRAY['子涵','浩然','欣怡','宇轩','梓萱','一诺','俊杰','雨桐','思远',
                                '佳怡','明轩','诗涵'])[1 + (j / 12) % 12] AS nm,
                      c.region_code || to_char(date '2008-09-01' + (j % 4000), 'YYYYMMDD')
                      || lpad(((j / 4000) % 1000)::text, 3, '0') || 'X' AS idn
           ) x""",
        shape.students,
        classes,
    )


async def _campaigns(conn: asyncpg.Connection, province: int) -> None:
    # The demo's open campaign started 20 days ago (so the series has days), and two closed
    # ones before it; campaigns of one region never overlap.
    await conn.execute(
        """UPDATE campaign SET starts_at = starts_at - interval '20 days'
           WHERE region_code = '330000' AND closed_at IS NULL"""
    )
    await conn.execute(
        """INSERT INTO campaign (region_code, name, starts_at, ends_at, forms_open,
                                 corrections_open, created_by, created_at, closed_at)
           VALUES ('330000', '2025年秋季学期数据质量核查', now() - interval '400 days',
                   now() - interval '370 days', false, false, $1, now() - interval '401 days',
                   NULL),
                  ('330000', '2026年春季学期数据质量核查', now() - interval '210 days',
                   now() - interval '180 days', false, false, $1, now() - interval '211 days',
                   NULL)""",
        province,
    )
    await conn.execute(
        """CREATE TEMP TABLE bench_campaign AS
           SELECT id, starts_at, LEAST(ends_at, now()) AS until, closed_at IS NULL
                  AND ends_at > now() AS open
           FROM campaign WHERE region_code = '330000'"""
    )


async def _forms(conn: asyncpg.Connection, registrar: int) -> None:
    # Closed campaigns: every student; the open one: ~92 %. Issued over the first 10 days.
    await conn.execute(
        f"""INSERT INTO issued_form (form_id, campaign, student, school, school_class,
                                    region_code, snapshot, registration_code_hash,
                                    registration_uses, issued_by, issued_at)
           SELECT 'B' || k.id || '-' || s.id, k.id, s.id, s.school, s.school_class,
                  s.region_code, jsonb_build_object('name', s.name, 'id_number', s.id_number),
                  md5(k.id || ':' || s.id) || md5(s.id || ':' || k.id), 0, $1,
                  k.starts_at + ((s.school_class % 10) || ' days')::interval
                             + ((s.id % 600) || ' minutes')::interval
           FROM student s CROSS JOIN bench_campaign k
           WHERE s.school IN (SELECT id FROM school WHERE code LIKE '9%')
             AND (NOT k.open OR {h("s.id", 1)} < 920)""",
        registrar,
    )


async def _uploads(conn: asyncpg.Connection, parent: int) -> None:
    bounds, low = [], 0
    for status, share in UPLOAD_MIX:
        bounds.append(f"WHEN {h('f.id', 3)} < {low + share} THEN '{status}'")
        low += share
    case = "CASE " + " ".join(bounds) + " END"
    await conn.execute(
        f"""INSERT INTO upload (student, campaign, form, school, school_class, region_code,
                               uploaded_by, on_behalf, storage_key, content_hash, width, height,
                               status, check_attempts, created_at)
           SELECT f.student, f.campaign, f.id, f.school, f.school_class, f.region_code,
                  $1, {h("f.id", 4)} < 300, 'photos/bench/' || f.id || '.jpg',
                  md5(f.id::text) || md5(f.form_id), 3000, 4000, {case},
                  CASE WHEN {case} = 'check_failed' THEN 3 ELSE 1 END,
                  LEAST(k.until - interval '1 minute',
                        f.issued_at + (({h("f.id", 5)} % 240) || ' hours')::interval)
           FROM issued_form f JOIN bench_campaign k ON k.id = f.campaign
           WHERE {h("f.id", 2)} < CASE WHEN k.open THEN 550 ELSE 880 END""",
        parent,
    )


async def _drafts(conn: asyncpg.Connection, registrar: int) -> None:
    await conn.execute(
        f"""INSERT INTO correction_draft (upload, student, school, school_class, region_code,
                                         field_code, crop_key, state, decided_by, decided_at,
                                         created_at)
           SELECT u.id, u.student, u.school, u.school_class, u.region_code,
                  (ARRAY['name','current_address','phone','guardian1_phone'])[1 + u.id % 4],
                  'crops/bench/' || u.id || '.png', d.state,
                  CASE WHEN d.state = 'draft' THEN NULL ELSE $1::int END,
                  CASE WHEN d.state = 'draft' THEN NULL ELSE u.created_at + interval '1 day' END,
                  u.created_at
           FROM upload u JOIN bench_campaign k ON k.id = u.campaign AND k.open
           CROSS JOIN LATERAL (SELECT CASE WHEN {h("u.id", 6)} < 400 THEN 'draft'
                                           WHEN {h("u.id", 6)} < 900 THEN 'legible'
                                           ELSE 'illegible' END AS state) d
           WHERE u.status = 'corrections_written'""",
        registrar,
    )


async def _requests(conn: asyncpg.Connection, ids: Any) -> None:
    """Change requests with their two steps: the school's registrar enters (录入), then the
    county reviews (审核). The open campaign's requests are in every state; the closed
    campaigns' are settled (applied or rejected)."""
    # state by a hash r of the student: open campaign (~4 % of students) /
    # closed (~2 %, settled)
    await conn.execute(
        f"""CREATE TEMP TABLE bench_request AS
           SELECT s.id AS student, s.school, s.school_class, s.region_code, s.name,
                  k.id AS campaign,
                  k.open, k.starts_at + (({h("s.id", 7)} % 18) || ' days')::interval
                                      + (({h("s.id", 8)} % 1440) || ' minutes')::interval AS at,
                  CASE WHEN NOT k.open THEN
                           CASE WHEN {h("s.id", 9)} < 850 THEN 'applied' ELSE 'rejected' END
                       WHEN {h("s.id", 9)} < 300 THEN 'at_enter'
                       WHEN {h("s.id", 9)} < 600 THEN 'at_review'
                       WHEN {h("s.id", 9)} < 880 THEN 'applied'
                       WHEN {h("s.id", 9)} < 940 THEN 'rejected'
                       WHEN {h("s.id", 9)} < 970 THEN 'returned'
                       ELSE 'withdrawn' END AS phase
           FROM student s CROSS JOIN bench_campaign k
           WHERE s.school IN (SELECT id FROM school WHERE code LIKE '9%')
             AND {h("s.id + k.id * 1000003", 10)} < CASE WHEN k.open THEN 40 ELSE 20 END"""
    )
    await conn.execute(
        """ALTER TABLE bench_request ADD COLUMN request int;
           UPDATE bench_request SET at = LEAST(at, now() - interval '1 hour')"""
    )
    await conn.execute(
        """WITH made AS (
             INSERT INTO change_request (student, school, school_class, region_code, field_code,
                    chain, old_value, new_value, reason, source, state, round, author,
                    entered_at, applied_at, created_at, updated_at)
             SELECT r.student, r.school, r.school_class, r.region_code, 'name', 'key_data',
                    r.name, r.name || '改', '户口簿姓名已变更',
                    CASE WHEN r.student % 3 = 0 THEN 'parent' ELSE 'registrar' END,
                    CASE r.phase WHEN 'at_enter' THEN 'in_review' WHEN 'at_review' THEN 'in_review'
                                 ELSE r.phase END,
                    1, $1,
                    CASE WHEN r.phase IN ('at_review', 'applied', 'rejected')
                         THEN r.at + interval '2 days' END,
                    CASE WHEN r.phase = 'applied' THEN r.at + interval '5 days' END,
                    r.at, r.at + interval '5 days'
             FROM bench_request r
             RETURNING id, student, created_at)
           UPDATE bench_request r SET request = made.id
           FROM made WHERE made.student = r.student AND made.created_at = r.at""",
        ids["registrar"],
    )
    # the enter step (position 1) and the county's review (position 2)
    await conn.execute(
        """INSERT INTO review_step (subject_kind, subject_id, round, position, kind, role,
                  seat_school, seat_class, seat_region, student, school, school_class,
                  region_code, state, became_current_at, due_on, decided_by, decided_at,
                  reason, created_at)
           SELECT 'change_request', r.request, 1, 1, 'enter', 'registrar', r.school, NULL, NULL,
                  r.student, r.school, r.school_class, r.region_code,
                  CASE r.phase WHEN 'at_enter' THEN 'current' WHEN 'returned' THEN 'sent_back'
                               WHEN 'withdrawn' THEN 'cancelled' ELSE 'approved' END,
                  r.at, ((r.at AT TIME ZONE 'Asia/Shanghai')::date + 7),
                  CASE WHEN r.phase IN ('at_enter', 'withdrawn') THEN NULL ELSE $1::int END,
                  CASE WHEN r.phase IN ('at_enter', 'withdrawn') THEN NULL
                       ELSE r.at + interval '2 days' END,
                  '', r.at
           FROM bench_request r""",
        ids["registrar"],
    )
    await conn.execute(
        """INSERT INTO review_step (subject_kind, subject_id, round, position, kind, role,
                  seat_school, seat_class, seat_region, student, school, school_class,
                  region_code, state, became_current_at, due_on, decided_by, decided_at,
                  reason, created_at)
           SELECT 'change_request', r.request, 1, 2, 'review', 'county_reviewer', NULL, NULL,
                  r.region_code, r.student, r.school, r.school_class, r.region_code,
                  CASE r.phase WHEN 'at_review' THEN 'current' WHEN 'applied' THEN 'approved'
                               WHEN 'rejected' THEN 'rejected' WHEN 'at_enter' THEN 'waiting'
                               WHEN 'returned' THEN 'waiting' ELSE 'cancelled' END,
                  CASE WHEN r.phase IN ('at_review', 'applied', 'rejected')
                       THEN r.at + interval '2 days' END,
                  CASE WHEN r.phase IN ('at_review', 'applied', 'rejected')
                       THEN ((r.at + interval '2 days') AT TIME ZONE 'Asia/Shanghai')::date + 7
                  END,
                  CASE WHEN r.phase IN ('applied', 'rejected') THEN $1::int END,
                  CASE WHEN r.phase IN ('applied', 'rejected') THEN r.at + interval '5 days' END,
                  CASE WHEN r.phase = 'rejected' THEN '证明材料不足' ELSE '' END, r.at
           FROM bench_request r""",
        ids["reviewer"],
    )


async def _problems(conn: asyncpg.Connection) -> None:
    await conn.execute(
        f"""INSERT INTO problem_case (student, school, school_class, region_code, kind, source,
                                     state, detail, reason, id_number, due_on, created_at,
                                     updated_at, resolved_at)
           SELECT s.id, s.school, s.school_class, s.region_code,
                  (ARRAY['id_invalid','id_birth_mismatch','duplicate_id','id_not_found',
                         'name_id_mismatch','national_duplicate'])[1 + s.id % 6],
                  CASE WHEN s.id % 6 >= 3 THEN 'national' ELSE 'local' END, p.state,
                  '基准问题', '', s.id_number,
                  (now() AT TIME ZONE 'Asia/Shanghai')::date - 10 + s.id % 30,
                  now() - ((s.id % 60) || ' days')::interval, now() - interval '1 day',
                  CASE WHEN p.state = 'resolved' THEN now() - interval '1 day' END
           FROM student s
           CROSS JOIN LATERAL (SELECT CASE WHEN {h("s.id", 12)} < 400 THEN 'open'
                                           WHEN {h("s.id", 12)} < 600 THEN 'in_review'
                                           WHEN {h("s.id", 12)} < 650 THEN 'sent_back'
                                           WHEN {h("s.id", 12)} < 750 THEN 'corroborated'
                                           WHEN {h("s.id", 12)} < 770 THEN 'arbitration'
                                           ELSE 'resolved' END AS state) p
           WHERE s.school IN (SELECT id FROM school WHERE code LIKE '9%')
             AND {h("s.id", 11)} < 15"""
    )


async def settle_uploads(conn: asyncpg.Connection) -> int:
    """No seeded photo waits for its check (a seed of an earlier version left some): each is
    given up (`check_failed`, out of tries), as the sweeper would after its tries."""
    done = await conn.execute(
        """UPDATE upload SET status = 'check_failed', check_attempts = 3
           WHERE status IN ('uploaded', 'checking') AND storage_key LIKE 'photos/bench/%'"""
    )
    return int(done.split()[-1])


async def paper_columns(conn: asyncpg.Connection) -> bool:
    found = await conn.fetchval(
        """SELECT count(*) FROM information_schema.columns
           WHERE table_name = 'issued_form'
             AND column_name IN ('paper_returned_at', 'paper_returned_by')"""
    )
    return bool(found == 2)


async def tick_paper(conn: asyncpg.Connection, registrar: int) -> bool:
    """Ticks ~80 % of a closed campaign's forms and ~40 % of the open one's as returned on
    paper, if the table has the columns (the paper-return tick, issue 12). Idempotent."""
    if not await paper_columns(conn):
        return False
    await conn.execute(
        f"""UPDATE issued_form f
            SET paper_returned_at = LEAST(
                    k.until - interval '1 minute',
                    f.issued_at + (({h("f.id", 13)} % 200) || ' hours')::interval),
                paper_returned_by = $1
            FROM (SELECT id, LEAST(ends_at, now()) AS until,
                         closed_at IS NULL AND ends_at > now() AS open
                  FROM campaign WHERE region_code = '330000') k
            WHERE k.id = f.campaign AND f.paper_returned_at IS NULL AND f.form_id LIKE 'B%'
              AND {h("f.id", 14)} < CASE WHEN k.open THEN 400 ELSE 800 END""",
        registrar,
    )
    return True


async def record_seed(conn: asyncpg.Connection, shape: Shape, seconds: dict[str, float]) -> None:
    import json

    await conn.execute(SEED_TABLE)
    await conn.execute(
        """INSERT INTO bench_seed (key, shape, seconds, at) VALUES ('progress', $1, $2, now())
           ON CONFLICT (key) DO UPDATE SET shape = $1, seconds = $2, at = now()""",
        json.dumps(shape.as_dict()),
        json.dumps(seconds),
    )


async def counts(conn: asyncpg.Connection) -> dict[str, int]:
    """What was written, for the report."""
    out: dict[str, int] = {}
    for table in (
        "region",
        "school",
        "school_class",
        "student",
        "campaign",
        "issued_form",
        "upload",
        "correction_draft",
        "change_request",
        "review_step",
        "problem_case",
    ):
        out[table] = int(await conn.fetchval(f"SELECT count(*) FROM {table}"))
    return out
