"""Status columns: each has its StrEnum and its moves as data (`backend/statuses.py`), and a
write the data does not allow is refused and writes nothing."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import httpx
import pytest
from litestar import Litestar

from backend.accounts.roles import Role
from backend.config import Settings
from backend.piccolo_app import APP_CONFIG
from backend.records.tables import BATCH_STATUS, BatchStatus, FormBatch
from backend.records.tasks import enqueue_render
from backend.statuses import InvalidTransition, Lifecycle
from tests.factories import bearer, build_world, login, make_students, open_campaign, run_jobs

BACKEND = Path(__file__).resolve().parents[1] / "backend"


def status_columns() -> list[tuple[str, object]]:
    return [
        (f"{table._meta.tablename}.{column._meta.name}", column.default)
        for table in APP_CONFIG.table_classes
        for column in table._meta.columns
        if column._meta.name in ("status", "state")
    ]


def test_every_status_column_has_its_enum_and_its_moves() -> None:
    columns = status_columns()
    assert len(columns) >= 7  # account, student, link, import, batch, upload, draft
    for name, default in columns:
        lifecycle = Lifecycle.every.get(name)
        assert lifecycle is not None, f"{name} has no Lifecycle beside its table"
        assert default in {s.value for s in lifecycle.states}, name
        assert set(lifecycle.moves) == set(lifecycle.states), name


def test_a_move_outside_the_data_is_refused_before_anything_is_asked_of_the_database() -> None:
    for lifecycle in Lifecycle.every.values():
        for source, to in itertools.product(lifecycle.states, repeat=2):
            if lifecycle.allows(source, to):
                assert lifecycle.check([source], to) == {source}
            else:
                with pytest.raises(InvalidTransition, match=re.escape(lifecycle.name)):
                    lifecycle.check([source], to)


def test_no_status_is_written_but_through_its_lifecycle() -> None:
    """`Table.update({Table.status: ...})` or `SET status` in the code would skip the check."""
    direct = re.compile(r"[A-Z]\w*\.(status|state)\s*:|\bSET\s+(status|state)\b", re.IGNORECASE)
    found = [
        f"{path.relative_to(BACKEND)}:{number}"
        for path in BACKEND.rglob("*.py")
        if path.name != "statuses.py"
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if direct.search(line)
    ]
    assert found == []


async def test_an_invalid_status_transition_is_refused_and_writes_nothing(
    client: httpx.AsyncClient, app: Litestar, settings: Settings
) -> None:
    world = await build_world(settings)
    await make_students(world, "A1", 2)
    await open_campaign()
    registrar = bearer(await login(client, world.phones[Role.registrar]))
    batch = (
        await client.post(
            "/form-batches", json={"class_id": world.classes["A1"]}, headers=registrar
        )
    ).json()
    await run_jobs(app, settings)

    # A rendered batch never becomes `running` again: the data has no such move.
    with pytest.raises(InvalidTransition, match=r"form_batch\.status"):
        await BATCH_STATUS.move(batch["id"], BatchStatus.running, sources=[BatchStatus.done])
    # Nor `failed`: it is `done`, not one of the states `failed` is reached from.
    assert not await BATCH_STATUS.move(batch["id"], BatchStatus.failed)
    # A stray job for it (a sweeper's copy, a retry) finds nothing to claim.
    await enqueue_render(app.state.arq, batch["id"], attempt=7)
    await run_jobs(app, settings)

    read = (await client.get(f"/form-batches/{batch['id']}", headers=registrar)).json()
    assert read["status"] == "done"
    assert read["pdf_ready"] is True
    row = (
        await FormBatch.select(FormBatch.render_attempts).where(FormBatch.id == batch["id"]).first()
    )
    assert row == {"render_attempts": 1}
