"""The 100,000 open transfers of `bench/transfers.py`, written in SQL over one province.

As `bench/progress_seed.py` does (its regions, schools, classes and students are reused:
`_tree`, `_students`), every row is made by PostgreSQL from `generate_series`, never by the
ORM row by row. The shape: 浙江 (330000) with `cities` × `counties` counties and `schools`
bench schools (every tenth one run by its city, so city admins review too), one student per
transfer, and a few 江苏 schools (320102) receiving the cross-province ones. Each student has
one open transfer (`status_change`, `in_review`, or `applied` while its start waits) and its
review steps (`review_step`), written as `reviews.open_round` and the decisions would write
them:

- the receiving school: 2 % of the transfers go to the first bench school (the receiving
  registrar's), 5 % to 江苏 (跨省), the rest to another bench school (县内 when in the same
  county, 省内 otherwise);
- where each waits, by a hash of the student: 15 % at the start (a parent's application at
  the receiving school), 30 % at the release (the sending school), 30 % at the sending
  authority's review, 25 % at the receiving authority's (a county transfer has none: at its
  only review);
- the current step became current 0–29 days ago, due 14 days later (10 working days, roughly:
  SQL has no Chinese calendar); the steps before it were decided 3 days apart before it.

Which row gets what is decided by a hash of the row's id, so a reseed gives the same data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg
from progress_seed import Shape, _students, _tree, h

JIANGSU_SCHOOLS = 5


@dataclass(frozen=True)
class TransferShape:
    transfers: int = 100_000
    cities: int = 11
    counties: int = 8  # per city
    schools: int = 500
    classes: int = 3  # per school

    def progress_shape(self) -> Shape:
        return Shape(self.transfers, self.cities, self.counties, self.schools, self.classes)


async def seed(conn: asyncpg.Connection, shape: TransferShape, applicant: int) -> dict[str, Any]:
    """Writes the province (the demo data must be there); returns the ids the bench uses."""
    await conn.execute("SET synchronous_commit = off")
    await conn.execute("SET work_mem = '64MB'")
    await _tree(conn, shape.progress_shape())
    await conn.execute(
        """CREATE TEMP TABLE bench_school AS
           SELECT (row_number() OVER (ORDER BY s.id) - 1)::int AS n, s.id, s.region_code,
                  (SELECT min(k.id) FROM school_class k WHERE k.school = s.id) AS first_class
           FROM school s WHERE s.code LIKE '9%'"""
    )
    await conn.execute(
        """UPDATE school s SET administered_by = 'city' FROM bench_school b
           WHERE b.id = s.id AND b.n % 10 = 5"""
    )
    await _students(conn, shape.progress_shape())
    await conn.execute(
        """INSERT INTO region (code, name, level, parent_code) VALUES
           ('320000', '江苏省', 'province', NULL), ('320100', '南京市', 'city', '320000'),
           ('320102', '玄武区', 'county', '320100') ON CONFLICT (code) DO NOTHING"""
    )
    await conn.execute(
        """INSERT INTO school (code, name, region_code, administered_by)
           SELECT '8' || lpad(i::text, 9, '0'), '南京基准学校' || i, '320102', 'county'
           FROM generate_series(0, $1::int - 1) i""",
        JIANGSU_SCHOOLS,
    )
    await conn.execute(
        """INSERT INTO school_class (school, region_code, grade, name)
           SELECT s.id, s.region_code, 1, '1年级(1)班' FROM school s WHERE s.code LIKE '8%'"""
    )
    await conn.execute(
        """CREATE TEMP TABLE bench_to AS
           SELECT (row_number() OVER (ORDER BY s.id) - 1)::int AS n, s.id, s.region_code,
                  (SELECT min(k.id) FROM school_class k WHERE k.school = s.id) AS first_class
           FROM school s WHERE s.code LIKE '8%'"""
    )
    schools = shape.schools
    # One row per transfer: where it goes, how far, which step is current and since when
    await conn.execute(
        f"""CREATE TEMP TABLE bench_transfer AS
        SELECT st.id AS student, st.school, st.school_class, st.region_code,
               sc.administered_by AS from_admin,
               t.id AS to_school, t.first_class AS to_class, t.region_code AS to_region,
               ts.administered_by AS to_admin,
               CASE WHEN t.region_code = st.region_code THEN 'county'
                    WHEN left(t.region_code, 2) = left(st.region_code, 2) THEN 'province'
                    ELSE 'country' END AS span,
               now() - make_interval(days => {h("st.id", 4)} % 30, mins => {h("st.id", 5)})
                   AS became,
               {h("st.id", 3)} AS at
        FROM student st
        JOIN school sc ON sc.id = st.school
        JOIN bench_school fs ON fs.id = st.school
        CROSS JOIN LATERAL (
            SELECT * FROM bench_school b
            WHERE {h("st.id", 1)} >= 70
              AND b.n = CASE WHEN {h("st.id", 1)} < 90 AND fs.n <> 0 THEN 0
                             ELSE (fs.n + 1 + {h("st.id", 2)} * 7 % ($1::int - 1)) % $1::int
                        END
            UNION ALL
            SELECT * FROM bench_to b
            WHERE {h("st.id", 1)} < 70 AND b.n = {h("st.id", 2)} % {JIANGSU_SCHOOLS}
        ) t
        JOIN school ts ON ts.id = t.id
        WHERE st.registry_number LIKE 'G%'""",
        schools,
    )
    # The current step's position: 1 start … 4 review_in (a county transfer has 3 steps)
    await conn.execute(
        """ALTER TABLE bench_transfer ADD COLUMN cur int, ADD COLUMN steps int;
           UPDATE bench_transfer SET steps = CASE WHEN span = 'county' THEN 3 ELSE 4 END;
           UPDATE bench_transfer SET cur = LEAST(steps, CASE WHEN at < 150 THEN 1
               WHEN at < 450 THEN 2 WHEN at < 750 THEN 3 ELSE 4 END)"""
    )
    await conn.execute(
        """INSERT INTO status_change (kind, student, from_school, from_class, from_region,
               to_school, to_class, to_region, span, state, round, reason, details, refusal,
               applicant, started_by, started_on, created_at, updated_at)
           SELECT 'transfer', b.student, b.school, b.school_class, b.region_code, b.to_school,
                  b.to_class, b.to_region, b.span,
                  CASE WHEN b.cur = 1 THEN 'applied' ELSE 'in_review' END, 1,
                  '随父母工作调动', '{}', '', $1::int,
                  CASE WHEN b.cur = 1 THEN NULL ELSE $1::int END,
                  ((b.became - make_interval(days => 3 * (b.cur - 1)))
                      AT TIME ZONE 'Asia/Shanghai')::date,
                  b.became - make_interval(days => 3 * (b.cur - 1)), b.became
           FROM bench_transfer b""",
        applicant,
    )
    await conn.execute(
        """INSERT INTO review_step (subject_kind, subject_id, round, position, kind, role,
               seat_school, seat_class, seat_region, student, school, school_class, region_code,
               state, became_current_at, due_on, due_days, decided_by, decided_at, reason,
               created_at)
           SELECT 'status_change', c.id, 1, p,
                  (ARRAY['start', 'release', 'review_out', 'review_in'])[p],
                  CASE WHEN p <= 2 THEN 'registrar'
                       ELSE (CASE WHEN (CASE WHEN p = 3 THEN b.from_admin ELSE b.to_admin END)
                                       = 'city' THEN 'city_admin' ELSE 'county_reviewer' END)
                  END,
                  CASE p WHEN 1 THEN b.to_school WHEN 2 THEN b.school END, NULL,
                  CASE p WHEN 3 THEN (CASE WHEN b.from_admin = 'city'
                                          THEN left(b.region_code, 4) || '00'
                                          ELSE b.region_code END)
                         WHEN 4 THEN (CASE WHEN b.to_admin = 'city'
                                          THEN left(b.to_region, 4) || '00'
                                          ELSE b.to_region END) END,
                  b.student,
                  CASE WHEN p IN (1, 4) THEN b.to_school ELSE b.school END,
                  CASE WHEN p IN (1, 4) THEN b.to_class ELSE b.school_class END,
                  CASE WHEN p IN (1, 4) THEN b.to_region ELSE b.region_code END,
                  CASE WHEN p < b.cur THEN 'approved' WHEN p = b.cur THEN 'current'
                       ELSE 'waiting' END,
                  CASE WHEN p <= b.cur THEN b.became - make_interval(days => 3 * (b.cur - p)) END,
                  CASE WHEN p <= b.cur THEN
                      ((b.became - make_interval(days => 3 * (b.cur - p)))
                          AT TIME ZONE 'Asia/Shanghai')::date + 14 END,
                  10,
                  CASE WHEN p < b.cur THEN $1::int END,
                  CASE WHEN p < b.cur THEN b.became - make_interval(days => 3 * (b.cur - p - 1))
                  END,
                  '', b.became - make_interval(days => 3 * (b.cur - 1))
           FROM bench_transfer b
           JOIN status_change c ON c.student = b.student AND c.kind = 'transfer'
           CROSS JOIN generate_series(1, 4) p
           WHERE p <= b.steps""",
        applicant,
    )
    first, second = await conn.fetch(
        "SELECT id, region_code FROM bench_school WHERE n < 2 ORDER BY n"
    )
    await conn.execute("VACUUM ANALYZE")
    counts = await conn.fetchrow(
        """SELECT (SELECT count(*) FROM status_change) AS transfers,
                  (SELECT count(*) FROM review_step WHERE subject_kind = 'status_change')
                      AS steps"""
    )
    return {
        "receiving_school": first["id"],
        "sending_school": second["id"],
        "county": first["region_code"],
        "city": first["region_code"][:4] + "00",
        "transfers": counts["transfers"],
        "steps": counts["steps"],
    }
