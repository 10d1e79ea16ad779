"""A long schemathesis run against a real server process on PostgreSQL: no answer may be a 5xx.

One command, from the project root:

    .venv/bin/python bench/schemathesis_run.py                  # ≈ 21,000 requests
    .venv/bin/python bench/schemathesis_run.py --examples 10    # a quick look

It recreates the PostgreSQL database `registry_bench_schemathesis`, applies the migrations,
seeds the demo data (one login per role), starts ONE server process (`uvicorn app:app`, one
worker, on a free 127.0.0.1 port, RUN_WORKER_INLINE=false), logs in as the demo parent,
teacher, registrar and county reviewer, reads `/schema/openapi.json`, and for every role, every
operation and both generation modes (data that fits the schema, and data that does not) sends
`--examples` hypothesis-generated requests. It prints the requests made, the statuses, and the
count of 5xx by endpoint with one request that produced each (as curl), writes the server's log
to `bench/out/schemathesis-server.log`, stops the server, and exits 1 if any answer was a 5xx.

Only 127.0.0.1 is touched; Redis database 14 is flushed before the run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter, defaultdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
OUT = ROOT / "bench" / "out"
PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DB_NAME = "registry_bench_schemathesis"
DB_URL = f"postgresql://postgres@127.0.0.1:5432/{DB_NAME}"
REDIS_URL = "redis://127.0.0.1:6379/14"
PASSWORD = "Demo2026pass"
ROLES = ["parent", "teacher", "registrar", "county_reviewer"]
REQUESTS_ARGUMENTS = {"method", "url", "headers", "params", "data", "json", "files", "cookies"}


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def server_env(port: int) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=DB_URL,
        REDIS_URL=REDIS_URL,
        RUN_WORKER_INLINE="false",
        SEED_DEMO="false",
        SECOND_FACTOR_REQUIRED="false",  # staff sign in with a password alone here
        OPENAPI_ENABLED="true",
        HOST="127.0.0.1",
        PORT=str(port),
        PYTHONUNBUFFERED="1",
        # The run sends thousands of wrong logins from one address; it is not a throttling test.
        LOGIN_MAX_FAILURES_PER_ADDRESS="100000000",
        LOGIN_MAX_FAILURES_PER_ACCOUNT="100000000",
    )
    return env


async def recreate_database() -> None:
    import asyncpg
    from redis.asyncio import Redis

    conn = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
        await conn.execute(f"CREATE DATABASE {DB_NAME}")
    finally:
        await conn.close()
    redis = Redis.from_url(REDIS_URL)
    await redis.flushdb()
    await redis.aclose()


async def seed_in_this_process() -> None:
    sys.path.insert(0, str(ROOT))
    from backend.config import get_settings
    from backend.seed import seed_demo

    logins = await seed_demo(get_settings())
    print(json.dumps({login.role.value: login.phone for login in logins}), flush=True)


def prepare_database(port: int) -> dict[str, str]:
    log(f"recreating database {DB_NAME}")
    asyncio.run(recreate_database())
    env = server_env(port)
    log("applying migrations")
    subprocess.run(
        [str(VENV_BIN / "piccolo"), "migrations", "forwards", "backend"],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=300,
        stdout=subprocess.DEVNULL,
    )
    log("seeding demo data")
    seeded = subprocess.run(
        [sys.executable, __file__, "--seed-only"],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=300,
        capture_output=True,
        text=True,
    )
    phones: dict[str, str] = json.loads(seeded.stdout.strip().splitlines()[-1])
    return phones


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(port: int, log_path: Path) -> subprocess.Popen[bytes]:
    command = [
        str(VENV_BIN / "uvicorn"),
        "--host", "127.0.0.1",
        "--port", str(port),
        "--workers", "1",
        "--log-level", "warning",
        "--no-access-log",
        "app:app",
    ]  # fmt: skip
    log(f"starting: {' '.join(command)}")
    with log_path.open("wb") as sink:
        return subprocess.Popen(
            command, cwd=ROOT, env=server_env(port), stdout=sink, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip


def wait_ready(base: str, proc: subprocess.Popen[bytes], deadline: float) -> None:
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited early with code {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{base}/health", timeout=5):
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.3)
    raise RuntimeError("server did not answer /health in time")


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGINT)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


class Sessions:
    """A bearer token per role, renewed when an answer says it is no longer valid (the run
    itself logs out, and may change a status that ends a session)."""

    def __init__(self, http: Any, base: str, phones: dict[str, str]) -> None:
        self.http, self.base, self.phones = http, base, phones
        self.tokens: dict[str, str] = {}
        self.renewals = 0

    def token(self, role: str) -> str | None:
        if role not in self.tokens:
            response = self.http.post(
                f"{self.base}/auth/login",
                json={"phone": self.phones[role], "password": PASSWORD},
                timeout=30,
            )
            if response.status_code != 200:
                log(f"login as {role} failed: {response.status_code} {response.text[:200]}")
                return None
            self.tokens[role] = response.json()["access_token"]
            self.renewals += 1
        return self.tokens[role]

    def invalidate(self, role: str) -> None:
        self.tokens.pop(role, None)


def run_role(
    examples_per: int, seed_value: int, base: str, phones: dict[str, str], role: str
) -> dict[str, Any]:
    """One role's share of the run, in its own process: every operation, both modes."""
    import requests
    import schemathesis
    from hypothesis import HealthCheck, Phase, given, seed, settings
    from hypothesis.errors import Unsatisfiable
    from schemathesis import GenerationMode

    http = requests.Session()
    raw = http.get(f"{base}/schema/openapi.json", timeout=30).json()
    schema = schemathesis.openapi.from_dict(raw)
    operations = [result.ok() for result in schema.get_all_operations()]
    sessions = Sessions(http, base, phones)
    statuses: Counter[int] = Counter()
    by_endpoint: Counter[str] = Counter()
    server_errors: Counter[str] = Counter()
    examples: dict[str, str] = {}
    transport_errors: Counter[str] = Counter()
    per_mode: dict[str, Counter[int]] = defaultdict(Counter)
    started = time.monotonic()

    def make_test(operation: Any, mode: GenerationMode) -> Any:
        endpoint = f"{operation.method.upper()} {operation.path}"

        @seed(seed_value + ROLES.index(role))  # each role its own data
        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=examples_per,
            database=None,
            deadline=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def send(case: Any) -> None:
            token = sessions.token(role)
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            kwargs = case.as_transport_kwargs(base_url=base, headers=headers)
            kwargs = {k: v for k, v in kwargs.items() if k in REQUESTS_ARGUMENTS}
            try:
                response = http.request(**kwargs, timeout=60, allow_redirects=False)
            except requests.RequestException as exc:
                transport_errors[f"{endpoint}: {type(exc).__name__}"] += 1
                return
            statuses[response.status_code] += 1
            per_mode[mode.value][response.status_code] += 1
            by_endpoint[endpoint] += 1
            if response.status_code >= 500:
                server_errors[endpoint] += 1
                examples.setdefault(
                    endpoint,
                    f"[{role}] "
                    + case.as_curl_command(headers=dict(response.request.headers))
                    + f"  -> {response.status_code} {response.text[:200]}",
                )
            if response.status_code == 401 and token:
                sessions.invalidate(role)  # logged out, or the session ended: log in again

        return send

    last_report = 0
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            with contextlib.suppress(Unsatisfiable):  # nothing to make invalid
                make_test(operation, mode)()
        done = sum(statuses.values())
        if done - last_report >= 1000:
            last_report = done
            rate = done / (time.monotonic() - started)
            log(f"{role}: {done} requests, {sum(server_errors.values())} 5xx, {rate:.0f} req/s")
    return {
        "statuses": dict(statuses),
        "per_mode": {mode: dict(counts) for mode, counts in per_mode.items()},
        "by_endpoint": dict(by_endpoint),
        "server_errors": dict(server_errors),
        "examples": examples,
        "transport_errors": dict(transport_errors),
        "logins": sessions.renewals,
        "operations": len(operations),
    }


def run(args: argparse.Namespace, base: str, phones: dict[str, str]) -> int:
    started = time.monotonic()
    log(f"{len(ROLES)} roles in parallel x every operation x 2 modes x {args.examples} examples,"
        f" seed {args.seed}")  # fmt: skip
    with ProcessPoolExecutor(max_workers=len(ROLES)) as pool:
        futures = [
            pool.submit(run_role, args.examples, args.seed, base, phones, role) for role in ROLES
        ]
        results = [future.result() for future in futures]
    elapsed = time.monotonic() - started

    statuses: Counter[int] = Counter()
    per_mode: dict[str, Counter[int]] = defaultdict(Counter)
    by_endpoint: Counter[str] = Counter()
    server_errors: Counter[str] = Counter()
    transport_errors: Counter[str] = Counter()
    examples: dict[str, str] = {}
    for result in results:
        statuses.update({int(k): v for k, v in result["statuses"].items()})
        for mode, counts in result["per_mode"].items():
            per_mode[mode].update({int(k): v for k, v in counts.items()})
        by_endpoint.update(result["by_endpoint"])
        server_errors.update(result["server_errors"])
        transport_errors.update(result["transport_errors"])
        for endpoint, example in result["examples"].items():
            examples.setdefault(endpoint, example)
    total = sum(statuses.values())
    print()
    print(f"operations: {results[0]['operations']}; roles: {', '.join(ROLES)}")
    print(f"requests: {total} in {elapsed:.0f} s ({total / elapsed:.0f} req/s)")
    print(f"by status: {dict(sorted(statuses.items()))}")
    for mode_name, counts in sorted(per_mode.items()):
        print(f"  {mode_name}: {dict(sorted(counts.items()))}")
    print(f"5xx: {sum(server_errors.values())}")
    for endpoint, count in server_errors.most_common():
        print(f"  {count:6d}  {endpoint} (of {by_endpoint[endpoint]})")
        print(f"          e.g. {examples[endpoint][:800]}")
    if transport_errors:
        print(f"transport errors: {dict(transport_errors)}")
    print(f"logins made: {sum(r['logins'] for r in results)}; seed: {args.seed}")
    print(f"command: .venv/bin/python bench/schemathesis_run.py --examples {args.examples} "
          f"--seed {args.seed}")  # fmt: skip
    return 1 if server_errors or total < args.min_requests else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=80, help="per role, operation and mode")
    parser.add_argument("--seed", type=int, default=None, help="hypothesis seed (random if unset)")
    parser.add_argument("--min-requests", type=int, default=20_000, help="fail if fewer were made")
    parser.add_argument("--seed-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.seed_only:
        asyncio.run(seed_in_this_process())
        return 0
    if args.seed is None:
        args.seed = random.randrange(2**32)
    OUT.mkdir(parents=True, exist_ok=True)
    port = free_port()
    phones = prepare_database(port)
    base = f"http://127.0.0.1:{port}"
    log_path = OUT / "schemathesis-server.log"
    proc = start_server(port, log_path)
    try:
        wait_ready(base, proc, time.monotonic() + 120)
        return run(args, base, phones)
    finally:
        stop_server(proc)
        log(f"server log: {log_path}")


if __name__ == "__main__":
    sys.exit(main())
