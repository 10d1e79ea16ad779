"""HTTP benchmark of the authenticated hot paths against `GET /health`.

One command, from the project root:

    .venv/bin/python bench/http_auth.py

It recreates the PostgreSQL database `registry_bench`, applies the migrations, seeds the demo
data and a parent's world (the demo teacher's class topped up to 50 students, a campaign open,
the class's forms issued, every other family's photo uploaded and checked, the demo parent
linked to one child whose photo was checked), starts ONE server process of `app:app` (granian,
one worker, by default) and loads each endpoint with wrk (64 connections, 2 threads,
`--latency`), one after the other, for 3 rounds:

    A  GET /health                         no auth
    B  GET /me                             the demo registrar
    C  GET /my/children                    the demo parent
    D  GET /my/children/{id}               the demo parent, their child's record
    E  GET /uploads/{id}                   the demo parent, their child's checked photo
    F  GET /families                       the demo teacher, their class of 50

It prints the median req/s, p99 and server CPU per request of each, and each one's ratio to
A, then stops the server. Targets: B >= 0.25x A; C, D, E >= 0.4x A; F >= 0.15x A; p99 of
B to E < 60 ms.

Only 127.0.0.1 is touched. Needs wrk (`apt-get install -y wrk`).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import platform
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_BASE_URL = "postgresql://postgres@127.0.0.1:5432"
PASSWORD = "Demo2026pass"
REGISTRAR, TEACHER, PARENT = "13900000005", "13900000006", "13900000007"  # demo logins
CLASS_SIZE = 50  # the demo teacher's class is topped up to this many students
TARGET_P99_MS = 60.0


@dataclass(frozen=True)
class Endpoint:
    key: str
    label: str
    login: str | None  # phone of the demo account that calls it
    target_ratio: float  # of A's req/s
    p99_target: bool  # whether its p99 must stay under TARGET_P99_MS


ENDPOINTS = (
    Endpoint("A", "GET /health", None, 0.0, False),
    Endpoint("B", "GET /me (registrar)", REGISTRAR, 0.25, True),
    Endpoint("C", "GET /my/children", PARENT, 0.4, True),
    Endpoint("D", "GET /my/children/{id}", PARENT, 0.4, True),
    Endpoint("E", "GET /uploads/{id} (parent)", PARENT, 0.4, True),
    Endpoint("F", f"GET /families (class of {CLASS_SIZE})", TEACHER, 0.15, False),
)


@dataclass(frozen=True)
class Run:
    rps: float
    p99_ms: float
    requests: int
    errors: int  # non-2xx responses plus socket errors
    server_cpu_us: float  # server CPU time (user+sys, all its processes) per request


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def db_url(args: argparse.Namespace) -> str:
    return f"{PG_BASE_URL}/{args.database}"


def server_env(args: argparse.Namespace, port: int) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=db_url(args),
        REDIS_URL=args.redis_url,
        RUN_WORKER_INLINE="false",
        SEED_DEMO="false",
        SECOND_FACTOR_REQUIRED="false",  # staff sign in with a password alone here
        HOST="127.0.0.1",
        PORT=str(port),
        PYTHONUNBUFFERED="1",
    )
    return env


# ---- database -----------------------------------------------------------------------------


async def recreate_database(name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await conn.execute(f"CREATE DATABASE {name}")
    finally:
        await conn.close()


async def seed_in_this_process() -> None:
    """Runs in a child process whose environment points Piccolo at the bench's database:
    the demo data, then the parent's world. Prints the ids the loads need as JSON."""
    sys.path.insert(0, str(ROOT))
    from backend.config import get_settings
    from backend.db import close_pool, open_pool
    from backend.seed import seed_demo

    settings = get_settings()
    logins = await seed_demo(settings)
    log(f"seeded {len(logins)} demo accounts")
    await open_pool(settings)
    try:
        world = await parent_world(settings)
    finally:
        await close_pool()
    print(json.dumps(world), flush=True)


async def parent_world(settings: Any) -> dict[str, int]:
    """The demo teacher's class topped up to CLASS_SIZE, a campaign open for the province,
    the class's forms issued, every other student's photo uploaded and checked (`matches`,
    a full report of what was read), and the demo parent linked (confirmed) to the first
    student, whose photo is one of those. Written straight to the tables, as the services
    would: the load is on the reads."""
    from datetime import UTC, date, datetime, timedelta

    from backend.accounts.audit import Actor
    from backend.accounts.tables import Account, SchoolClass
    from backend.db import transaction
    from backend.parents.tables import Upload, UploadCheck
    from backend.records.ids import make_resident_id, registry_number_for
    from backend.records.printing import code_hash, new_form_id, registration_code, snapshot_of
    from backend.records.service import RecordIn, load_fields, write_records
    from backend.records.tables import Campaign, GuardianLink, IssuedForm, Student

    actor = Actor.system("bench")
    now = datetime.now(UTC)
    account_ids = {
        row["phone"]: row["id"]
        for row in await Account.select(Account.id, Account.phone, Account.school_class)
    }
    teacher = await Account.select().where(Account.phone == TEACHER).first()
    klass = await SchoolClass.select().where(SchoolClass.id == teacher["school_class"]).first()
    have = await Student.count().where(Student.school_class == klass["id"])
    records = []
    for i in range(CLASS_SIZE - have):
        born = date(2019, 1 + i % 12, 1 + i % 28)
        sex = "1" if i % 2 else "2"
        id_number = make_resident_id("330106", born, 50 + i, sex)
        fields = {
            "name": f"测试{i:02d}",
            "sex": sex,
            "birth_date": born.isoformat(),
            "ethnicity": "01",
            "nationality": "CN",
            "id_type": "1",
            "id_number": id_number,
            "household_address": "浙江省杭州市西湖区文三路1号",
            "current_address": "浙江省杭州市西湖区文三路1号2幢301室",
            "phone": f"1381111{i:04d}",
            "guardian1_name": f"父亲{i:02d}",
            "guardian1_relation": "1",
            "guardian1_phone": f"1392222{i:04d}",
            "guardian2_name": f"母亲{i:02d}",
            "guardian2_relation": "2",
            "guardian2_phone": f"1373333{i:04d}",
        }
        registry = registry_number_for("1", id_number, "x", fields["name"], fields["birth_date"])
        records.append(
            RecordIn(registry, klass["school"], klass["id"], klass["region_code"], fields)
        )
    key = settings.form_token_key.encode()
    async with transaction():
        await write_records(actor, records)
        campaign = await Campaign.insert(
            Campaign(
                region_code="330000",
                name="2026年秋季学期数据质量核查",
                starts_at=now - timedelta(days=1),
                ends_at=now + timedelta(days=30),
                forms_open=True,
                corrections_open=True,
                created_by=account_ids[REGISTRAR],
                created_at=now,
            )
        )
        campaign_id = campaign[0]["id"]
        students = (
            await Student.select(Student.id, Student.fields)
            .where(Student.school_class == klass["id"])
            .order_by(Student.name)
        )
        assert len(students) == CLASS_SIZE, len(students)
        upload_id = 0
        for n, student in enumerate(students):
            snapshot = snapshot_of(load_fields(student["fields"]))
            form_id = new_form_id()
            form = await IssuedForm.insert(
                IssuedForm(
                    form_id=form_id,
                    campaign=campaign_id,
                    student=student["id"],
                    school=klass["school"],
                    school_class=klass["id"],
                    region_code=klass["region_code"],
                    snapshot=snapshot,
                    registration_code_hash=code_hash(registration_code(form_id, key)),
                    issued_by=account_ids[REGISTRAR],
                    issued_at=now,
                )
            ).returning(IssuedForm.id)
            if n % 2:
                continue
            upload = await Upload.insert(
                Upload(
                    student=student["id"],
                    campaign=campaign_id,
                    form=form[0]["id"],
                    school=klass["school"],
                    school_class=klass["id"],
                    region_code=klass["region_code"],
                    uploaded_by=account_ids[PARENT] if n == 0 else account_ids[TEACHER],
                    on_behalf=n != 0,
                    storage_key=f"photos/bench/{student['id']}.jpg",
                    content_hash=f"{student['id']:064d}",
                    width=3000,
                    height=4000,
                    status="matches",
                    created_at=now,
                )
            ).returning(Upload.id)
            fields = {
                code: {
                    "text": text,
                    "confidence": 0.97,
                    "match": True,
                    "current_match": True,
                    "method": "verify",
                }
                for code, text in snapshot.items()
            }
            await UploadCheck.insert(
                UploadCheck(
                    upload=upload[0]["id"],
                    verdict="matches",
                    message="确认表已核对，信息一致，无需其他操作。",
                    form_id_read=form_id,
                    fields=json.dumps(fields, ensure_ascii=False),
                    differing="[]",
                    corrections="[]",
                    outdated="[]",
                    signed=True,
                    date_written=True,
                    seconds=0.4,
                    timings="{}",
                    created_at=now,
                )
            )
            if n == 0:
                upload_id = upload[0]["id"]
        child_id = students[0]["id"]
        await GuardianLink.insert(
            GuardianLink(
                account=account_ids[PARENT],
                student=child_id,
                guardian_slot=1,
                status="confirmed",
                created_at=now,
            )
        )
    return {"child_id": child_id, "upload_id": upload_id, "class_id": klass["id"]}


def prepare_database(args: argparse.Namespace, port: int) -> dict[str, int]:
    log(f"recreating database {args.database}")
    asyncio.run(recreate_database(args.database))
    env = server_env(args, port)
    log("applying migrations")
    subprocess.run(
        [str(VENV_BIN / "piccolo"), "migrations", "forwards", "backend"],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=120,
        stdout=subprocess.DEVNULL,
    )
    log("seeding demo data and the parent's world")
    out = subprocess.run(
        [sys.executable, __file__, "--seed-only"],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=120,
        stdout=subprocess.PIPE,
        text=True,
    ).stdout
    world: dict[str, int] = json.loads(out.strip().splitlines()[-1])
    return world


# ---- server -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_command(server: str, loop: str, port: int) -> list[str]:
    if server == "granian":
        return [
            str(VENV_BIN / "granian"),
            "--interface", "asgi",
            "--workers", "1",
            "--loop", loop,
            "--host", "127.0.0.1",
            "--port", str(port),
            "--log-level", "warning",
            "--no-access-log",
            "app:app",
        ]  # fmt: skip
    return [
        str(VENV_BIN / "uvicorn"),
        "--loop", loop,
        "--http", "httptools" if loop == "uvloop" else "h11",
        "--host", "127.0.0.1",
        "--port", str(port),
        "--workers", "1",
        "--log-level", "warning",
        "--no-access-log",
        "app:app",
    ]  # fmt: skip


def http(method: str, url: str, body: object | None = None, token: str | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def wait_ready(base: str, proc: subprocess.Popen[bytes], deadline: float) -> None:
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited early with code {proc.returncode}")
        try:
            http("GET", f"{base}/health")
            return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.2)
    raise RuntimeError("server did not answer /health in time")


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    pgid = os.getpgid(proc.pid)
    os.killpg(pgid, signal.SIGINT)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(pgid, signal.SIGKILL)
        proc.wait(timeout=5)


def group_cpu_seconds(pgid: int) -> float:
    """User+system CPU of every live process in the server's process group."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        # fields[0] is field 3 (state): pgrp is field 5, utime 14, stime 15.
        if int(fields[2]) == pgid:
            total += int(fields[11]) + int(fields[12])
    return total / tick


# ---- wrk ----------------------------------------------------------------------------------

_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if match is None:
        raise ValueError(f"unparsable latency {text!r}")
    return float(match.group(1)) * _UNIT_MS[match.group(2)]


def wrk_command(args: argparse.Namespace, url: str, token: str | None, seconds: int) -> list[str]:
    cmd = ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{seconds}s", "--latency"]
    if token:
        cmd += ["-H", f"Authorization: Bearer {token}"]
    return [*cmd, url]


def run_wrk(args: argparse.Namespace, url: str, token: str | None, seconds: int, pgid: int) -> Run:
    cpu_before = group_cpu_seconds(pgid)
    out = subprocess.run(
        wrk_command(args, url, token, seconds),
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 30,
    ).stdout
    cpu = group_cpu_seconds(pgid) - cpu_before
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    errors = 0
    if match := re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        errors += int(match.group(1))
    if match := re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    ):
        errors += sum(int(n) for n in match.groups())
    return Run(rps, p99, requests, errors, cpu / max(requests, 1) * 1e6)


# ---- report -------------------------------------------------------------------------------


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def report(
    args: argparse.Namespace,
    endpoints: list[Endpoint],
    runs: dict[str, list[Run]],
    paths: dict[str, str],
    server_cmd: list[str],
    load: str,
) -> bool:
    def med(key: str, attr: str) -> float:
        return float(statistics.median(getattr(run, attr) for run in runs[key]))

    base_rps = med("A", "rps")
    print()
    print("Medians of the rounds (req/s, p99, CPU); server CPU covers all its processes.")
    print(f"command : {shlex.join([sys.executable, *sys.argv])}")
    print(
        f"machine : nproc={os.cpu_count()} cpu={cpu_model()!r} python={platform.python_version()}"
    )
    print(f"load avg: {load}  (other work on these cores inflates p99 most of all)")
    print(f"server  : {shlex.join(server_cmd)}  (one process, PostgreSQL {args.database})")
    print(
        f"load    : wrk -t{args.threads} -c{args.connections} -d{args.duration}s --latency, "
        f"{args.rounds} rounds, each endpoint in turn, median of rounds"
    )
    print()
    print(
        "|   | endpoint                       |   req/s | p99 ms | CPU µs/req | x /health "
        "| target           | req/s by round |"
    )
    print(
        "|---|--------------------------------|--------:|-------:|-----------:|----------:"
        "|------------------|----------------|"
    )
    ok = True
    for endpoint in endpoints:
        key = endpoint.key
        ratio = med(key, "rps") / base_rps if base_rps else 0.0
        p99 = med(key, "p99_ms")
        met = ratio >= endpoint.target_ratio and (not endpoint.p99_target or p99 < TARGET_P99_MS)
        target = ""
        if endpoint.target_ratio:
            target = f">= {endpoint.target_ratio}x"
            if endpoint.p99_target:
                target += f", <{TARGET_P99_MS:.0f} ms"
            target += " MET" if met else " MISSED"
        ok = ok and met
        rounds = " / ".join(f"{run.rps:,.0f}" for run in runs[key])
        print(
            f"| {key} | {endpoint.label:<30} | {med(key, 'rps'):>7,.0f} | {p99:>6.1f} "
            f"| {med(key, 'server_cpu_us'):>10.0f} | {ratio:>9.3f} | {target:<16} | {rounds} |"
        )
    print()
    print("paths   : " + ", ".join(f"{key} {path}" for key, path in paths.items()))
    print(f"targets : {'all MET' if ok else 'MISSED'}")
    errors = sum(run.errors for run_list in runs.values() for run in run_list)
    if errors:
        print(f"WARNING: {errors} non-2xx responses or socket errors during the runs")
    return ok


# ---- main ---------------------------------------------------------------------------------


def check_answers(base: str, paths: dict[str, str], tokens: dict[str, str], world: Any) -> None:
    """Each endpoint answers as the account it is loaded as, before any load."""
    for endpoint in ENDPOINTS:
        token = tokens.get(endpoint.login or "")
        body = http("GET", f"{base}{paths[endpoint.key]}", token=token)
        if endpoint.key == "B" and body.get("phone") != REGISTRAR:
            raise RuntimeError(f"/me answered {body!r}")
        if endpoint.key == "C" and [c["id"] for c in body] != [world["child_id"]]:
            raise RuntimeError(f"/my/children answered {body!r}")
        if endpoint.key == "F" and body["total"] != CLASS_SIZE:
            raise RuntimeError(f"/families answered a total of {body['total']}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", choices=["granian", "uvicorn"], default="granian")
    parser.add_argument(
        "--loop",
        choices=["asyncio", "uvloop"],
        default="asyncio",
        help="event loop of the server (uvloop: pip install uvloop; uvicorn also gets httptools)",
    )
    parser.add_argument("--duration", type=int, default=12, help="seconds per wrk run")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of warm-up per endpoint")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--only", default="ABCDEF", help="endpoints to load, by letter (A is always loaded)"
    )
    parser.add_argument(
        "--database", default="registry_bench", help="PostgreSQL database (dropped, recreated)"
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--seed-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.seed_only:
        asyncio.run(seed_in_this_process())
        return 0
    if shutil.which("wrk") is None:
        print("wrk is not installed: run `apt-get install -y wrk` (Debian) and retry.")
        return 2
    if args.loop == "uvloop" and importlib.util.find_spec("uvloop") is None:
        print("--loop uvloop needs uvloop: run `.venv/bin/pip install uvloop` and retry.")
        return 2
    if (
        args.server == "uvicorn"
        and args.loop == "uvloop"
        and not importlib.util.find_spec("httptools")
    ):
        print("uvicorn with --loop uvloop also uses httptools: `.venv/bin/pip install httptools`.")
        return 2
    endpoints = [e for e in ENDPOINTS if e.key == "A" or e.key in args.only.upper()]
    budget = args.rounds * len(endpoints) * (args.duration + 1) + len(endpoints) * args.warmup
    log(f"these settings take about {budget + 60} s")

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    load_before = load_average()
    world = prepare_database(args, port)
    paths = {
        "A": "/health",
        "B": "/me",
        "C": "/my/children",
        "D": f"/my/children/{world['child_id']}",
        "E": f"/uploads/{world['upload_id']}",
        "F": "/families",
    }
    cmd = server_command(args.server, args.loop, port)
    log(f"starting server: {shlex.join(cmd)}")
    proc = subprocess.Popen(cmd, cwd=ROOT, env=server_env(args, port), start_new_session=True)
    try:
        wait_ready(base, proc, time.monotonic() + 60)
        pgid = os.getpgid(proc.pid)
        runs: dict[str, list[Run]] = {e.key: [] for e in endpoints}
        for round_no in range(args.rounds):
            # Access tokens live 15 minutes: log in afresh right before each round.
            tokens = {
                phone: http("POST", f"{base}/auth/login", {"phone": phone, "password": PASSWORD})[
                    "access_token"
                ]
                for phone in (REGISTRAR, TEACHER, PARENT)
            }
            if round_no == 0:
                check_answers(base, paths, tokens, world)
                if args.warmup:
                    log(f"warm-up {args.warmup} s per endpoint")
                    for e in endpoints:
                        token = tokens.get(e.login or "")
                        run_wrk(args, f"{base}{paths[e.key]}", token, args.warmup, pgid)
            for e in endpoints:
                token = tokens.get(e.login or "")
                run = run_wrk(args, f"{base}{paths[e.key]}", token, args.duration, pgid)
                runs[e.key].append(run)
                log(
                    f"round {round_no + 1} {e.key} {paths[e.key]}: {run.rps:,.0f} req/s, "
                    f"p99 {run.p99_ms:.1f} ms, {run.server_cpu_us:.0f} µs CPU/req, "
                    f"{run.errors} errors"
                )
    finally:
        stop_server(proc)
    ok = report(args, endpoints, runs, paths, cmd, f"{load_before} before, {load_average()} after")
    print(f"wrk example: {shlex.join(wrk_command(args, f'{base}/me', '<token>', args.duration))}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
