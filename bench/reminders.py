"""The approvers' daily reminders over one county at scale (PostgreSQL).

    .venv/bin/python bench/reminders.py                  # 60 schools, 3,000 current steps
    .venv/bin/python bench/reminders.py --steps 10000
    .venv/bin/python bench/reminders.py --profile        # + cProfile of the first overdue pass

Recreates the database `registry_bench_remind`, applies the migrations, seeds the demo data,
then `--schools` schools in 西湖区 (330106), two classes each, a teacher per class, a
registrar and a leader per school, and `--steps` current review steps written straight to the
table: half teachers' checks, a quarter registrars' entries, a quarter county reviews, due
dates spread over the 15 days around the run's day (so about a fifth are due soon and a third
overdue). Then `records.reminders` runs for a fixed working day, twice (the second run writes
nothing: the `once` keys), timing each kind. Pushes go through the real outbox into Redis
database 8, flushed afterwards. Prints one JSON line of figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DATABASE = "registry_bench_remind"
REDIS_URL = "redis://127.0.0.1:6379/8"
DAY = date(2026, 12, 2)  # a Wednesday


async def build(schools: int, steps: int) -> None:
    from backend.accounts import org
    from backend.accounts.admin import insert_account
    from backend.accounts.audit import Actor
    from backend.accounts.roles import Role
    from backend.records.review_tables import ReviewStep
    from backend.records.tables import Student

    actor = Actor.system("bench")
    student = (await Student.select(Student.id).first())["id"]  # type: ignore[index]
    seats: list[tuple[str, dict[str, Any]]] = []
    for n in range(schools):
        school = await org.create_school(actor, f"21330108{n:02d}", f"西湖区第{n}学校", "330106")
        for role in (Role.registrar, Role.school_leader):
            await insert_account(
                role,
                f"137{n:04d}{len(role):04d}",
                "x",
                "x",
                must_change_password=False,
                region_code="330106",
                school=school,
            )
        seats.append((Role.registrar.value, {"seat_school": school, "school": school}))
        for grade in (1, 2):
            klass = await org.create_class(actor, school, grade, f"{grade}年级(1)班")
            await insert_account(
                Role.teacher,
                f"136{n:04d}{grade:04d}",
                "x",
                "x",
                must_change_password=False,
                region_code="330106",
                school=school,
                school_class=klass,
            )
            seats.append((Role.teacher.value, {"seat_class": klass, "school": school}))
    any_school = seats[0][1]["school"]
    rows = []
    now = datetime.now(UTC)
    for i in range(steps):
        if i % 4 == 3:
            role, seat = Role.county_reviewer.value, {"seat_region": "330106", "school": any_school}
        else:
            role, seat = seats[i % len(seats)]
        rows.append(
            ReviewStep(
                subject_kind="change_request",
                subject_id=i + 1,
                position=1,
                kind="check",
                role=role,
                student=student,
                school_class=seat.get("seat_class") or 1,
                region_code="330106",
                state="current",
                became_current_at=now,
                due_on=DAY + timedelta(days=i % 15 - 5),
                created_at=now,
                **seat,
            )
        )
    for start in range(0, len(rows), 1000):
        await ReviewStep.insert(*rows[start : start + 1000])
    await ReviewStep.raw("VACUUM ANALYZE")


async def main(args: argparse.Namespace) -> None:
    os.environ.update(
        DATABASE_URL=f"postgresql://postgres@127.0.0.1:5432/{DATABASE}",
        REDIS_URL=REDIS_URL,
        SEED_DEMO="false",
        SECOND_FACTOR_REQUIRED="false",  # staff sign in with a password alone here
        DB_POOL_SIZE="4",
    )
    from arq import create_pool
    from arq.connections import RedisSettings

    from backend.config import get_settings
    from backend.db import close_pool, open_pool
    from backend.migrate import migrate
    from backend.notify.schedule import Run
    from backend.notify.tables import Notification
    from backend.outbox import Outbox
    from backend.records import reminders
    from backend.seed import seed_demo
    from backend.workdays import CHINA

    sys.path.insert(0, str(ROOT / "bench"))
    from http_auth import recreate_database

    await recreate_database(DATABASE)
    await migrate()
    settings = get_settings()
    await seed_demo(settings)
    await open_pool(settings)
    queue = await create_pool(RedisSettings.from_dsn(REDIS_URL))
    try:
        await build(args.schools, args.steps)
        now = datetime.combine(DAY, datetime.min.time().replace(hour=8, minute=30), CHINA)
        run = Run(Outbox(queue), DAY, now.astimezone(UTC))
        figures: dict[str, Any] = {"schools": args.schools, "steps": args.steps}
        for label in ("first", "again"):
            for kind in (reminders.digests, reminders.due_soon, reminders.overdue):
                before = await Notification.count()
                started = time.perf_counter()
                if args.profile and label == "first" and kind is reminders.overdue:
                    import cProfile

                    profile = cProfile.Profile()
                    profile.enable()
                    await kind(run)
                    profile.disable()
                    (ROOT / "bench" / "out").mkdir(exist_ok=True)
                    profile.dump_stats(ROOT / "bench" / "out" / "reminders-overdue.prof")
                else:
                    await kind(run)
                figures[f"{label}.{kind.__name__}.s"] = round(time.perf_counter() - started, 3)
                figures[f"{label}.{kind.__name__}.written"] = await Notification.count() - before
        print(json.dumps(figures))
    finally:
        await queue.flushdb()
        await queue.aclose()
        await close_pool()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--schools", type=int, default=60)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument(
        "--profile", action="store_true", help="cProfile the first overdue pass (bench/out/)"
    )
    asyncio.run(main(parser.parse_args()))
