"""The outbox (backend/outbox.py): a job a transaction asks for reaches the queue once, after
the commit; never when the transaction rolls back; and, when the process dies between the
commit and the enqueue or Redis is down then, the worker's sweeper delivers it."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from arq.connections import ArqRedis
from litestar import Litestar

from backend import outbox as outbox_module
from backend.config import Settings
from backend.db import transaction
from backend.outbox import Outbox, OutboxEntry
from backend.records.tables import FormBatch
from backend.worker import send_outbox_message, sweep_outbox
from tests.factories import World, build_world, job_ctx, make_students, open_campaign, run_jobs
from tests.parents.helpers import issue_forms


@pytest.fixture
async def world(settings: Settings) -> World:
    world = await build_world(settings)
    await make_students(world, "A1", 2)
    await open_campaign()
    return world


async def queued(app: Litestar) -> list[str]:
    return sorted(job.job_id for job in await app.state.arq.queued_jobs())


async def entries() -> list[dict[str, Any]]:
    return await OutboxEntry.select().order_by(OutboxEntry.id)  # type: ignore[no-any-return]


async def the_batch() -> dict[str, Any]:
    batch = await FormBatch.select(FormBatch.id, FormBatch.status).first()
    assert batch is not None
    return batch


async def test_a_job_is_enqueued_once_and_only_after_the_commit(app: Litestar) -> None:
    outbox = Outbox(app.state.arq)
    async with transaction():
        await outbox.job("sweep_imports", job_id="sweep_imports:test")
        async with transaction():  # a service called inside another's transaction
            await outbox.job("sweep_form_batches", 0, job_id="sweep_batches:test")
        assert await queued(app) == []  # not before the outer commit

    assert await queued(app) == ["sweep_batches:test", "sweep_imports:test"]
    assert all(row["delivered_at"] is not None for row in await entries())
    # Neither delivering again nor the sweeper sends it a second time.
    assert await outbox.deliver() == 0
    assert await sweep_outbox(job_ctx(app), 0) == 0
    assert await queued(app) == ["sweep_batches:test", "sweep_imports:test"]


async def test_nothing_is_written_or_enqueued_when_the_transaction_rolls_back(
    app: Litestar,
) -> None:
    async def write_that_fails() -> None:
        async with transaction():
            await Outbox(app.state.arq).job("sweep_imports", job_id="sweep_imports:test")
            raise RuntimeError("the write after the job failed")

    with pytest.raises(RuntimeError, match="the write after the job failed"):
        await write_that_fails()

    assert await entries() == []
    assert await queued(app) == []
    assert await sweep_outbox(job_ctx(app), 0) == 0
    assert await queued(app) == []


async def test_a_job_outside_a_transaction_is_refused_and_not_written(app: Litestar) -> None:
    with pytest.raises(RuntimeError, match="transaction"):
        await Outbox(app.state.arq).job("sweep_imports", job_id="sweep_imports:test")
    assert await entries() == []


async def test_issuing_forms_queues_the_render_once_through_the_outbox(
    client: httpx.AsyncClient, app: Litestar, settings: Settings, world: World
) -> None:
    await issue_forms(client, world)
    batch = await the_batch()

    assert await queued(app) == [f"forms:{batch['id']}"]
    [entry] = await entries()
    assert entry["job_id"] == f"forms:{batch['id']}"
    assert entry["delivered_at"] is not None
    await run_jobs(app, settings)
    assert (await the_batch())["status"] == "done"
    assert await sweep_outbox(job_ctx(app), 0) == 0
    assert await queued(app) == []


async def test_a_crash_between_commit_and_delivery_is_delivered_by_the_sweeper(
    client: httpx.AsyncClient,
    app: Litestar,
    settings: Settings,
    world: World,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The process dies right after the commit: the after-commit step never runs.
    monkeypatch.setattr(outbox_module, "after_commit", lambda step: None)
    await issue_forms(client, world)
    monkeypatch.undo()
    batch = await the_batch()
    assert batch["status"] == "queued"
    assert await queued(app) == []
    assert [e["delivered_at"] for e in await entries()] == [None]

    # Within its grace period the sweeper leaves it to the after-commit step.
    assert await sweep_outbox(job_ctx(app)) == 0
    assert await sweep_outbox(job_ctx(app), 0) == 1
    assert await queued(app) == [f"forms:{batch['id']}"]
    assert await sweep_outbox(job_ctx(app), 0) == 0  # delivered once
    await run_jobs(app, settings)
    assert (await the_batch())["status"] == "done"


async def test_with_redis_down_at_delivery_the_request_succeeds_and_the_sweeper_delivers(
    client: httpx.AsyncClient, app: Litestar, settings: Settings, world: World
) -> None:
    working = app.state.arq
    app.state.arq = ArqRedis.from_url("redis://127.0.0.1:1/0")  # nothing listens there
    try:
        await issue_forms(client, world)  # asserts 202
    finally:
        await app.state.arq.aclose()
        app.state.arq = working
    assert (await the_batch())["status"] == "queued"
    assert [e["delivered_at"] for e in await entries()] == [None]
    assert await queued(app) == []

    assert await sweep_outbox(job_ctx(app), 0) == 1
    await run_jobs(app, settings)
    assert (await the_batch())["status"] == "done"
    assert all(e["delivered_at"] is not None for e in await entries())


async def test_a_message_is_sent_once_after_the_commit_and_never_after_a_rollback(
    app: Litestar, settings: Settings
) -> None:
    sent = app.state.sms.sent
    sent.clear()
    outbox = Outbox(app.state.arq)

    async def approve(key: str, fail: bool) -> None:
        async with transaction():
            await outbox.message("13800001111", f"您的申请 {key} 已通过", key=key)
            if fail:
                raise RuntimeError("the approval's write failed")

    with pytest.raises(RuntimeError):
        await approve("rolled-back", fail=True)
    await approve("approval:17", fail=False)

    # What waits in Redis is the entry's job id, never the phone or the text.
    [job] = await app.state.arq.queued_jobs()
    assert (job.function, job.args, job.job_id) == (
        "send_outbox_message",
        ("message:approval:17",),
        "message:approval:17",
    )
    await run_jobs(app, settings)
    await send_outbox_message(job_ctx(app), "message:approval:17")  # run again: sends nothing
    await sweep_outbox(job_ctx(app), 0)
    await run_jobs(app, settings)

    assert sent == [("13800001111", "您的申请 approval:17 已通过")]
    [entry] = await entries()
    assert entry["message"] is None  # the phone and the text are forgotten once sent
    assert entry["sent_at"] is not None
