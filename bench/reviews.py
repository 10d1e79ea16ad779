"""HTTP benchmark of the review queues: 10,000 pending change requests over one county.

One command, from the project root:

    .venv/bin/python bench/reviews.py

It recreates the PostgreSQL database `registry_bench_reviews`, applies the migrations, seeds
the demo data, then one county (西湖区, 330106) of `--schools` schools (the demo's two among
them) with one student per request and `--requests` pending key-data change requests (a name
change each), half waiting at the registrar's enter step (a re-import's change, the ID scan
still to attach), half entered and waiting at the county's review step, due dates spread
over the last 30 days (so some are overdue). Written straight to the tables, as
`change_requests.create_request` writes them: the load is on the reads. It ANALYZEs, prints
the EXPLAIN ANALYZE of each queue's statements (to `bench/out/reviews-explain.txt`), starts ONE
server process (granian, one worker) and loads, with wrk (`--connections` 16, 2 threads), in
turn for `--rounds` rounds:

    A  GET /health                    no auth: the same run's baseline
    R  GET /review-steps              the demo registrar (one school's enter steps)
    C  GET /review-steps              the demo county reviewer (the county's review steps)
    N  GET /review-steps/counts       the demo county reviewer (the badge)

It prints the medians of the rounds: req/s, p50 / p95 / p99, server CPU per request, the
ratio to A. Target: p95 < 50 ms for R and C. Exits 1 if missed, 2 if wrk is missing.
Only 127.0.0.1 is touched. Needs wrk (`apt-get install -y wrk`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from http_auth import (
    PG_BASE_URL,
    ROOT,
    VENV_BIN,
    cpu_model,
    free_port,
    group_cpu_seconds,
    http,
    load_average,
    recreate_database,
    server_command,
    stop_server,
    wait_ready,
)

PASSWORD = "Demo2026pass"
REGISTRAR, COUNTY = "13900000005", "13900000003"  # demo logins
TARGET_P95_MS = 50.0
OUT = ROOT / "bench" / "out"

# wrk's own latency histogram, the percentiles it does not print by itself (µs)
WRK_REPORT = """
done = function(summary, latency, requests)
  io.write(string.format("PCTL %d %d %d\\n",
    latency:percentile(50), latency:percentile(95), latency:percentile(99)))
end
"""


@dataclass(frozen=True)
class Endpoint:
    key: str
    label: str
    path: str
    login: str | None


ENDPOINTS = (
    Endpoint("A", "GET /health", "/health", None),
    Endpoint("R", "GET /review-steps (registrar)", "/review-steps", REGISTRAR),
    Endpoint("C", "GET /review-steps (county)", "/review-steps", COUNTY),
    Endpoint("N", "GET /review-steps/counts (county)", "/review-steps/counts", COUNTY),
)


@dataclass(frozen=True)
class Run:
    rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    requests: int
    errors: int
    server_cpu_us: float


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def server_env(args: argparse.Namespace, port: int) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=f"{PG_BASE_URL}/{args.database}",
        REDIS_URL=args.redis_url,
        RUN_WORKER_INLINE="false",
        SEED_DEMO="false",
        SECOND_FACTOR_REQUIRED="false",  # staff sign in with a password alone here
        PYTHONUNBUFFERED="1",
    )
    return env


# ---- seeding (in a child process whose environment points at the bench database) ---------


async def seed_in_this_process(schools: int, requests: int) -> None:
    sys.path.insert(0, str(ROOT))
    from backend.config import get_settings
    from backend.db import close_pool, open_pool
    from backend.seed import seed_demo

    settings = get_settings()
    await seed_demo(settings)
    await open_pool(settings)
    try:
        world = await county_world(schools, requests)
        await explain(world)
    finally:
        await close_pool()
    print(json.dumps(world), flush=True)


async def county_world(school_count: int, request_count: int) -> dict[str, Any]:
    from datetime import UTC, date, datetime, timedelta

    from backend.accounts import org
    from backend.accounts.audit import Actor
    from backend.accounts.tables import Account, School, SchoolClass
    from backend.db import transaction
    from backend.records.ids import make_resident_id, registry_number_for
    from backend.records.review_tables import ChangeRequest, Evidence, ReviewStep
    from backend.records.service import RecordIn, write_records
    from backend.records.tables import Student

    actor = Actor.system("bench")
    now = datetime.now(UTC)
    for n in range(await School.count(), school_count):
        school = await org.create_school(actor, f"21330107{n:02d}", f"西湖区第{n}学校", "330106")
        for grade in (1, 2):
            await org.create_class(actor, school, grade, f"{grade}年级(1)班")
    classes = await SchoolClass.select().order_by(SchoolClass.id)
    records = []
    for i in range(request_count):
        klass = classes[i % len(classes)]
        born = date(2015, 1, 1) + timedelta(days=i % 1800)  # (born, sequence): one per i
        sex = "1" if i % 2 else "2"
        id_number = make_resident_id("330106", born, i // 1800, sex)
        fields = {
            "name": f"待审{i:05d}",
            "sex": sex,
            "birth_date": born.isoformat(),
            "ethnicity": "01",
            "nationality": "CN",
            "id_type": "1",
            "id_number": id_number,
            "phone": f"1381{i:07d}",
        }
        registry = registry_number_for("1", id_number, "x", fields["name"], fields["birth_date"])
        records.append(
            RecordIn(registry, klass["school"], klass["id"], klass["region_code"], fields)
        )
    log(f"writing {len(records)} students")
    async with transaction():
        await write_records(actor, records, flag_duplicates=False)
    author = (await Account.select(Account.id).where(Account.phone == REGISTRAR).first())["id"]
    students = (
        await Student.select(
            Student.id, Student.school, Student.school_class, Student.region_code, Student.name
        )
        .where(Student.name.like("待审%"))
        .order_by(Student.id)
    )
    log(f"writing {len(students)} change requests and their steps")
    for start in range(0, len(students), 500):
        batch = students[start : start + 500]
        async with transaction():
            await _write_batch(batch, start, author, now, ChangeRequest, ReviewStep, Evidence)
    await ChangeRequest.raw("VACUUM ANALYZE")  # as autovacuum would, after a bulk load
    schools = await School.count()
    return {"schools": schools, "requests": len(students)}


async def _write_batch(
    batch: list[dict[str, Any]],
    start: int,
    author: int,
    now: Any,
    change_request: Any,
    review_step: Any,
    evidence: Any,
) -> None:
    from datetime import timedelta

    from backend.workdays import due_date

    requests = []
    for n, student in enumerate(batch, start=start):
        requests.append(
            change_request(
                student=student["id"],
                school=student["school"],
                school_class=student["school_class"],
                region_code=student["region_code"],
                field_code="name",
                chain="key_data",
                old_value=student["name"],
                new_value=f"改名{n:05d}",
                reason="户口簿姓名已变更",
                source="import" if n % 2 == 0 else "registrar",
                author=author,
                entered_at=None if n % 2 == 0 else now,
                created_at=now,
                updated_at=now,
            )
        )
    ids = [row["id"] for row in await change_request.insert(*requests).returning(change_request.id)]
    steps, scans = [], []
    for n, (student, request_id) in enumerate(zip(batch, ids, strict=True), start=start):
        became = now - timedelta(days=n % 30, minutes=n % 1440)
        at_enter = n % 2 == 0
        common = {
            "subject_kind": "change_request",
            "subject_id": request_id,
            "round": 1,
            "student": student["id"],
            "school": student["school"],
            "school_class": student["school_class"],
            "region_code": student["region_code"],
            "created_at": became,
        }
        enter = {
            **common,
            "position": 1,
            "kind": "enter",
            "role": "registrar",
            "seat_school": student["school"],
            "became_current_at": became,
        }
        review = {
            **common,
            "position": 2,
            "kind": "review",
            "role": "county_reviewer",
            "seat_region": "330106",
        }
        if at_enter:
            enter |= {"state": "current", "due_on": due_date(became)}
            review |= {"state": "waiting"}
        else:
            enter |= {"state": "approved", "decided_by": author, "decided_at": became}
            review |= {"state": "current", "became_current_at": became, "due_on": due_date(became)}
            scans.append(
                evidence(
                    subject_kind="change_request",
                    subject_id=request_id,
                    kind="id_scan",
                    storage_key=f"evidence/bench/{request_id}.jpg",
                    content_type="image/jpeg",
                    size_bytes=200_000,
                    student=student["id"],
                    school=student["school"],
                    school_class=student["school_class"],
                    region_code=student["region_code"],
                    uploaded_by=author,
                    created_at=became,
                )
            )
        steps += [review_step(**enter), review_step(**review)]
    await review_step.insert(*steps)
    if scans:
        await evidence.insert(*scans)


async def explain(world: dict[str, Any]) -> None:
    """EXPLAIN ANALYZE of every statement each queue's page and counts run, as the service
    runs them (the statements are caught on their way to the database)."""
    import uuid

    from backend.accounts.principal import Principal
    from backend.accounts.roles import Role, ScopeKind
    from backend.accounts.scope import Scope
    from backend.accounts.tables import Account
    from backend.db import fetch_rows
    from backend.records import queues

    lines: list[str] = []

    async def explaining(sql: str, *args: Any) -> list[dict[str, Any]]:
        plan = await fetch_rows(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", *args)
        lines.append(sql.strip())
        lines.extend(row["QUERY PLAN"] for row in plan)
        lines.append("")
        return await fetch_rows(sql, *args)

    queues.fetch_rows = explaining  # type: ignore[assignment]
    for phone in (REGISTRAR, COUNTY):
        row = await Account.select().where(Account.phone == phone).first()
        principal = Principal(
            account_id=row["id"],
            role=Role(row["role"]),
            name=row["name"],
            phone=phone,
            scope=Scope(
                ScopeKind(row["scope_kind"]), row["region_code"], row["school"], None, row["id"]
            ),
            session_id=uuid.uuid4(),
            password_change_required=False,
        )
        lines.append(f"==== {row['role']} ({phone}) ====")
        page = await queues.waiting_on(principal)
        world[f"total_{row['role']}"] = page.total
        await queues.counts(principal)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "reviews-explain.txt").write_text("\n".join(lines))
    log(f"EXPLAIN ANALYZE written to {OUT / 'reviews-explain.txt'}")


def prepare_database(args: argparse.Namespace, port: int) -> dict[str, Any]:
    log(f"recreating database {args.database}")
    asyncio.run(recreate_database(args.database))
    env = server_env(args, port)
    log("applying migrations")
    subprocess.run(
        [str(VENV_BIN / "piccolo"), "migrations", "forwards", "backend"],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=300,
        stdout=subprocess.DEVNULL,
    )
    log("seeding the demo data and the county's pending requests")
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--seed-only",
            "--schools",
            str(args.schools),
            "--requests",
            str(args.requests),
        ],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=900,
        stdout=subprocess.PIPE,
        text=True,
    ).stdout
    world: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return world


# ---- wrk ----------------------------------------------------------------------------------


def wrk_command(
    args: argparse.Namespace, url: str, token: str | None, seconds: int, script: str
) -> list[str]:
    cmd = ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{seconds}s", "-s", script]
    if token:
        cmd += ["-H", f"Authorization: Bearer {token}"]
    return [*cmd, url]


def run_wrk(
    args: argparse.Namespace, url: str, token: str | None, seconds: int, pgid: int, script: str
) -> Run:
    import re

    cpu_before = group_cpu_seconds(pgid)
    out = subprocess.run(
        wrk_command(args, url, token, seconds, script),
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 30,
    ).stdout
    cpu = group_cpu_seconds(pgid) - cpu_before
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50, p95, p99 = (int(v) / 1000 for v in re.search(r"PCTL (\d+) (\d+) (\d+)", out).groups())  # type: ignore[union-attr]
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    errors = 0
    if match := re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        errors += int(match.group(1))
    if match := re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    ):
        errors += sum(int(n) for n in match.groups())
    return Run(rps, p50, p95, p99, requests, errors, cpu / max(requests, 1) * 1e6)


def report(
    args: argparse.Namespace,
    runs: dict[str, list[Run]],
    world: dict[str, Any],
    server_cmd: list[str],
    load: str,
) -> bool:
    def med(key: str, attr: str) -> float:
        return float(statistics.median(getattr(run, attr) for run in runs[key]))

    base = med("A", "rps")
    print()
    print("Medians of the rounds; server CPU covers all its processes.")
    print(f"command : {shlex.join([sys.executable, *sys.argv])}")
    print(f"machine : nproc={os.cpu_count()} cpu={cpu_model()!r}")
    print(f"load avg: {load}")
    print(f"server  : {shlex.join(server_cmd)}  (one process, PostgreSQL {args.database})")
    print(
        f"data    : {world['requests']:,} pending key-data requests over {world['schools']} "
        f"schools of one county; registrar's queue {world['total_registrar']:,}, "
        f"county's queue {world['total_county_reviewer']:,} (page of 50)"
    )
    print(
        f"load    : wrk -t{args.threads} -c{args.connections} -d{args.duration}s, "
        f"{args.rounds} rounds, each endpoint in turn"
    )
    print()
    print(
        "|   | endpoint                          |  req/s | p50 ms | p95 ms | p99 ms "
        "| CPU µs/req | x /health | p95 by round |"
    )
    print(
        "|---|-----------------------------------|-------:|-------:|-------:|-------:"
        "|-----------:|----------:|--------------|"
    )
    ok = True
    for e in ENDPOINTS:
        if not runs.get(e.key):
            continue
        p95 = med(e.key, "p95_ms")
        if e.key in ("R", "C"):
            ok = ok and p95 < TARGET_P95_MS
        rounds = " / ".join(f"{run.p95_ms:.1f}" for run in runs[e.key])
        rps, p50, p99 = med(e.key, "rps"), med(e.key, "p50_ms"), med(e.key, "p99_ms")
        cpu = med(e.key, "server_cpu_us")
        print(
            f"| {e.key} | {e.label:<33} | {rps:>6,.0f} | {p50:>6.1f} | {p95:>6.1f} | {p99:>6.1f} "
            f"| {cpu:>10.0f} | {rps / base:>9.3f} | {rounds} |"
        )
    print()
    print(f"target  : p95 < {TARGET_P95_MS:.0f} ms for R and C: {'MET' if ok else 'MISSED'}")
    errors = sum(run.errors for run_list in runs.values() for run in run_list)
    if errors:
        print(f"WARNING: {errors} non-2xx responses or socket errors during the runs")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--schools", type=int, default=20)
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of warm-up per endpoint")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--database", default="registry_bench_reviews", help="dropped and recreated"
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--seed-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.seed_only:
        asyncio.run(seed_in_this_process(args.schools, args.requests))
        return 0
    if shutil.which("wrk") is None:
        print("wrk is not installed: run `apt-get install -y wrk` (Debian) and retry.")
        return 2
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    load_before = load_average()
    world = prepare_database(args, port)
    log(f"seeded: {world}")
    cmd = server_command("granian", "asyncio", port)
    log(f"starting server: {shlex.join(cmd)}")
    proc = subprocess.Popen(cmd, cwd=ROOT, env=server_env(args, port), start_new_session=True)
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as lua:
        lua.write(WRK_REPORT)
    try:
        wait_ready(base, proc, time.monotonic() + 60)
        pgid = os.getpgid(proc.pid)
        runs: dict[str, list[Run]] = {e.key: [] for e in ENDPOINTS}
        for round_no in range(args.rounds):
            tokens = {
                phone: http("POST", f"{base}/auth/login", {"phone": phone, "password": PASSWORD})[
                    "access_token"
                ]
                for phone in (REGISTRAR, COUNTY)
            }
            if round_no == 0:
                registrar = http("GET", f"{base}/review-steps", token=tokens[REGISTRAR])
                county = http("GET", f"{base}/review-steps", token=tokens[COUNTY])
                if registrar["total"] != world["total_registrar"] or len(county["items"]) != 50:
                    raise RuntimeError(f"unexpected queues: {registrar['total']} {county['total']}")
                for e in ENDPOINTS:
                    run_wrk(
                        args, base + e.path, tokens.get(e.login or ""), args.warmup, pgid, lua.name
                    )
            for e in ENDPOINTS:
                run = run_wrk(
                    args, base + e.path, tokens.get(e.login or ""), args.duration, pgid, lua.name
                )
                runs[e.key].append(run)
                log(
                    f"round {round_no + 1} {e.key} {e.path}: {run.rps:,.0f} req/s, p50 "
                    f"{run.p50_ms:.1f} p95 {run.p95_ms:.1f} p99 {run.p99_ms:.1f} ms, "
                    f"{run.server_cpu_us:.0f} µs CPU/req, {run.errors} errors"
                )
    finally:
        stop_server(proc)
        os.unlink(lua.name)
    ok = report(args, runs, world, cmd, f"{load_before} before, {load_average()} after")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
