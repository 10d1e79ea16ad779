"""HTTP benchmark of transfers: 100,000 open transfers over one province, each approver's
queue and the province's bulletin figures.

One command, from the project root:

    .venv/bin/python bench/transfers.py

It recreates the PostgreSQL database `registry_bench_transfers`, applies the migrations, seeds
the demo data, then 浙江 as `bench/transfers_seed.py` describes (`--transfers` open transfers,
`--schools` schools; written in SQL), and four approvers: the registrar of the school most
transfers go to (the receiving registrar), the registrar of another school (a sending
registrar), the county reviewer and the city admin over the first. It ANALYZEs, prints the
EXPLAIN ANALYZE of the bulletin's statements (to `bench/out/transfers-explain.txt`), starts
ONE server process (granian, one worker) and loads, with wrk (`--connections` 16, 2 threads),
in turn for `--rounds` rounds:

    A  GET /health                       no auth: the same run's baseline
    R  GET /review-steps                 the receiving registrar
    S  GET /review-steps                 a sending registrar
    C  GET /review-steps                 the county reviewer
    M  GET /review-steps                 the city admin
    B  GET /status-changes/bulletin      the province admin: 浙江, the last 30 days

It prints the medians of the rounds: req/s, p50 / p95 / p99, server CPU per request. Targets:
p95 < 50 ms for each queue, < 200 ms for the bulletin. Exits 1 if missed, 2 if wrk is missing.
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
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from http_auth import (
    PG_BASE_URL,
    ROOT,
    VENV_BIN,
    cpu_model,
    free_port,
    http,
    load_average,
    recreate_database,
    server_command,
    stop_server,
    wait_ready,
)
from reviews import WRK_REPORT, Run, run_wrk  # one wrk harness for the queue benches

PASSWORD = "Demo2026pass"
PROVINCE = "13900000001"  # the demo province admin
RECEIVING, SENDING, COUNTY, CITY = "13950000001", "13950000002", "13950000003", "13950000004"
QUEUE_P95_MS = 50.0
BULLETIN_P95_MS = 200.0
OUT = ROOT / "bench" / "out"


def bulletin_path() -> str:
    china = datetime.now(UTC) + timedelta(hours=8)
    to = china.date()
    return f"/status-changes/bulletin?region=330000&from={to - timedelta(days=29)}&to={to}"


# wrk's own latency histogram, the percentiles it does not print by itself (µs)
@dataclass(frozen=True)
class Endpoint:
    key: str
    label: str
    path: str
    login: str | None


ENDPOINTS = (
    Endpoint("A", "GET /health", "/health", None),
    Endpoint("R", "GET /review-steps (receiving registrar)", "/review-steps", RECEIVING),
    Endpoint("S", "GET /review-steps (sending registrar)", "/review-steps", SENDING),
    Endpoint("C", "GET /review-steps (county reviewer)", "/review-steps", COUNTY),
    Endpoint("M", "GET /review-steps (city admin)", "/review-steps", CITY),
    Endpoint("B", "GET /status-changes/bulletin (province)", "", PROVINCE),
)


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


async def seed_in_this_process(args: argparse.Namespace) -> None:
    import asyncpg
    from transfers_seed import TransferShape, seed

    sys.path.insert(0, str(ROOT))
    from backend.accounts.admin import insert_account
    from backend.accounts.passwords import hash_password
    from backend.accounts.roles import Role
    from backend.config import get_settings
    from backend.db import close_pool, open_pool
    from backend.seed import seed_demo

    settings = get_settings()
    await seed_demo(settings)
    conn = await asyncpg.connect(f"{PG_BASE_URL}/{args.database}")
    try:
        applicant = await conn.fetchval("SELECT id FROM account WHERE phone = '13900000005'")
        started = time.perf_counter()
        world = await seed(conn, TransferShape(args.transfers, schools=args.schools), applicant)
        world["seed_seconds"] = round(time.perf_counter() - started, 1)
    finally:
        await conn.close()
    await open_pool(settings)
    try:
        password = await hash_password(settings, PASSWORD)
        people = (
            (Role.registrar, RECEIVING, {"region_code": world["county"],
                                          "school": world["receiving_school"]}),
            (Role.registrar, SENDING, {"region_code": None, "school": world["sending_school"]}),
            (Role.county_reviewer, COUNTY, {"region_code": world["county"]}),
            (Role.city_admin, CITY, {"region_code": world["city"]}),
        )  # fmt: skip
        for role, phone, scope in people:
            if scope.get("region_code") is None:
                scope["region_code"] = await _school_region(scope["school"])
            await insert_account(
                role, phone, f"基准{role.value}", password, must_change_password=False, **scope
            )
        await explain(world)
    finally:
        await close_pool()
    print(json.dumps(world), flush=True)


async def _school_region(school: int) -> str:
    from backend.db import fetch_rows

    rows = await fetch_rows("SELECT region_code FROM school WHERE id = {}", school)
    return str(rows[0]["region_code"])


async def explain(world: dict[str, Any]) -> None:
    """EXPLAIN ANALYZE of the bulletin's statements and each queue's page, as the services
    run them (the statements are caught on their way to the database)."""
    import uuid

    from backend.accounts.audit import Actor
    from backend.accounts.principal import Principal
    from backend.accounts.roles import Role, ScopeKind
    from backend.accounts.scope import Scope
    from backend.accounts.tables import Account
    from backend.db import fetch_rows
    from backend.records import queues
    from backend.transfers import bulletin

    lines: list[str] = []

    async def explaining(sql: str, *args: Any) -> list[dict[str, Any]]:
        plan = await fetch_rows(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", *args)
        lines.append(sql.strip())
        lines.extend(row["QUERY PLAN"] for row in plan)
        lines.append("")
        return await fetch_rows(sql, *args)

    queues.fetch_rows = explaining  # type: ignore[assignment]
    bulletin.fetch_rows = explaining  # type: ignore[assignment]
    for phone in (RECEIVING, SENDING, COUNTY, CITY, PROVINCE):
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
        if phone == PROVINCE:
            today = (datetime.now(UTC) + timedelta(hours=8)).date()
            read = await bulletin.bulletin(
                principal, Actor.system("bench"), "330000", today - timedelta(days=29), today
            )
            total = read.figures.transfers[0].total
            world["bulletin_started"] = total.started
            world["bulletin_children"] = len(read.children)
        else:
            page = await queues.waiting_on(principal)
            world[f"queue_{phone}"] = page.total
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "transfers-explain.txt").write_text("\n".join(lines))
    log(f"EXPLAIN ANALYZE written to {OUT / 'transfers-explain.txt'}")


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
    log(f"seeding the demo data and {args.transfers:,} open transfers")
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--seed-only",
            "--database",
            args.database,
            "--schools",
            str(args.schools),
            "--transfers",
            str(args.transfers),
        ],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=1800,
        stdout=subprocess.PIPE,
        text=True,
    ).stdout
    world: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return world


# ---- wrk ----------------------------------------------------------------------------------


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
        f"data    : {world['transfers']:,} open transfers ({world['steps']:,} review steps) "
        f"over {args.schools} schools of one province, seeded in {world['seed_seconds']} s; "
        f"queues (page of 50): receiving {world['queue_' + RECEIVING]:,}, sending "
        f"{world['queue_' + SENDING]:,}, county {world['queue_' + COUNTY]:,}, city "
        f"{world['queue_' + CITY]:,}; bulletin: {world['bulletin_started']:,} within-province "
        f"started in 30 days, {world['bulletin_children']} cities"
    )
    print(
        f"load    : wrk -t{args.threads} -c{args.connections} -d{args.duration}s, "
        f"{args.rounds} rounds, each endpoint in turn"
    )
    print()
    print(
        "|   | endpoint                                 |  req/s | p50 ms | p95 ms | p99 ms "
        "| CPU µs/req | p95 by round |"
    )
    print(
        "|---|------------------------------------------|-------:|-------:|-------:|-------:"
        "|-----------:|--------------|"
    )
    ok = True
    for e in ENDPOINTS:
        if not runs.get(e.key):
            continue
        p95 = med(e.key, "p95_ms")
        if e.key == "B":
            ok = ok and p95 < BULLETIN_P95_MS
        elif e.key != "A":
            ok = ok and p95 < QUEUE_P95_MS
        rounds = " / ".join(f"{run.p95_ms:.1f}" for run in runs[e.key])
        rps, p50, p99 = med(e.key, "rps"), med(e.key, "p50_ms"), med(e.key, "p99_ms")
        cpu = med(e.key, "server_cpu_us")
        print(
            f"| {e.key} | {e.label:<40} | {rps:>6,.0f} | {p50:>6.1f} | {p95:>6.1f} | {p99:>6.1f} "
            f"| {cpu:>10.0f} | {rounds} |"
        )
    del base
    print()
    print(
        f"targets : p95 < {QUEUE_P95_MS:.0f} ms for each queue, < {BULLETIN_P95_MS:.0f} ms "
        f"for the bulletin: {'MET' if ok else 'MISSED'}"
    )
    errors = sum(run.errors for run_list in runs.values() for run in run_list)
    if errors:
        print(f"WARNING: {errors} non-2xx responses or socket errors during the runs")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--transfers", type=int, default=100_000)
    parser.add_argument("--schools", type=int, default=500)
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of warm-up per endpoint")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--database", default="registry_bench_transfers", help="dropped and recreated"
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument(
        "--keep-data", action="store_true", help="reuse the last seeded database as it is"
    )
    parser.add_argument("--seed-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.seed_only:
        asyncio.run(seed_in_this_process(args))
        return 0
    if shutil.which("wrk") is None:
        print("wrk is not installed: run `apt-get install -y wrk` (Debian) and retry.")
        return 2
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    load_before = load_average()
    saved = OUT / "transfers-world.json"
    if args.keep_data and saved.exists():
        world = json.loads(saved.read_text())
        log(f"reusing the seeded database {args.database}")
    else:
        world = prepare_database(args, port)
        OUT.mkdir(parents=True, exist_ok=True)
        saved.write_text(json.dumps(world))
    log(f"seeded: {world}")
    cmd = server_command("granian", "asyncio", port)
    log(f"starting server: {shlex.join(cmd)}")
    proc = subprocess.Popen(cmd, cwd=ROOT, env=server_env(args, port), start_new_session=True)
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as lua:
        lua.write(WRK_REPORT)
    paths = {e.key: e.path or bulletin_path() for e in ENDPOINTS}
    try:
        wait_ready(base, proc, time.monotonic() + 60)
        pgid = os.getpgid(proc.pid)
        runs: dict[str, list[Run]] = {e.key: [] for e in ENDPOINTS}
        for round_no in range(args.rounds):
            tokens = {
                phone: http("POST", f"{base}/auth/login", {"phone": phone, "password": PASSWORD})[
                    "access_token"
                ]
                for phone in (RECEIVING, SENDING, COUNTY, CITY, PROVINCE)
            }
            if round_no == 0:
                for phone in (RECEIVING, SENDING, COUNTY, CITY):
                    page = http("GET", f"{base}/review-steps", token=tokens[phone])
                    if page["total"] != world["queue_" + phone]:
                        raise RuntimeError(f"unexpected queue of {phone}: {page['total']}")
                read = http("GET", base + paths["B"], token=tokens[PROVINCE])
                if len(read["children"]) != world["bulletin_children"]:
                    raise RuntimeError(f"unexpected bulletin: {len(read['children'])} cities")
                for e in ENDPOINTS:
                    run_wrk(
                        args, base + paths[e.key], tokens.get(e.login or ""), args.warmup, pgid,
                        lua.name,
                    )  # fmt: skip
            for e in ENDPOINTS:
                run = run_wrk(
                    args, base + paths[e.key], tokens.get(e.login or ""), args.duration, pgid,
                    lua.name,
                )  # fmt: skip
                runs[e.key].append(run)
                log(
                    f"round {round_no + 1} {e.key} {paths[e.key]}: {run.rps:,.0f} req/s, p50 "
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
