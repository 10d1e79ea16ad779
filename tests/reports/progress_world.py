"""A world for progress tests: the factories' nation with students in every class, a campaign
of 浙江, and helpers to count again, read a node and write what a photo check leaves."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from backend.accounts.roles import Role
from backend.config import Settings
from backend.parents.tables import Upload
from backend.reports import progress_refresh
from tests.factories import World, bearer, build_world, login, make_students, open_campaign

# Students per class: 西湖区 school A (A1, A2), 滨江区 B, 宁波 海曙区 C, and 江苏 D (outside
# the campaign). The truth every count starts from.
SIZES = {"A1": 4, "A2": 2, "B1": 2, "C1": 1, "D1": 1}


@dataclass
class ProgressWorld:
    world: World
    campaign: int
    students: dict[str, list[int]] = field(default_factory=dict)
    tokens: dict[Role, dict[str, str]] = field(default_factory=dict)

    async def headers(self, client: httpx.AsyncClient, role: Role) -> dict[str, str]:
        if role not in self.tokens:
            self.tokens[role] = bearer(await login(client, self.world.phones[role]))
        return self.tokens[role]


async def build(settings: Settings) -> ProgressWorld:
    world = await build_world(settings)
    campaign = await open_campaign("330000", corrections_open=True)
    pw = ProgressWorld(world, campaign)
    start = 1
    for key, size in SIZES.items():
        pw.students[key] = await make_students(world, key, size, start=start)
        start += size
    return pw


async def refresh() -> int:
    """What the worker's every-few-seconds job does."""
    return await progress_refresh.refresh()


async def read(
    client: httpx.AsyncClient, pw: ProgressWorld, role: Role, **params: Any
) -> httpx.Response:
    return await client.get(
        f"/campaigns/{pw.campaign}/progress",
        params=params,
        headers=await pw.headers(client, role),
    )


async def counts(
    client: httpx.AsyncClient, pw: ProgressWorld, role: Role = Role.sysadmin, **params: Any
) -> dict[str, Any]:
    response = await read(client, pw, role, **params)
    assert response.status_code == 200, response.text
    return response.json()["counts"]  # type: ignore[no-any-return]


async def checked_photo(
    pw: ProgressWorld,
    student: int,
    status: str,
    *,
    at: datetime | None = None,
    class_key: str = "A1",
) -> int:
    """A photo of the child's form as the photo check leaves it (`status`: its verdict)."""
    from backend.records.tables import IssuedForm, Student

    row = await Student.select().where(Student.id == student).first()
    assert row is not None
    form = (
        await IssuedForm.select(IssuedForm.id)
        .where((IssuedForm.student == student) & IssuedForm.superseded_at.is_null())
        .first()
    )
    at = at or datetime.now(UTC)
    rows = await Upload.insert(
        Upload(
            student=student,
            campaign=pw.campaign,
            form=form["id"] if form else None,
            school=row["school"],
            school_class=row["school_class"],
            region_code=row["region_code"],
            uploaded_by=pw.world.accounts[Role.teacher],
            on_behalf=True,
            storage_key=f"photos/test/{student}/{at.timestamp()}.jpg",
            content_hash=f"{student}-{at.timestamp()}",
            width=1200,
            height=1600,
            status=status,
            created_at=at,
        )
    )
    return int(rows[0]["id"])


def later(seconds: int) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)
