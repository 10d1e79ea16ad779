"""HTTP benchmark of the authenticated hot path: `GET /health` (A) against `GET /me` (B).

One command, from the project root:

    .venv/bin/python bench/http_auth.py

It recreates the PostgreSQL database `registry_bench`, applies the migrations, seeds the demo
data, starts ONE server process of `app:app` (granian, one worker, by default), logs in as the
demo registrar and loads both endpoints with wrk (64 connections, 2 threads, `--latency`),
alternating A and B for 3 rounds. It prints the median req/s and p99 of each endpoint and the
ratio B/A, then stops the server. Target: B/A >= 0.25 and B's p99 < 60 ms.

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

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DB_NAME = "registry_bench"
DB_URL = f"postgresql://postgres@127.0.0.1:5432/{DB_NAME}"
REDIS_URL = "redis://127.0.0.1:6379/0"
PHONE, PASSWORD = "13900000005", "Demo2026pass"  # the demo registrar
TARGET_RATIO, TARGET_P99_MS = 0.25, 60.0


@dataclass(frozen=True)
class Run:
    rps: float
    p99_ms: float
    requests: int
    errors: int  # non-2xx responses plus socket errors
    server_cpu_us: float  # server CPU time (user+sys, all its processes) per request


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def server_env(port: int) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=DB_URL,
        REDIS_URL=REDIS_URL,
        RUN_WORKER_INLINE="false",
        SEED_DEMO="false",
        HOST="127.0.0.1",
        PORT=str(port),
        PYTHONUNBUFFERED="1",
    )
    return env


# ---- database -----------------------------------------------------------------------------


async def recreate_database() -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
        await conn.execute(f"CREATE DATABASE {DB_NAME}")
    finally:
        await conn.close()


async def seed_in_this_process() -> None:
    """Runs in a child process whose environment points Piccolo at registry_bench."""
    sys.path.insert(0, str(ROOT))
    from backend.config import get_settings
    from backend.seed import seed_demo

    logins = await seed_demo(get_settings())
    print(f"seeded {len(logins)} demo accounts", flush=True)


def prepare_database(port: int) -> None:
    log(f"recreating database {DB_NAME}")
    asyncio.run(recreate_database())
    env = server_env(port)
    log("applying migrations")
    subprocess.run(
        [str(VENV_BIN / "piccolo"), "migrations", "forwards", "backend"],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=120,
        stdout=subprocess.DEVNULL,
    )
    log("seeding demo data")
    subprocess.run(
        [sys.executable, __file__, "--seed-only"],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=60,
        stdout=subprocess.DEVNULL,
    )


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


def http(method: str, url: str, body: object | None = None, token: str | None = None) -> object:
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
    args: argparse.Namespace, runs: dict[str, list[Run]], server_cmd: list[str], load: str
) -> bool:
    def med(name: str, attr: str) -> float:
        return float(statistics.median(getattr(run, attr) for run in runs[name]))

    a_rps, b_rps = med("A", "rps"), med("B", "rps")
    b_p99 = med("B", "p99_ms")
    ratio = b_rps / a_rps if a_rps else 0.0
    ok = ratio >= TARGET_RATIO and b_p99 < TARGET_P99_MS
    print()
    print("Medians of the rounds (req/s, p99, CPU); server CPU covers all its processes.")
    print(f"command : {shlex.join([sys.executable, *sys.argv])}")
    print(
        f"machine : nproc={os.cpu_count()} cpu={cpu_model()!r} python={platform.python_version()}"
    )
    print(f"load avg: {load}  (other work on these cores inflates p99 most of all)")
    print(f"server  : {shlex.join(server_cmd)}  (one process, PostgreSQL {DB_NAME})")
    print(
        f"load    : wrk -t{args.threads} -c{args.connections} -d{args.duration}s --latency, "
        f"{args.rounds} rounds alternating A/B, median of rounds"
    )
    print()
    print("| endpoint         |   req/s | p99 ms | server CPU µs/req | req/s by round |")
    print("|------------------|--------:|-------:|------------------:|----------------|")
    for name, label in (("A", "A GET /health"), ("B", "B GET /me (auth)")):
        rounds = " / ".join(f"{run.rps:,.0f}" for run in runs[name])
        print(
            f"| {label:<16} | {med(name, 'rps'):>7,.0f} | {med(name, 'p99_ms'):>6.1f} "
            f"| {med(name, 'server_cpu_us'):>17.0f} | {rounds} |"
        )
    print()
    print(
        f"B/A = {ratio:.3f}  (target >= {TARGET_RATIO}); B p99 = {b_p99:.1f} ms "
        f"(target < {TARGET_P99_MS:.0f} ms) -> {'MET' if ok else 'MISSED'}"
    )
    errors = sum(run.errors for run_list in runs.values() for run in run_list)
    if errors:
        print(f"WARNING: {errors} non-2xx responses or socket errors during the runs")
    return ok


# ---- main ---------------------------------------------------------------------------------


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
    budget = args.rounds * 2 * (args.duration + 1) + 2 * args.warmup + 60
    if budget > 180:
        log(f"warning: these settings take about {budget} s")

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    load_before = load_average()
    prepare_database(port)
    cmd = server_command(args.server, args.loop, port)
    log(f"starting server: {shlex.join(cmd)}")
    proc = subprocess.Popen(cmd, cwd=ROOT, env=server_env(port), start_new_session=True)
    try:
        wait_ready(base, proc, time.monotonic() + 60)
        pgid = os.getpgid(proc.pid)
        runs: dict[str, list[Run]] = {"A": [], "B": []}
        token = ""
        for round_no in range(args.rounds):
            # Access tokens live 15 minutes: log in afresh right before each round.
            pair = http("POST", f"{base}/auth/login", {"phone": PHONE, "password": PASSWORD})
            token = pair["access_token"]  # type: ignore[index]
            me = http("GET", f"{base}/me", token=token)
            if not isinstance(me, dict) or me.get("phone") != PHONE:
                raise RuntimeError(f"/me answered {me!r}")
            if round_no == 0 and args.warmup:
                log(f"warm-up {args.warmup} s per endpoint")
                run_wrk(args, f"{base}/health", None, args.warmup, pgid)
                run_wrk(args, f"{base}/me", token, args.warmup, pgid)
            for name, path, auth in (("A", "/health", None), ("B", "/me", token)):
                run = run_wrk(args, f"{base}{path}", auth, args.duration, pgid)
                runs[name].append(run)
                log(
                    f"round {round_no + 1} {name} {path}: {run.rps:,.0f} req/s, "
                    f"p99 {run.p99_ms:.1f} ms, {run.server_cpu_us:.0f} µs CPU/req, "
                    f"{run.errors} errors"
                )
    finally:
        stop_server(proc)
    ok = report(args, runs, cmd, f"{load_before} before, {load_average()} after")
    print(f"wrk example: {shlex.join(wrk_command(args, f'{base}/me', '<token>', args.duration))}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
