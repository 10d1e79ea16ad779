"""Campaign progress at the scale of a province: 1,000,000 students, 3 campaigns (PostgreSQL).

One command, from the project root:

    .venv/bin/python bench/progress.py                 # seed once (≈ minutes), then measure
    .venv/bin/python bench/progress.py --reseed        # drop the database and seed again
    .venv/bin/python bench/progress.py --seed-only     # seed (if needed) and stop

Database `BENCH_DB_NAME` (default registry_bench_scale; PostgreSQL on 127.0.0.1:5432, user
postgres), Redis `BENCH_REDIS_URL` (default redis://127.0.0.1:6379/14, flushed). The seed
(`bench/progress_seed.py`: the shape and what each table gets) is written in SQL and kept:
a second run finds the `bench_seed` row and skips it (the migrations still run forwards, so
tables added since are created, and the progress tallies are refreshed in full once).

Then it measures, each `--rounds` times (the medians are reported):

1. the raw aggregates, for comparison: the open campaign's counts computed from the tables
   themselves for the province (by city), a county (by school) and a school (by class);
2. the progress tallies' full refresh (every school) and one school's refresh, if the
   progress code is there (`backend/reports/progress.py`);
3. over HTTP (one server process, uvicorn as `app.py` runs it, or `--server granian`, and
   one arq worker process), with wrk (`--connections` 16, 2 threads):
       P  GET /campaigns/{id}/progress                 the province admin (the province)
       C  GET /campaigns/{id}/progress?region=330106   the county reviewer (its county)
       S  GET /campaigns/{id}/progress?school={id}     the demo registrar (its school)
   p50 / p95 / p99 and the server's CPU per request; target p95 < 100 ms for each;
4. how long an event takes to show in the counts: the registrar ticks a form's paper return
   over HTTP and polls the school's progress until the count moves (`--events` times).

Prints a table, the machine, the load average and the command; figures go to
`bench/out/progress.json`. Exits 1 if a target is missed, 2 if wrk is missing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
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

import asyncpg
from http_auth import (
    PG_ADMIN_URL,
    PG_BASE_URL,
    ROOT,
    VENV_BIN,
    cpu_model,
    free_port,
    http,
    load_average,
    server_command,
    stop_server,
    wait_ready,
)
from progress_seed import (
    Shape,
    counts,
    paper_columns,
    record_seed,
    seed,
    seeded_shape,
    settle_uploads,
    tick_paper,
)

PASSWORD = "Demo2026pass"
PROVINCE, COUNTY, REGISTRAR = "13900000001", "13900000003", "13900000005"  # demo logins
# A registrar of the first bench school of 西湖区 (the demo's own schools have no forms here),
# made by the bench with the demo registrar's password.
BENCH_REGISTRAR = "13900000015"
COUNTY_CODE = "330106"
TARGET_P95_MS = 100.0
OUT = ROOT / "bench" / "out"

WRK_REPORT = """
done = function(summary, latency, requests)
  io.write(string.format("PCTL %d %d %d\\n",
    latency:percentile(50), latency:percentile(95), latency:percentile(99)))
end
"""


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def db_url(args: argparse.Namespace) -> str:
    return f"{PG_BASE_URL}/{args.database}"


def app_env(args: argparse.Namespace) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=db_url(args),
        REDIS_URL=args.redis_url,
        RUN_WORKER_INLINE="false",
        SEED_DEMO="false",
        SECOND_FACTOR_REQUIRED="false",  # staff sign in with a password alone here
        PYTHONUNBUFFERED="1",
    )
    return env


# ---- the seed -----------------------------------------------------------------------------


async def database_exists(name: str) -> bool:
    conn = await asyncpg.connect(PG_ADMIN_URL)
    try:
        return bool(await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name))
    finally:
        await conn.close()


async def recreate(name: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await conn.execute(f"CREATE DATABASE {name}")
    finally:
        await conn.close()


def migrate(args: argparse.Namespace) -> None:
    done = subprocess.run(
        [str(VENV_BIN / "piccolo"), "migrations", "forwards", "backend"],
        cwd=ROOT,
        env=app_env(args),
        timeout=1800,
        capture_output=True,
        text=True,
    )
    if done.returncode:
        print(done.stdout[-4000:], done.stderr[-4000:], file=sys.stderr)
        raise SystemExit(f"migrations failed ({done.returncode})")


async def seed_demo_here() -> None:
    """In a child process whose environment points at the bench database."""
    sys.path.insert(0, str(ROOT))
    from backend.config import get_settings
    from backend.seed import seed_demo

    await seed_demo(get_settings())


async def ensure_seeded(args: argparse.Namespace, shape: Shape) -> dict[str, Any]:
    """Seeds unless the database holds this shape's seed. Returns what the seed row says."""
    if args.reseed or not await database_exists(args.database):
        log(f"creating database {args.database}")
        await recreate(args.database)
    started = time.perf_counter()
    migrate(args)
    log(f"migrations forwards in {time.perf_counter() - started:.1f} s")
    conn = await asyncpg.connect(db_url(args))
    try:
        found = await seeded_shape(conn)
        if found is not None and found["shape"] == shape.as_dict():
            log(f"already seeded ({found['shape']}); --reseed to seed again")
            registrar = await conn.fetchval("SELECT id FROM account WHERE phone = $1", REGISTRAR)
            if await tick_paper(conn, registrar):
                log("paper returns ticked where missing")
            if settled := await settle_uploads(conn):
                log(f"{settled} photos waiting for a check given up (an earlier seed's)")
            return {**found, "skipped": True}
    finally:
        await conn.close()
    if found is not None or await _has_rows(args):
        log("the database holds another seed: recreating it")
        await recreate(args.database)
        migrate(args)
    started = time.perf_counter()
    subprocess.run(  # noqa: ASYNC221 (a script: nothing else runs on this loop)
        [sys.executable, __file__, "--seed-demo"],
        cwd=ROOT,
        env=app_env(args),
        check=True,
        timeout=600,
    )
    demo = round(time.perf_counter() - started, 1)
    log(f"demo data in {demo:.1f} s")
    conn = await asyncpg.connect(db_url(args))
    try:
        seconds = {"demo data (ORM)": demo, **await seed(conn, shape, log)}
        seconds["total"] = round(sum(seconds.values()), 1)
        await record_seed(conn, shape, seconds)
    finally:
        await conn.close()
    log(f"seeded in {seconds['total']:.0f} s")
    return {"shape": shape.as_dict(), "seconds": seconds, "skipped": False}


async def _has_rows(args: argparse.Namespace) -> bool:
    conn = await asyncpg.connect(db_url(args))
    try:
        return bool(await conn.fetchval("SELECT EXISTS (SELECT 1 FROM account)"))
    finally:
        await conn.close()


# ---- raw aggregates (what a read would cost without tallies) ------------------------------

RAW_FORMS = """
SELECT {key} AS node, count(*) AS issued, count(u.id) AS uploaded,
       count(*) FILTER (WHERE u.status = 'matches') AS matches,
       count(*) FILTER (WHERE u.status = 'differs') AS differs,
       count(*) FILTER (WHERE u.status = 'corrections_written') AS corrections_written,
       count(*) FILTER (WHERE u.status = 'unsigned') AS unsigned,
       count(*) FILTER (WHERE u.status = 'retake') AS retake
FROM issued_form f LEFT JOIN upload u ON u.form = f.id
WHERE f.campaign = $1 AND f.superseded_at IS NULL AND {where}
GROUP BY 1
"""
RAW_STEPS = """
SELECT {key} AS node, count(*) FILTER (WHERE s.state = 'current') AS pending,
       count(*) FILTER (WHERE s.state = 'current' AND s.due_on < CURRENT_DATE) AS overdue
FROM review_step s WHERE s.created_at >= $1 AND {where} GROUP BY 1
"""
RAW_LEVELS = {
    "province (by city)": ("left(f.region_code, 4)", "f.region_code LIKE '33%'"),
    "county (by school)": ("f.school", f"f.region_code = '{COUNTY_CODE}'"),
    "school (by class)": ("f.school_class", "f.school = {school}"),
}


async def raw_aggregates(args: argparse.Namespace, campaign: dict[str, Any]) -> dict[str, Any]:
    conn = await asyncpg.connect(db_url(args))
    out: dict[str, Any] = {}
    try:
        for label, (key, where) in RAW_LEVELS.items():
            where = where.format(school=campaign["school"])
            forms_sql = RAW_FORMS.format(key=key, where=where)
            steps_sql = RAW_STEPS.format(
                key=key.replace("f.", "s."), where=where.replace("f.", "s.")
            )
            times = []
            for _ in range(args.rounds):
                started = time.perf_counter()
                await conn.fetch(forms_sql, campaign["id"])
                await conn.fetch(steps_sql, campaign["starts_at"])
                times.append((time.perf_counter() - started) * 1000)
            out[label] = {"ms": [round(t, 1) for t in times], "median_ms": statistics.median(times)}
            log(f"raw aggregate, {label}: {' / '.join(f'{t:.0f}' for t in times)} ms")
    finally:
        await conn.close()
    return out


async def open_campaign(args: argparse.Namespace) -> dict[str, Any]:
    """The open campaign, the bench registrar (made here if missing) and its school, and a
    few of its forms not ticked as returned (for the events)."""
    conn = await asyncpg.connect(db_url(args))
    try:
        await conn.execute(
            """INSERT INTO account (phone, name, role, status, password_hash,
                      password_changed_at, must_change_password, scope_kind, region_code,
                      school, school_class, created_at, last_active_at)
               SELECT $1, '基准学籍员', a.role, 'active', a.password_hash, now(), false,
                      a.scope_kind, s.region_code, s.id, NULL, now(), now()
               FROM account a, (SELECT id, region_code FROM school
                                WHERE code LIKE '9%' AND region_code = $2
                                ORDER BY id LIMIT 1) s
               WHERE a.phone = $3
               ON CONFLICT (phone) DO NOTHING""",
            BENCH_REGISTRAR,
            COUNTY_CODE,
            REGISTRAR,
        )
        row = await conn.fetchrow(
            """SELECT c.id, c.starts_at, (SELECT school FROM account WHERE phone = $1) AS school
               FROM campaign c WHERE c.region_code = '330000' AND c.closed_at IS NULL
                 AND c.ends_at > now() ORDER BY c.starts_at DESC LIMIT 1""",
            BENCH_REGISTRAR,
        )
        assert row is not None
        ticked = "AND paper_returned_at IS NULL" if await paper_columns(conn) else ""
        forms = await conn.fetch(
            f"""SELECT form_id FROM issued_form WHERE campaign = $1 AND school = $2
                AND superseded_at IS NULL {ticked} ORDER BY id LIMIT 5""",
            row["id"],
            row["school"],
        )
        return {**dict(row), "forms": [f["form_id"] for f in forms]}
    finally:
        await conn.close()


# ---- the tallies' refresh (in a child process whose environment points at the bench database)


async def refresh_here(rounds: int, school: int) -> None:
    """Times a full refresh (every school marked, then counted batch by batch) and one
    school's refresh (one mark, then `refresh`); prints JSON. Needs the progress code
    (`backend/reports/progress*`)."""
    sys.path.insert(0, str(ROOT))
    from datetime import UTC, datetime

    from backend.config import get_settings
    from backend.db import close_pool, open_pool, transaction
    from backend.records.progress_marks import ProgressMark
    from backend.reports import progress_refresh as pr

    await open_pool(get_settings())
    out: dict[str, Any] = {"full_s": [], "schools": 0, "one_school_ms": []}
    try:
        for _ in range(rounds):
            started = time.perf_counter()
            async with transaction():
                marked = await pr.mark_region("330000")
            counted = 0
            while True:
                n = await pr.refresh(budget_seconds=3600)
                counted += n
                if n == 0:
                    break
            out["full_s"].append(round(time.perf_counter() - started, 2))
            out["schools"] = max(counted, marked)
            log(f"full refresh: {counted} schools in {out['full_s'][-1]:.1f} s")
        for _ in range(max(rounds, 5)):
            # one school marked (as a write's trigger marks it), then the worker's refresh
            await ProgressMark.insert(ProgressMark(school_id=school, marked_at=datetime.now(UTC)))
            started = time.perf_counter()
            counted = await pr.refresh(budget_seconds=60)
            out["one_school_ms"].append(round((time.perf_counter() - started) * 1000, 1))
            assert counted == 1, counted
        log(f"one school's refresh: {out['one_school_ms']} ms")
    finally:
        await close_pool()
    print(json.dumps(out), flush=True)


def measure_refresh(args: argparse.Namespace, school: int) -> dict[str, Any] | None:
    if not (ROOT / "backend" / "reports" / "progress_refresh.py").exists():
        log("no backend/reports/progress_refresh.py here: the tallies are not measured")
        return None
    done = subprocess.run(
        [sys.executable, __file__, "--refresh-here", str(school), "--rounds", str(args.rounds)],
        cwd=ROOT,
        env=app_env(args),
        check=True,
        timeout=7200,
        stdout=subprocess.PIPE,
        text=True,
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["full_median_s"] = statistics.median(result["full_s"])
    result["one_school_median_ms"] = statistics.median(result["one_school_ms"])
    return result


# ---- over HTTP -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    key: str
    label: str
    login: str
    query: str = ""  # none: the caller's own node
    tail: str = ""  # "/series": the daily series


ENDPOINTS = (
    Endpoint("A", "GET /health (baseline)", ""),
    Endpoint("P", "province (11 cities)", PROVINCE),
    Endpoint("C", "county 330106 (its schools)", COUNTY),
    Endpoint("S", "school (its 15 classes)", BENCH_REGISTRAR),
    Endpoint("T", "province's daily series", PROVINCE, tail="/series"),
)


def progress_path(campaign: int, query: str = "", tail: str = "") -> str:
    return f"/campaigns/{campaign}/progress{tail}" + (f"?{query}" if query else "")


def start_processes(args: argparse.Namespace, port: int) -> tuple[Any, Any, list[str]]:
    env = app_env(args)
    worker = subprocess.Popen(
        [str(VENV_BIN / "arq"), "backend.worker.WorkerSettings"],
        cwd=ROOT,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    cmd = server_command(args.server, "asyncio", port)
    server = subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True)
    return server, worker, cmd


def counts_of(base: str, token: str, campaign: int) -> dict[str, Any]:
    answer: dict[str, Any] = http("GET", base + progress_path(campaign), token=token)
    return answer


def event_latency(
    args: argparse.Namespace, base: str, token: str, campaign: int, forms: list[str]
) -> list[dict[str, Any]]:
    """Ticks (then unticks, alternately) a form's paper return over HTTP and polls the
    school's progress until `paper_returned` moves; the seconds from the write's answer to
    the first read that shows it."""
    results = []
    pause = random.Random(12)
    for n in range(args.events):
        form = forms[n // 2 % len(forms)]
        tick = n % 2 == 0
        before = counts_of(base, token, campaign)["counts"]["paper_returned"]
        path = f"/forms/{form}/paper-returned" if tick else f"/forms/{form}/paper-not-returned"
        http("POST", base + path, {}, token=token)
        written = time.perf_counter()
        want = before + (1 if tick else -1)
        polls = 0
        while True:
            polls += 1
            now = counts_of(base, token, campaign)["counts"]["paper_returned"]
            if now == want:
                break
            if time.perf_counter() - written > 120:
                raise RuntimeError(f"the count did not move in 120 s ({before} -> {now})")
            time.sleep(0.05)
        seconds = time.perf_counter() - written
        results.append({"tick": tick, "seconds": round(seconds, 3), "polls": polls})
        log(f"event {n + 1}: {'tick' if tick else 'untick'} shown after {seconds:.2f} s")
        # land the next write at another point of the refresh's 5-second cycle (a fixed pause
        # would lock every event to the same phase of it)
        time.sleep(pause.uniform(0.2, 5.2))
    return results


def measure_http(args: argparse.Namespace, campaign: dict[str, Any]) -> dict[str, Any]:
    import redis
    from reviews import WRK_REPORT, run_wrk

    redis.Redis.from_url(args.redis_url).flushdb()  # no job of an earlier run left queued
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server, worker, cmd = start_processes(args, port)
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as lua:
        lua.write(WRK_REPORT)
    runs: dict[str, list[Any]] = {e.key: [] for e in ENDPOINTS}
    out: dict[str, Any] = {"server": shlex.join(cmd)}
    try:
        wait_ready(base, server, time.monotonic() + 120)
        pgid = os.getpgid(server.pid)
        cid = campaign["id"]
        for round_no in range(args.rounds):
            tokens = {
                phone: http("POST", f"{base}/auth/login", {"phone": phone, "password": PASSWORD})[
                    "access_token"
                ]
                for phone in (PROVINCE, COUNTY, BENCH_REGISTRAR)
            }
            if round_no == 0:
                out["answers"] = {}
                for e in ENDPOINTS[1:]:
                    if e.tail:
                        answer = http(
                            "GET", base + progress_path(cid, e.query, e.tail), token=tokens[e.login]
                        )
                        out["answers"][e.key] = {"days": len(answer["days"])}
                        log(f"{e.key}: {len(answer['days'])} days")
                        continue
                    answer = http("GET", base + progress_path(cid, e.query), token=tokens[e.login])
                    out["answers"][e.key] = {
                        "node": answer["node"],
                        "counts": answer["counts"],
                        "children": answer["children"]["total"],
                        "as_of": answer["as_of"],
                    }
                    log(f"{e.key}: {answer['node']} {answer['children']['total']} children")
                for e in ENDPOINTS:
                    url = base + (
                        "/health" if e.key == "A" else progress_path(cid, e.query, e.tail)
                    )
                    run_wrk(args, url, tokens.get(e.login), args.warmup, pgid, lua.name)
            for e in ENDPOINTS:
                url = base + ("/health" if e.key == "A" else progress_path(cid, e.query, e.tail))
                run = run_wrk(args, url, tokens.get(e.login), args.duration, pgid, lua.name)
                runs[e.key].append(run)
                log(
                    f"round {round_no + 1} {e.key}: {run.rps:,.0f} req/s, p50 {run.p50_ms:.1f} "
                    f"p95 {run.p95_ms:.1f} p99 {run.p99_ms:.1f} ms, "
                    f"{run.server_cpu_us:.0f} µs CPU/req, {run.errors} errors"
                )
        out["runs"] = {key: [vars(run) for run in value] for key, value in runs.items()}
        if args.events:
            out["events"] = event_latency(
                args, base, tokens[BENCH_REGISTRAR], cid, campaign["forms"]
            )
    finally:
        stop_server(server)
        stop_server(worker)
        os.unlink(lua.name)
    return out


# ---- main ---------------------------------------------------------------------------------


async def database_figures(args: argparse.Namespace) -> dict[str, Any]:
    conn = await asyncpg.connect(db_url(args))
    try:
        size = await conn.fetchval("SELECT pg_database_size(current_database())")
        rows = await counts(conn)
        tables = {
            r["relname"]: int(r["bytes"])
            for r in await conn.fetch(
                """SELECT relname, pg_total_relation_size(relid) AS bytes
                   FROM pg_stat_user_tables ORDER BY 2 DESC LIMIT 8"""
            )
        }
    finally:
        await conn.close()
    return {"bytes": int(size), "rows": rows, "table_bytes": tables}


def med(values: list[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def report(args: argparse.Namespace, result: dict[str, Any], load: str) -> bool:
    seed_info, db = result["seed"], result["database"]
    print()
    print(f"command : {shlex.join([sys.executable, *sys.argv])}")
    print(f"machine : nproc={os.cpu_count()} cpu={cpu_model()!r}")
    print(f"load avg: {load}")
    rows = ", ".join(f"{k} {v:,}" for k, v in db["rows"].items())
    print(f"data    : {rows}; database {db['bytes'] / 2**30:.2f} GiB")
    how = "found (skipped)" if seed_info.get("skipped") else "written"
    print(f"seed    : {how}, {seed_info['seconds'].get('total', 0):.0f} s when written")
    print()
    print("Raw aggregates of the open campaign from the tables (no tallies), median ms:")
    for label, figure in result["raw"].items():
        print(f"  {label:<22} {figure['median_ms']:8.1f}   ({' / '.join(map(str, figure['ms']))})")
    refresh = result.get("refresh")
    if refresh:
        print(
            f"Tallies: full refresh of {refresh['schools']:,} schools "
            f"{refresh['full_median_s']:.1f} s "
            f"(median of {' / '.join(map(str, refresh['full_s']))}); "
            f"one school {refresh['one_school_median_ms']:.0f} ms "
            f"(median of {' / '.join(map(str, refresh['one_school_ms']))})"
        )
    ok = True
    web = result.get("http")
    if web:
        print()
        print(f"server  : {web['server']} (one process) + one arq worker")
        print(
            f"load    : wrk -t{args.threads} -c{args.connections} -d{args.duration}s, "
            f"{args.rounds} rounds; medians of the rounds"
        )
        print()
        print(
            "|   | progress call                  |  req/s | p50 ms | p95 ms | p99 ms "
            "| CPU µs/req | p95 by round |"
        )
        print(
            "|---|--------------------------------|-------:|-------:|-------:|-------:"
            "|-----------:|--------------|"
        )
        for e in ENDPOINTS:
            runs = web["runs"][e.key]
            p95 = med([r["p95_ms"] for r in runs])
            if e.key in ("P", "C", "S"):
                ok = ok and p95 < TARGET_P95_MS
            by_round = " / ".join(f"{r['p95_ms']:.1f}" for r in runs)
            print(
                f"| {e.key} | {e.label:<30} | {med([r['rps'] for r in runs]):>6,.0f} "
                f"| {med([r['p50_ms'] for r in runs]):>6.1f} | {p95:>6.1f} "
                f"| {med([r['p99_ms'] for r in runs]):>6.1f} "
                f"| {med([r['server_cpu_us'] for r in runs]):>10,.0f} | {by_round} |"
            )
        errors = sum(r["errors"] for runs in web["runs"].values() for r in runs)
        if errors:
            print(f"WARNING: {errors} non-2xx answers or socket errors")
            ok = False
        print(f"target  : p95 < {TARGET_P95_MS:.0f} ms for P, C and S: {'MET' if ok else 'MISSED'}")
        events = web.get("events") or []
        if events:
            seconds = sorted(e["seconds"] for e in events)
            print(
                f"events  : a paper-return tick shown in the school's counts after "
                f"median {med(seconds):.2f} s, max {seconds[-1]:.2f} s ({len(seconds)} events: "
                f"{' '.join(f'{x:.2f}' for x in seconds)})"
            )
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", type=int, default=Shape.students)
    parser.add_argument("--schools", type=int, default=Shape.schools)
    parser.add_argument("--classes", type=int, default=Shape.classes, help="per school")
    parser.add_argument("--cities", type=int, default=Shape.cities)
    parser.add_argument("--counties", type=int, default=Shape.counties, help="per city")
    parser.add_argument("--reseed", action="store_true", help="drop the database, seed again")
    parser.add_argument("--seed-only", action="store_true")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--events", type=int, default=10, help="events timed to the counts")
    parser.add_argument("--server", choices=("uvicorn", "granian"), default="uvicorn")
    parser.add_argument(
        "--database", default=os.environ.get("BENCH_DB_NAME", "registry_bench_scale")
    )
    parser.add_argument(
        "--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
    )
    parser.add_argument("--seed-demo", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--no-refresh", action="store_true", help="skip the tallies' refresh")
    parser.add_argument("--no-http", action="store_true", help="skip the HTTP measures")
    parser.add_argument("--refresh-here", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.seed_demo:
        asyncio.run(seed_demo_here())
        return 0
    if args.refresh_here:
        asyncio.run(refresh_here(args.rounds, args.refresh_here))
        return 0
    shape = Shape(args.students, args.cities, args.counties, args.schools, args.classes)
    load_before = load_average()
    seeded = asyncio.run(ensure_seeded(args, shape))
    result: dict[str, Any] = {"seed": seeded}
    if args.seed_only:
        print(json.dumps(seeded, ensure_ascii=False, indent=1))
        return 0
    campaign = asyncio.run(open_campaign(args))
    result["database"] = asyncio.run(database_figures(args))
    result["raw"] = asyncio.run(raw_aggregates(args, campaign))
    result["refresh"] = None if args.no_refresh else measure_refresh(args, campaign["school"])
    result["http"] = None
    if args.no_http:
        pass
    elif shutil.which("wrk") is None:
        print("wrk is not installed: run `apt-get install -y wrk` (Debian) and retry.")
        return 2
    elif not (ROOT / "backend" / "reports" / "progress_controllers.py").exists():
        log("no progress API here (backend/reports/progress_controllers.py): HTTP not measured")
    else:
        result["http"] = measure_http(args, campaign)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "progress.json").write_text(
        json.dumps(result, ensure_ascii=False, indent=1, default=str)
    )
    ok = report(args, result, f"{load_before} before, {load_average()} after")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
