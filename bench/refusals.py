"""What an out-of-scope 404 costs against a 404 for a missing id: the refusal's audit row
written inline (before) and through `pending_refusal` (after, backend/accounts/refusal_queue.py).

One command, from the project root:

    .venv/bin/python bench/refusals.py [--requests 200] [--rounds 5]

It recreates the PostgreSQL database `registry_bench_refusals`, applies the migrations, seeds
the demo data and drives the app in-process (httpx over ASGI, as the tests do; no network) as
the demo registrar: `GET /org/schools/{id}` of a school outside its scope, and of an id that
does not exist, `--requests` of each per round, alternating, in both modes. It prints the
median over the rounds of each round's median latency, and checks that every refusal of the
deferred mode reached the audit log once drained. Redis: database 5 (emptied), 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATABASE = "registry_bench_refusals"
REGISTRAR, PASSWORD = "13900000005", "Demo2026pass"


async def recreate_database() -> None:
    import asyncpg

    conn = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/postgres")
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        await conn.execute(f"CREATE DATABASE {DATABASE}")
    finally:
        await conn.close()


async def timed(client: object, path: str, headers: dict[str, str]) -> float:
    start = time.perf_counter()
    response = await client.get(path, headers=headers)  # type: ignore[attr-defined]
    elapsed = (time.perf_counter() - start) * 1000
    assert response.status_code == 404, response.text
    return elapsed


async def main(args: argparse.Namespace) -> int:
    os.environ.update(
        DATABASE_URL=f"postgresql://postgres@127.0.0.1:5432/{DATABASE}",
        REDIS_URL="redis://127.0.0.1:6379/5",
        RUN_WORKER_INLINE="false",
        SEED_DEMO="false",
        SECOND_FACTOR_REQUIRED="false",
        VAR_DIR=str(ROOT / "var" / "bench-refusals"),
    )
    sys.path.insert(0, str(ROOT))
    await recreate_database()
    import logging

    import httpx
    from redis.asyncio import Redis

    from app import create_app
    from backend.accounts import refusal_queue
    from backend.accounts.tables import Account, AuditLog, School
    from backend.config import get_settings
    from backend.db import close_pool, open_pool
    from backend.migrate import migrate
    from backend.seed import seed_demo

    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request otherwise
    await Redis.from_url(os.environ["REDIS_URL"]).flushdb()
    settings = get_settings()
    await open_pool(settings)
    await migrate()
    await seed_demo(settings)
    await close_pool()
    app = create_app(settings)
    async with app.lifespan():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            login = await client.post(
                "/auth/login", json={"phone": REGISTRAR, "password": PASSWORD}
            )
            headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
            own = await Account.select(Account.school).where(Account.phone == REGISTRAR).first()
            other = await School.select(School.id).where(School.id != own["school"]).first()
            outside, missing = f"/org/schools/{other['id']}", "/org/schools/99999999"
            for _ in range(20):  # warm-up: pools, caches, the code paths
                await timed(client, outside, headers)
                await timed(client, missing, headers)
            results: dict[str, dict[str, list[float]]] = {}
            for mode, deferred in (("inline (before)", False), ("deferred (after)", True)):
                refusal_queue.deferred = lambda d=deferred: d  # type: ignore[misc]
                per_round: dict[str, list[float]] = {"outside": [], "missing": []}
                for _ in range(args.rounds):
                    times: dict[str, list[float]] = {"outside": [], "missing": []}
                    for _ in range(args.requests):
                        times["outside"].append(await timed(client, outside, headers))
                        times["missing"].append(await timed(client, missing, headers))
                    for key, values in times.items():
                        per_round[key].append(statistics.median(values))
                results[mode] = per_round
            before = await AuditLog.count().where(AuditLog.action == "access_denied")
            while await refusal_queue.drain():
                pass
            after = await AuditLog.count().where(AuditLog.action == "access_denied")
    expected = (20 + 2 * args.rounds * args.requests) // 1  # warm-up ran deferred by default
    print(f"{args.rounds} rounds × {args.requests} requests each, median of round medians (ms):")
    for mode, per_round in results.items():
        outside_ms = statistics.median(per_round["outside"])
        missing_ms = statistics.median(per_round["missing"])
        print(
            f"  {mode:17} out of scope {outside_ms:6.2f}   missing {missing_ms:6.2f}   "
            f"difference {outside_ms - missing_ms:+6.2f}"
        )
    audited = after
    print(f"  audit rows of refusals after draining: {audited} (expected {expected})")
    return 0 if audited == expected and before < after else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    sys.exit(asyncio.run(main(parser.parse_args())))
