"""Benchmark of the records domain on PostgreSQL: bulk import and duplicate-ID detection.

One command, from the project root:

    .venv/bin/python bench/records.py                 # 100,000 rows, 1,000,000 students
    .venv/bin/python bench/records.py --rows 5000 --students 50000   # a quick run

It recreates the database `registry_bench_records`, applies the migrations, seeds the demo
data (two schools, a registrar with phone 13900000005, 120 students) and then:

1. Import: writes a CSV of `--rows` students (tests/records/files.py's header and row builder,
   distinct valid ID numbers, spread over 40 classes) and runs the API's import path,
   `imports.start_import` then `imports.run_import`, as the registrar: a dry run, the real run,
   a re-import of the same file (which must write nothing), and a re-import of it with one row
   in 1,000 renamed (a key field: no student written, one change request per renamed row).
   `importer.parse` is also timed alone on the same bytes, and the real runs are split into
   phases by timing wrappers put around the backend's functions from here (the backend itself
   is not changed).
2. Duplicate IDs: empties `student`, fills it with `--students` rows by COPY (0.1 % of the ID
   numbers held at two schools), runs ANALYZE, then times `service.find_duplicate_id_numbers()`
   (the grouped pass; EXPLAIN ANALYZE printed) and `service.recompute_flags([id], [number])`
   (the per-record path an import takes), median of `--runs` runs each.

Only 127.0.0.1 is touched; Redis database 5 holds the progress keys (removed at the end).
`BENCH_DB_NAME` and `BENCH_REDIS_URL` choose another database and Redis (when several people
share the machine).
Files go under bench/out/ (git-ignored). `--profile` also writes a cProfile of the real import.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import functools
import io
import json
import os
import platform
import pstats
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DB_NAME = os.environ.get("BENCH_DB_NAME", "registry_bench_records")
DB_URL = f"postgresql://postgres@127.0.0.1:5432/{DB_NAME}"
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/5")
REGISTRAR_PHONE = "13900000005"  # the demo registrar (school 2133010601)
IMPORT_CLASSES = 40
IMPORT_REGION = "330108"  # ID numbers of another county than the demo students' (330106)
FILL_SCHOOLS = 50  # the two demo schools and 48 more
FILL_REGIONS = ("330102", "330105", "330106", "330108", "330109", "330110")
RENAMED_EVERY = 1000  # the last re-import renames one row in 1000: key changes, so requests
DUPLICATE_EVERY = 1000  # one row in 1000 reuses the previous row's ID number (another school)
COPY_BATCH = 50_000

# piccolo_conf reads DATABASE_URL at import time: set everything before importing `backend`.
os.environ["DATABASE_URL"] = DB_URL
os.environ["REDIS_URL"] = REDIS_URL
os.environ["VAR_DIR"] = str(OUT / "var")
os.environ["SEED_DEMO"] = "false"
os.environ["SECOND_FACTOR_REQUIRED"] = "false"
os.environ["RUN_WORKER_INLINE"] = "false"
sys.path.insert(0, str(ROOT))


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def median(values: list[float]) -> float:
    return statistics.median(values)


# ---- machine --------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    nproc = subprocess.run(["nproc"], capture_output=True, text=True, check=False).stdout.strip()
    return {
        "nproc": nproc or str(os.cpu_count()),
        "cpu": model,
        "python": platform.python_version(),
        "load": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


# ---- phase timing (wrappers around backend functions, installed from here) -----------------


@dataclass
class Phases:
    seconds: dict[str, float] = field(default_factory=dict)
    active: bool = False

    def add(self, name: str, elapsed: float) -> None:
        if self.active:
            self.seconds[name] = self.seconds.get(name, 0.0) + elapsed

    @contextmanager
    def window(self) -> Iterator[dict[str, float]]:
        self.seconds = {}
        self.active = True
        try:
            yield self.seconds
        finally:
            self.active = False


PHASES = Phases()


def timed_sync(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            PHASES.add(name, time.perf_counter() - start)

    return wrapper


def timed_async(name: str, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return await fn(*args, **kwargs)
        finally:
            PHASES.add(name, time.perf_counter() - start)

    return wrapper


def install_phase_timers() -> None:
    """parse, resolve (schools), classes, write_records (everything under it), and inside
    write_records: recompute_flags and the audit rows. Module attributes are replaced, so the
    backend's own global look-ups pick the wrappers up."""
    from backend.accounts import audit
    from backend.records import imports, service

    wrap: list[tuple[Any, str, str, bool]] = [
        (imports, "parse", "parse", False),
        (imports, "_resolve", "resolve", True),
        (imports, "_class_ids", "classes", True),
        (imports, "write_records", "write_records", True),
        (service, "recompute_flags", "flags", True),
        (audit, "record_many", "audit", True),
    ]
    for module, attribute, phase, is_async in wrap:
        original = getattr(module, attribute)
        setattr(module, attribute, (timed_async if is_async else timed_sync)(phase, original))


# ---- database -------------------------------------------------------------------------------


async def recreate_database() -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", DB_NAME
        )
        await conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}"')
        await conn.execute(f'CREATE DATABASE "{DB_NAME}"')
    finally:
        await conn.close()


async def scalar(sql: str, *args: Any) -> Any:
    from backend.db import fetch_row

    row = await fetch_row(sql, *args)
    assert row is not None
    return next(iter(row.values()))


# ---- part 1: import -------------------------------------------------------------------------


def build_csv(rows: int, renamed_every: int = 0) -> bytes:
    """Distinct valid ID numbers: make_resident_id varies only a 2-digit sequence per birth
    date and sex, so the birth date moves one day every 100 rows. With `renamed_every`, every
    such row has another name (a key field: the re-import makes a change request of it)."""
    from backend.records.ids import make_resident_id
    from tests.records.files import student_row, to_csv

    first_born = date(2016, 9, 1)
    built = []
    for i in range(1, rows + 1):
        born = first_born + timedelta(days=i // 100)
        male = i % 2 == 1
        built.append(
            student_row(
                i,
                姓名=f"{'改名' if renamed_every and i % renamed_every == 0 else '学生'}{i:06d}",
                性别="男" if male else "女",
                出生日期=born.isoformat(),
                身份证件号=make_resident_id(IMPORT_REGION, born, i % 100, "1" if male else "2"),
                现住址=f"文三路{i}号",
                联系电话=f"138{i:08d}",
                家庭成员1姓名=f"家长{i:06d}",
                家庭成员1联系电话=f"139{i:08d}",
                班级=f"二年级({i % IMPORT_CLASSES + 1})班",
            )
        )
    return to_csv(built)


@dataclass
class ImportRun:
    label: str
    rows: int
    wall: float
    cpu: float  # this process's CPU time (Python + driver), the rest is waiting on PostgreSQL
    status: str
    summary: dict[str, Any]
    phases: dict[str, float]
    students_written: int  # rows added to `student` by this run
    audit_rows: int  # rows added to `audit_log` by this run

    @property
    def rate(self) -> float:
        return self.rows / self.wall if self.wall else 0.0

    def split(self) -> str:
        p = self.phases
        write = p.get("write_records", 0.0)
        flags, audit_s = p.get("flags", 0.0), p.get("audit", 0.0)
        parts = [
            ("parse", p.get("parse", 0.0)),
            ("resolve+classes", p.get("resolve", 0.0) + p.get("classes", 0.0)),
            ("students", max(write - flags - audit_s, 0.0)),
            ("flags", flags),
            ("audit", audit_s),
        ]
        rest = self.wall - sum(s for _, s in parts)
        parts.append(("other", rest))
        return ", ".join(f"{name} {seconds:.1f}s" for name, seconds in parts)


async def run_one_import(
    label: str, content: bytes, rows: int, dry_run: bool, profile_to: Path | None = None
) -> ImportRun:
    from redis.asyncio import Redis

    from backend import progress
    from backend.__main__ import _cli_principal
    from backend.accounts.audit import Actor
    from backend.accounts.tables import Account
    from backend.config import get_settings
    from backend.records import imports

    account = await Account.select().where(Account.phone == REGISTRAR_PHONE).first()
    assert account is not None, "the demo registrar is missing"
    actor = Actor(account["id"], account["role"], "bench", f"bench-{label}")
    students_before = await scalar("SELECT count(*) FROM student")
    audit_before = await scalar("SELECT count(*) FROM audit_log")
    redis = Redis.from_url(REDIS_URL)
    profiler = cProfile.Profile() if profile_to else None
    try:
        with PHASES.window() as phases:
            cpu0, t0 = time.process_time(), time.perf_counter()
            if profiler:
                profiler.enable()
            job_id = await imports.start_import(
                _cli_principal(account),
                actor,
                redis,
                get_settings().with_(import_dry_runs_per_hour=0),  # a benchmark, not a probe
                "bench.csv",
                content,
                dry_run,
                None,  # no outbox: the job is run right here
            )
            status = await imports.run_import(job_id, redis)
            if profiler:
                profiler.disable()
            wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        job = await scalar("SELECT row_to_json(j)::text FROM import_job j WHERE id = $1", job_id)
        await redis.delete(progress.key("import", job_id))
    finally:
        await redis.aclose()
    if profiler and profile_to:
        profiler.dump_stats(str(profile_to))
    job = json.loads(job)
    summary = job["summary"] if isinstance(job["summary"], dict) else json.loads(job["summary"])
    if status != "done":
        log(f"{label}: status {status}, first errors {str(job['errors'])[:500]}")
    return ImportRun(
        label,
        rows,
        wall,
        cpu,
        status,
        summary,
        dict(phases),
        await scalar("SELECT count(*) FROM student") - students_before,
        await scalar("SELECT count(*) FROM audit_log") - audit_before,
    )


def time_parse(content: bytes) -> tuple[float, int, int]:
    from backend.records.importer import parse

    timings = []
    parsed = None
    for _ in range(2):
        t0 = time.perf_counter()
        parsed = parse("bench.csv", content)
        timings.append(time.perf_counter() - t0)
    assert parsed is not None
    return min(timings), len(parsed.rows), len(parsed.errors)


# ---- part 2: duplicate IDs ------------------------------------------------------------------


async def fill_students(total: int) -> tuple[float, int, str]:
    """TRUNCATE student, then COPY `total` rows over FILL_SCHOOLS schools; returns the fill
    time, the number of ID numbers held at two schools, and one holder's id number."""
    import asyncpg

    from backend.accounts import org
    from backend.accounts.audit import Actor
    from backend.accounts.tables import School, SchoolClass
    from backend.records.ids import make_resident_id

    actor = Actor.system("bench-fill")
    schools = await School.select(School.id, School.region_code).order_by(School.id)
    for n in range(len(schools), FILL_SCHOOLS):
        await org.create_school(actor, f"21330199{n:02d}", f"压测学校{n:02d}", "330106")
    schools = await School.select(School.id, School.region_code).order_by(School.id)
    class_of: dict[int, int] = {}
    for c in await SchoolClass.select(SchoolClass.id, SchoolClass.school).order_by(SchoolClass.id):
        class_of.setdefault(c["school"], c["id"])
    for s in schools:
        if s["id"] not in class_of:
            class_of[s["id"]] = await org.create_class(actor, s["id"], 5, "五年级(1)班")
    school_list = [(s["id"], s["region_code"]) for s in schools]

    now = datetime.now(UTC)
    columns = [
        "registry_number",
        "school",
        "school_class",
        "region_code",
        "status",
        "name",
        "id_number",
        "fields",
        "created_at",
        "updated_at",
    ]
    first_born = date(2010, 9, 1)
    per_day = 200 * len(FILL_REGIONS)  # 100 sequences x 2 sexes per region and birth date

    def row(k: int, previous_id: str | None) -> tuple[tuple[Any, ...], str]:
        school_id, region_code = school_list[k % len(school_list)]
        day, rest = divmod(k, per_day)
        region, rest = divmod(rest, 200)
        sequence, sex_bit = divmod(rest, 2)
        born = first_born + timedelta(days=day)
        sex = "1" if sex_bit else "2"
        if previous_id is not None and k % DUPLICATE_EVERY == DUPLICATE_EVERY - 1:
            number = previous_id  # the same child on the roll of a second school
        else:
            number = make_resident_id(FILL_REGIONS[region], born, sequence, sex)
        name = f"学生{k:07d}"
        fields = {
            "name": name,
            "sex": sex,
            "birth_date": born.isoformat(),
            "ethnicity": "01",
            "nationality": "CHN",
            "id_type": "1",
            "id_number": number,
            "current_address": f"浙江省杭州市西湖区文三路{k}号",
        }
        record = (
            "G" + number,
            school_id,
            class_of[school_id],
            region_code,
            "enrolled",
            name,
            number,
            json.dumps(fields, ensure_ascii=False),
            now,
            now,
        )
        return record, number

    conn = await asyncpg.connect(DB_URL)
    try:
        await conn.execute("TRUNCATE student RESTART IDENTITY CASCADE")
        t0 = time.perf_counter()
        previous: str | None = None
        sample_duplicate = ""
        for start in range(0, total, COPY_BATCH):
            batch = []
            for k in range(start, min(start + COPY_BATCH, total)):
                record, number = row(k, previous)
                if number == previous:
                    sample_duplicate = number
                previous = number
                batch.append(record)
            await conn.copy_records_to_table("student", records=batch, columns=columns)
            log(f"fill: {start + len(batch):,} / {total:,} students")
        await conn.execute("ANALYZE student")
        fill_seconds = time.perf_counter() - t0
    finally:
        await conn.close()
    return fill_seconds, total // DUPLICATE_EVERY, sample_duplicate


async def explain(sql: str) -> str:
    import asyncpg

    conn = await asyncpg.connect(DB_URL)
    try:
        rows = await conn.fetch(f"EXPLAIN (ANALYZE, BUFFERS) {sql}")
    finally:
        await conn.close()
    return "\n".join(r[0] for r in rows)


async def time_duplicates(runs: int, expected: int, sample_duplicate: str) -> dict[str, Any]:
    from backend.db import transaction
    from backend.records import service

    grouped: list[float] = []
    found: list[str] = []
    for _ in range(runs):
        t0 = time.perf_counter()
        found = await service.find_duplicate_id_numbers()
        grouped.append(time.perf_counter() - t0)
    if len(found) != expected:
        log(f"WARNING: found {len(found)} duplicate ID numbers, expected {expected}")

    holder = await scalar(
        "SELECT id FROM student WHERE id_number = $1 ORDER BY id LIMIT 1", sample_duplicate
    )
    plain = await scalar("SELECT min(id) FROM student WHERE id >= 501")
    plain_number = await scalar("SELECT id_number FROM student WHERE id = $1", plain)
    per_record: dict[str, list[float]] = {}
    flagged: dict[str, set[int]] = {}
    cases = (("duplicate", holder, sample_duplicate), ("plain", plain, plain_number))
    for _ in range(runs):
        for kind, sid, number in cases:
            # as called on its own: every statement commits (a flag written = a WAL flush)
            t0 = time.perf_counter()
            flagged[kind] = await service.recompute_flags([sid], [number])
            per_record.setdefault(kind, []).append(time.perf_counter() - t0)
            # as an import runs it: inside the import's transaction (rolled back here)
            t0 = time.perf_counter()
            try:
                async with transaction():
                    await service.recompute_flags([sid], [number])
                    per_record.setdefault(f"{kind} in tx", []).append(time.perf_counter() - t0)
                    raise _Rollback
            except _Rollback:
                pass
    query = (
        "SELECT id_number FROM student WHERE id_number IS NOT NULL "
        "GROUP BY id_number HAVING COUNT(DISTINCT school) > 1 ORDER BY id_number"
    )
    holders_query = (
        "SELECT id, school, id_number FROM student "
        f"WHERE id_number IN ('{sample_duplicate}')"  # recompute_flags' look-up of the holders
    )
    return {
        "grouped_s": grouped,
        "found": len(found),
        "per_record_s": per_record,
        "flagged": {k: sorted(v) for k, v in flagged.items()},
        "plan": await explain(query),
        "holders_plan": await explain(holders_query),
    }


class _Rollback(Exception):
    pass


# ---- main -----------------------------------------------------------------------------------


async def main(args: argparse.Namespace) -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    info = machine()
    log(f"machine: {info}")
    await recreate_database()

    from backend.config import get_settings
    from backend.db import close_pool, open_pool
    from backend.migrate import migrate
    from backend.seed import seed_demo

    settings = get_settings()
    await migrate()
    await open_pool(settings)
    results: dict[str, Any] = {"machine": info, "command": " ".join(sys.argv), "args": vars(args)}
    try:
        await seed_demo(settings)
        pg_version = await scalar("SHOW server_version")
        info["postgres"] = pg_version
        install_phase_timers()

        # ---- part 1
        t0 = time.perf_counter()
        content = build_csv(args.rows)
        csv_path = OUT / f"records-{args.rows}.csv"
        csv_path.write_bytes(content)
        elapsed = time.perf_counter() - t0
        log(f"CSV: {args.rows:,} rows, {len(content) / 1e6:.1f} MB, built in {elapsed:.1f}s")
        parse_s, parsed_rows, parse_errors = time_parse(content)
        log(f"parse alone: {parse_s:.2f}s ({parsed_rows:,} rows, {parse_errors} errors)")
        renamed = build_csv(args.rows, RENAMED_EVERY)
        runs: list[ImportRun] = []
        for label, dry in (
            ("dry run", True),
            ("real run", False),
            ("re-import", False),
            ("re-import, key changes", False),
        ):
            log(f"import: {label} …")
            profiled = args.profile and label == "real run"
            profile_to = OUT / "records-import.prof" if profiled else None
            data = renamed if label == "re-import, key changes" else content
            run = await run_one_import(label, data, args.rows, dry, profile_to)
            counts = {k: v for k, v in run.summary.items() if not isinstance(v, list)}
            log(f"import: {label}: {run.wall:.1f}s, {run.status}, {counts}; {run.split()}")
            runs.append(run)
        results["import"] = {
            "parse_alone_s": parse_s,
            "csv_bytes": len(content),
            "runs": [vars(r) for r in runs],
        }

        # ---- part 2
        log(f"fill: {args.students:,} students by COPY …")
        fill_s, expected, sample_duplicate = await fill_students(args.students)
        log(f"fill: {fill_s:.1f}s (with ANALYZE)")
        dup = await time_duplicates(args.runs, expected, sample_duplicate)
        results["duplicates"] = {"fill_s": fill_s, "expected": expected, **dup}
    finally:
        await close_pool()

    stamp = time.strftime("%Y%m%d-%H%M%S")
    (OUT / f"records-{stamp}.json").write_text(
        json.dumps(results, ensure_ascii=False, indent=1, default=str)
    )
    print_report(info, args, runs, parse_s, parsed_rows, fill_s, dup)
    if args.profile:
        stream = io.StringIO()
        pstats.Stats(str(OUT / "records-import.prof"), stream=stream).sort_stats(
            "cumulative"
        ).print_stats(25)
        print(stream.getvalue())
    ok = (
        all(r.status == "done" for r in runs)
        and runs[0].students_written == 0
        and runs[1].students_written == args.rows
        and runs[2].students_written == 0
        and runs[2].summary.get("unchanged") == args.rows
        and runs[2].summary.get("key_changes") == 0
        and runs[3].students_written == 0
        and runs[3].summary.get("updated") == 0
        and runs[3].summary.get("key_change_requests_created") == args.rows // RENAMED_EVERY
        and dup["found"] == expected
    )
    print("checks:", "ok" if ok else "FAILED (see the log above)")
    return 0 if ok else 1


def print_report(
    info: dict[str, str],
    args: argparse.Namespace,
    runs: list[ImportRun],
    parse_s: float,
    parsed_rows: int,
    fill_s: float,
    dup: dict[str, Any],
) -> None:
    lines = [
        f"machine   : {info['nproc']} CPU, {info['cpu']}, load {info['load']} at start; "
        f"Python {info['python']}, PostgreSQL {info.get('postgres', '?')}",
        f"command   : {' '.join([Path(sys.executable).name, *sys.argv])}",
        "",
        f"{'import of ' + format(args.rows, ',') + ' rows':<34}{'wall':>9}{'rows/s':>10}"
        f"{'py CPU':>9}  result",
        f"{'parse alone (importer.parse)':<34}{parse_s:>8.1f}s{parsed_rows / parse_s:>10,.0f}"
        f"{'':>9}  {parsed_rows:,} rows valid",
    ]
    for run in runs:
        s = run.summary
        result = (
            f"created {s.get('created')}, updated {s.get('updated')}, "
            f"unchanged {s.get('unchanged')}, "
            f"flagged {s.get('flagged')}, key changes {s.get('key_changes')}; "
            f"+{run.students_written:,} students, "
            f"+{run.audit_rows:,} audit rows"
        )
        lines.append(
            f"{run.label:<34}{run.wall:>8.1f}s{run.rate:>10,.0f}{run.cpu:>8.1f}s  {result}"
        )
    lines.append("")
    lines.append("phases (s):")
    for run in runs:
        lines.append(f"  {run.label:<12} {run.split()}")
    grouped = dup["grouped_s"]
    per = dup["per_record_s"]
    lines += [
        "",
        f"duplicate IDs over {args.students:,} students (fill by COPY + ANALYZE {fill_s:.0f}s), "
        f"median of {args.runs}:",
        f"  {'find_duplicate_id_numbers()':<44}{median(grouped) * 1000:>9.1f} ms  "
        f"(min {min(grouped) * 1000:.1f}, max {max(grouped) * 1000:.1f}); "
        f"{dup['found']:,} ID numbers found",
        *(
            f"  {'recompute_flags([id],[n]) ' + kind:<44}{median(per[kind]) * 1000:>9.1f} ms"
            + (f"  (flags {dup['flagged']['duplicate']})" if kind == "duplicate" else "")
            for kind in ("duplicate", "duplicate in tx", "plain", "plain in tx")
        ),
        "",
        "EXPLAIN of recompute_flags' look-up of an ID number's holders:",
        *("  " + line for line in dup["holders_plan"].splitlines() if "Index" in line),
        "",
        "EXPLAIN (ANALYZE, BUFFERS) of the grouped query:",
        *("  " + line for line in dup["plan"].splitlines()),
    ]
    uses_index = "Index" in dup["plan"]
    lines.append(
        "  -> uses an index on id_number" if uses_index else "  -> no index used (seq scan)"
    )
    print("\n".join(lines))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=100_000, help="students in the import file")
    parser.add_argument(
        "--students", type=int, default=1_000_000, help="students for duplicate detection"
    )
    parser.add_argument("--runs", type=int, default=5, help="repeats of each timed query")
    parser.add_argument("--profile", action="store_true", help="cProfile the real import")
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args())))
