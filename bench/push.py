"""Push fan-out: 10,000 pushes through the APNs and FCM paths to the local gateways.

One command, from the project root:

    .venv/bin/python bench/push.py                       # 10,000 pushes, max_jobs 10 and 100
    .venv/bin/python bench/push.py --pushes 2000 --max-jobs 10 --workers 2
    .venv/bin/python bench/push.py --profile --pushes 2000   # in process: where the CPU goes

It recreates the PostgreSQL database `registry_bench_push` (`BENCH_DB_NAME`), applies the
migrations, and writes `--pushes`/2 accounts, each with one APNs and one FCM device (one
signed-in session). It starts the fake gateways of `tests/notify/gateways.py` in this process
(APNs and FCM both HTTP/2 over TLS, verifying the ES256 provider token and every FCM bearer
as in the tests), then, for each `--max-jobs` value: starts `--workers` real arq worker
processes (the production `push_notification` job, its channels on the shared HTTP/2 client;
only the push job is registered, and the OCR warm-up is skipped), writes one notification per
account, and enqueues the jobs `inbox.notify` asks the outbox for after the commit — one per
chunk of `--chunk` (200) notifications, job id `push:{first}-{last}` — as fast as Redis takes
them. It waits until the gateways received every push, then reports pushes/s (from the first
enqueue to the last push received), p50/p99 of enqueue-to-delivery per push, and CPU seconds
per 1,000 pushes of the workers (start-up included) and of this process (the gateways).
Checks: every push arrived exactly once and every attempt is `sent`.

`--profile` runs no arq: `push.deliver` on the chunks in this process, the gateways in a
thread of their own (their CPU counted apart), three passes: channels that answer at once (the
job's own work: database, payloads), the real channels, and the real channels under cProfile
(the share of each library); `--top N` prints the N costliest functions.

Redis database `BENCH_REDIS_URL` (default redis://127.0.0.1:6379/5) is flushed. Figures and
the command line go to `bench/out/push.json` (`push_profile.json`). Target: ≥ 500 pushes/s.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PG_BASE_URL = "postgresql://postgres@127.0.0.1:5432"
DB_NAME = os.environ.get("BENCH_DB_NAME", "registry_bench_push")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/5")
OUT = ROOT / "bench" / "out"
TARGET_PER_SECOND = 500.0


def base_env(var_dir: str) -> dict[str, str]:
    return {
        "DATABASE_URL": f"{PG_BASE_URL}/{DB_NAME}",
        "REDIS_URL": REDIS_URL,
        "VAR_DIR": var_dir,
        "SEED_DEMO": "false",
        "SECOND_FACTOR_REQUIRED": "false",  # staff sign in with a password alone here
        "RUN_WORKER_INLINE": "false",
        "DB_POOL_SIZE": os.environ.get("DB_POOL_SIZE", "8"),
    }


def push_env(settings: Any) -> dict[str, str]:
    """The workers' push settings, as the environment production sets them."""
    return {
        "PUSH_CA_FILE": settings.ca_file,
        "PUSH_TIMEOUT_SECONDS": "10",
        "FCM_SERVICE_ACCOUNT_FILE": settings.fcm_service_account_file,
        "FCM_BASE_URL": settings.fcm_base_url,
        "APNS_KEY_FILE": settings.apns_key_file,
        "APNS_KEY_ID": settings.apns_key_id,
        "APNS_TEAM_ID": settings.apns_team_id,
        "APNS_TOPIC": settings.apns_topic,
        "APNS_BASE_URL": settings.apns_base_url,
    }


# --- the worker process ---


def run_worker(max_jobs: int) -> None:
    """A production worker with only the push job: `python bench/push.py --worker N`."""
    from contextlib import AsyncExitStack

    from arq import func

    from backend.config import get_settings
    from backend.notify.push import PUSH_TRIES
    from backend.resources import open_resources
    from backend.worker import POLL_DELAY, ResilientWorker, push_notification, redis_settings

    settings = get_settings()
    if os.environ.get("BENCH_PUSH_STREAMS"):
        from backend.notify import push

        push.PUSH_STREAMS = int(os.environ["BENCH_PUSH_STREAMS"])

    async def startup(ctx: dict[str, Any]) -> None:
        stack = AsyncExitStack()
        resources = await stack.enter_async_context(
            open_resources(settings, REDIS_URL, queue=ctx["redis"])
        )
        ctx["close_resources"] = stack.aclose
        ctx.update(resources.worker_context())
        print("ready", flush=True)

    async def shutdown(ctx: dict[str, Any]) -> None:
        await ctx["close_resources"]()

    ResilientWorker(
        functions=[func(push_notification, max_tries=PUSH_TRIES)],
        redis_settings=redis_settings(settings),
        on_startup=startup,
        on_shutdown=shutdown,
        poll_delay=POLL_DELAY,
        max_jobs=max_jobs,
        log_results=False,
    ).run()


# --- the bench ---


async def prepare(accounts: int) -> list[int]:
    import asyncpg

    admin = await asyncpg.connect(f"{PG_BASE_URL}/postgres")
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
        await admin.execute(f"CREATE DATABASE {DB_NAME}")
    finally:
        await admin.close()
    from backend.migrate import migrate

    await migrate()
    from backend.accounts.tables import Account, AuthSession

    now = datetime.now(UTC)
    ids: list[int] = []
    for start in range(0, accounts, 1000):
        rows = await Account.insert(
            *[
                Account(
                    phone=f"170{i:08d}",
                    name="bench",
                    role="parent",
                    password_hash="-",
                    password_changed_at=now,
                    scope_kind="guardian",
                    created_at=now,
                    last_active_at=now,
                )
                for i in range(start, min(start + 1000, accounts))
            ]
        ).returning(Account.id)
        ids += [row["id"] for row in rows]
    sessions = {account: uuid.uuid4() for account in ids}
    for start in range(0, len(ids), 1000):
        chunk = ids[start : start + 1000]
        await AuthSession.insert(
            *[AuthSession(id=sessions[a], account=a, created_at=now) for a in chunk]
        )
    return ids


async def add_devices(ids: list[int]) -> None:
    from backend.accounts.tables import AuthSession
    from backend.notify.tables import Device

    now = datetime.now(UTC)
    session_of = {
        row["account"]: row["id"]
        for row in await AuthSession.select(AuthSession.id, AuthSession.account)
    }
    rows = []
    for account in ids:
        for channel, token in (("apns", f"{account:064x}"), ("fcm", f"fcm-{account:012d}")):
            rows.append(
                Device(
                    account=account,
                    session=session_of[account],
                    channel=channel,
                    token=token,
                    token_hash=hashlib.sha256(f"{channel}:{token}".encode()).hexdigest(),
                    created_at=now,
                    last_seen_at=now,
                )
            )
    for start in range(0, len(rows), 1000):
        await Device.insert(*rows[start : start + 1000])


async def one_round(
    args: argparse.Namespace, ids: list[int], gateways: Any, env: dict[str, str], max_jobs: int
) -> dict[str, Any]:
    from arq import create_pool
    from arq.connections import RedisSettings

    from backend.notify.inbox import PUSH_JOB, push_chunks, push_job_id
    from backend.notify.tables import Notification, PushAttempt

    await PushAttempt.delete(force=True)
    await Notification.delete(force=True)
    for items in gateways.received.values():
        items.clear()
    pool = await create_pool(RedisSettings.from_dsn(REDIS_URL))
    await pool.flushdb()

    workers = [
        subprocess.Popen(  # noqa: ASYNC220 (started once per round, before the clock starts)
            [sys.executable, __file__, "--worker", str(max_jobs)],
            env={**os.environ, **env, "BENCH_PUSH_STREAMS": str(args.streams or "")},
            stdout=subprocess.PIPE,
            stderr=None if args.verbose else subprocess.DEVNULL,
            start_new_session=True,
        )
        for _ in range(args.workers)
    ]
    for worker in workers:  # each says "ready" once its resources are open
        assert worker.stdout is not None
        await asyncio.to_thread(worker.stdout.readline)

    now = datetime.now(UTC)
    notifications = []
    for start in range(0, len(ids), 1000):
        rows = await Notification.insert(
            *[
                Notification(
                    account=account,
                    category="review_digest",
                    title="有 3 条待审核",
                    created_at=now,
                    push_at=now,
                )
                for account in ids[start : start + 1000]
            ]
        ).returning(Notification.id)
        notifications += [row["id"] for row in rows]

    expected = 2 * len(notifications)
    enqueued_at: dict[int, float] = {}
    cpu_before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.time()

    async def enqueue(chunk: list[int]) -> None:
        at = time.time()
        enqueued_at.update(dict.fromkeys(chunk, at))
        await pool.enqueue_job(PUSH_JOB, chunk, _job_id=push_job_id(chunk))

    # The jobs `inbox.notify` asks the outbox for: one per chunk of notifications due at once.
    chunks = [ids for _, ids in push_chunks([(n, now) for n in notifications], args.chunk)]
    for start in range(0, len(chunks), 100):
        await asyncio.gather(*(enqueue(chunk) for chunk in chunks[start : start + 100]))
    enqueue_seconds = time.time() - started
    deadline = time.time() + args.timeout
    next_report = time.time() + 10
    while gateways.count() < expected and time.time() < deadline:
        await asyncio.sleep(0.05)
        if time.time() > next_report:
            print(f"  max_jobs {max_jobs}: {gateways.count()} of {expected} received", flush=True)
            next_report += 10
    cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    received = [item for items in gateways.received.values() for item in items]
    while await PushAttempt.count() < len(received) and time.time() < deadline + 10:  # noqa: ASYNC110
        await asyncio.sleep(0.1)  # the last attempts are written after the gateway answered

    for worker in workers:
        os.killpg(worker.pid, signal.SIGTERM)
    for worker in workers:
        try:
            await asyncio.to_thread(worker.wait, 15)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            await asyncio.to_thread(worker.wait)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    await pool.aclose()

    def notification_of(item: Any) -> int:
        data = item.payload if item.channel == "apns" else item.payload["data"]
        return int(data["notification_id"])

    latencies = sorted((item.at - enqueued_at[notification_of(item)]) * 1000 for item in received)
    per_device = {(item.channel, item.token, notification_of(item)) for item in received}
    outcomes = {
        row["outcome"]: row["n"]
        for row in await PushAttempt.raw(
            "SELECT outcome, count(*) AS n FROM push_attempt GROUP BY outcome"
        )
    }
    last = max((item.at for item in received), default=started)
    seconds = last - started
    return {
        "max_jobs": max_jobs,
        "workers": args.workers,
        "pushes": expected,
        "received": len(received),
        "duplicates": len(received) - len(per_device),
        "attempts": outcomes,
        "enqueue_seconds": round(enqueue_seconds, 2),
        "seconds": round(seconds, 2),
        "pushes_per_second": round(len(received) / seconds, 1) if seconds else 0.0,
        "p50_ms": round(statistics.median(latencies), 1) if latencies else None,
        "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1], 1) if latencies else None,
        "gateway_cpu_s_per_1000": round(
            1000
            * (cpu_after.ru_utime + cpu_after.ru_stime - cpu_before.ru_utime - cpu_before.ru_stime)
            / max(len(received), 1),
            2,
        ),
        "_children_cpu_total": children.ru_utime + children.ru_stime,
    }


# --- where a push's CPU goes (--profile) ---

BUCKETS = (  # a profiled function's file → what it is part of
    ("database", ("piccolo", "asyncpg", "aiosqlite", "sqlite3")),
    ("http/2 client", ("httpx", "httpcore", "/h2/", "hpack", "hyperframe", "ssl.py", "anyio")),
    ("jwt", ("/jwt/", "cryptography")),
    ("payload/json", ("json",)),
    ("event loop", ("asyncio",)),
    ("push job", ("backend/notify",)),
)


SYSTEM_CALLS = ("_socket", "_ssl", "select.epoll")  # built-ins: the kernel and OpenSSL


def bucket_of(filename: str, function: str) -> str:
    if filename == "~" and any(part in function for part in SYSTEM_CALLS):
        return "sockets and TLS"
    for name, parts in BUCKETS:
        if any(part in filename for part in parts):
            return name
    return "other"


class Answered:
    """A channel that answers at once: what is left is the job's own work (database, payload)."""

    def __init__(self, name: str) -> None:
        self.name = name

    async def send(self, target: Any, message: Any) -> Any:
        from backend.notify.channels.base import Outcome, SendResult

        return SendResult(Outcome.sent, 200)


async def profile(args: argparse.Namespace, var_dir: str) -> int:
    """In process, no arq: `push.deliver` on chunks of `--chunk`, the gateways in a thread of
    their own (their CPU counted apart). Three passes over the same notifications: channels
    that answer at once (database and payload only), the real channels, the real channels
    under cProfile (the split by library)."""
    import cProfile
    import pstats
    import threading

    from backend.notify import push as push_job
    from backend.notify.tables import Notification, PushAttempt
    from tests.notify.gateways import start_gateways

    if args.streams:
        push_job.PUSH_STREAMS = args.streams
    ids = await prepare(args.pushes // 2)
    await add_devices(ids)
    now = datetime.now(UTC)
    notifications: list[int] = []
    for start in range(0, len(ids), 1000):
        rows = await Notification.insert(
            *[
                Notification(
                    account=a,
                    category="review_digest",
                    title="有 3 条待审核",
                    created_at=now,
                    push_at=now,
                )
                for a in ids[start : start + 1000]
            ]
        ).returning(Notification.id)
        notifications += [row["id"] for row in rows]
    chunks = [notifications[i : i + args.chunk] for i in range(0, len(notifications), args.chunk)]

    ready = threading.Event()
    held: dict[str, Any] = {}

    def serve() -> None:
        async def main() -> None:
            async with start_gateways(Path(var_dir), tls=("apns", "fcm")) as gateways:
                held.update(
                    gateways=gateways, stop=asyncio.Event(), loop=asyncio.get_running_loop()
                )
                ready.set()
                await held["stop"].wait()

        asyncio.run(main())

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    ready.wait()
    gateways = held["gateways"]
    gateway_clock = time.pthread_getcpuclockid(thread.ident or 0)

    async def one_pass(channels: Any, profiler: Any = None) -> dict[str, float]:
        await PushAttempt.delete(force=True)
        await Notification.update({Notification.pushed_at: None}, force=True)
        for items in gateways.received.values():
            items.clear()
        gateway_before = time.clock_gettime(gateway_clock)
        cpu_before, wall_before = time.thread_time(), time.perf_counter()
        if profiler:
            profiler.enable()
        for chunk in chunks:
            await push_job.deliver(channels, chunk)
        if profiler:
            profiler.disable()
        cpu = time.thread_time() - cpu_before
        pushes = 2 * len(notifications)
        return {
            "job_cpu_ms_per_push": round(1000 * cpu / pushes, 3),
            "gateway_cpu_ms_per_push": round(
                1000 * (time.clock_gettime(gateway_clock) - gateway_before) / pushes, 3
            ),
            "pushes_per_second": round(pushes / (time.perf_counter() - wall_before), 1),
        }

    report: dict[str, Any] = {
        "chunk": args.chunk,
        "streams": push_job.PUSH_STREAMS,
        "pushes": 2 * len(notifications),
    }
    report["answered_at_once"] = await one_pass({"apns": Answered("apns"), "fcm": Answered("fcm")})
    async with gateways.client_and_channels(timeout_seconds=10) as (_, channels):
        report["real_channels"] = await one_pass(channels)
        profiler = cProfile.Profile()
        await one_pass(channels, profiler)
    held["loop"].call_soon_threadsafe(held["stop"].set)
    thread.join(5)
    stats = pstats.Stats(profiler)
    split: dict[str, float] = {}
    total = 0.0
    for (filename, _, function), (_, _, tottime, _, _) in stats.stats.items():  # type: ignore[attr-defined]
        bucket = bucket_of(filename, function)
        split[bucket] = split.get(bucket, 0.0) + tottime
        total += tottime
    report["profiled_split_percent"] = {
        name: round(100 * seconds / total, 1)
        for name, seconds in sorted(split.items(), key=lambda item: -item[1])
    }
    if args.top:
        stats.sort_stats("tottime").print_stats(args.top)
    report["load"] = [round(x, 1) for x in os.getloadavg()]
    report["argv"] = sys.argv[1:]
    OUT.mkdir(exist_ok=True)
    (OUT / "push_profile.json").write_text(json.dumps(report, indent=2, ensure_ascii=False))
    print(json.dumps(report, indent=2, ensure_ascii=False))
    return 0


async def bench(args: argparse.Namespace, var_dir: str) -> int:
    from tests.notify.gateways import start_gateways

    ids = await prepare(args.pushes // 2)
    await add_devices(ids)
    results = []
    async with start_gateways(Path(var_dir), tls=("apns", "fcm")) as gateways:
        env = push_env(gateways.settings())
        children_before = 0.0
        for max_jobs in args.max_jobs:
            result = await one_round(args, ids, gateways, env, max_jobs)
            total = result.pop("_children_cpu_total")
            result["worker_cpu_s_per_1000"] = round(
                1000 * (total - children_before) / max(result["received"], 1), 2
            )
            children_before = total
            results.append(result)
            print(json.dumps(result, ensure_ascii=False), flush=True)
    load = os.getloadavg()
    OUT.mkdir(exist_ok=True)
    (OUT / "push.json").write_text(
        json.dumps({"argv": sys.argv[1:], "load": load, "rounds": results}, indent=2)
    )
    print(f"\nload average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}; {os.cpu_count()} cores")
    print("max_jobs  workers  pushes/s  p50 ms  p99 ms  worker CPU s/1000  gateway CPU s/1000")
    for r in results:
        print(
            f"{r['max_jobs']:>8}  {r['workers']:>7}  {r['pushes_per_second']:>8}  "
            f"{r['p50_ms']:>6}  {r['p99_ms']:>6}  {r['worker_cpu_s_per_1000']:>17}  "
            f"{r['gateway_cpu_s_per_1000']:>18}"
        )
    # A `retry` attempt is allowed (a gateway slow past the timeout on a loaded machine): the
    # push then arrives on the next try, once.
    failed = [
        r
        for r in results
        if r["received"] != r["pushes"]
        or r["duplicates"]
        or r["attempts"].get("sent") != r["pushes"]
        or set(r["attempts"]) - {"sent", "retry"}
    ]
    if failed:
        print("FAILED: a push missing, sent twice, or refused", file=sys.stderr)
        return 1
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pushes", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--max-jobs", type=int, nargs="+", default=[10, 100])
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--verbose", action="store_true", help="show the workers' log")
    parser.add_argument(
        "--profile", action="store_true", help="in process, no arq: where a push's CPU goes"
    )
    parser.add_argument(
        "--chunk", type=int, default=200, help="notifications a job (inbox.PUSH_CHUNK)"
    )
    parser.add_argument("--streams", type=int, help="sends in flight a process (push.PUSH_STREAMS)")
    parser.add_argument("--top", type=int, default=0, help="--profile: print the top functions")
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        run_worker(args.worker)
        return 0
    var_dir = tempfile.mkdtemp(prefix="bench-push-")
    os.environ.update(base_env(var_dir))
    return asyncio.run(profile(args, var_dir) if args.profile else bench(args, var_dir))


if __name__ == "__main__":
    sys.exit(main())
