"""Helpers for change-request tests: multipart bodies with evidence photos, logins by role or
by name, deciding the current step, audit rows."""

from __future__ import annotations

import io
import json
from typing import Any

import httpx
from PIL import Image

from backend.accounts.audit_seal import Sealer
from backend.accounts.roles import Role
from backend.accounts.tables import AuditLog
from tests.factories import World, bearer, login


def jpeg(seed: int = 0) -> bytes:
    image = Image.new("RGB", (64, 48), ((seed * 37) % 256, (seed * 91) % 256, 120))
    out = io.BytesIO()
    image.save(out, "JPEG")
    return out.getvalue()


def multipart(
    fields: dict[str, Any], photos: list[tuple[str, bytes]] | tuple[()] = ()
) -> list[tuple[str, tuple[str | None, Any] | tuple[str, bytes, str]]]:
    """`files=` for httpx: plain parts and photo parts, always multipart (even photo-less)."""
    parts: list[Any] = [(name, (None, str(value))) for name, value in fields.items()]
    parts += [
        (kind, (f"{kind}{i}.jpg", data, "image/jpeg")) for i, (kind, data) in enumerate(photos)
    ]
    if not parts:
        parts = [("reason", (None, ""))]
    return parts


async def as_role(client: httpx.AsyncClient, world: World, role: Role) -> dict[str, str]:
    return bearer(await login(client, world.phones[role]))


async def as_staff(client: httpx.AsyncClient, world: World, name: str) -> dict[str, str]:
    return bearer(await login(client, world.staff[name][1]))


async def current_step(
    client: httpx.AsyncClient, headers: dict[str, str], request_id: int
) -> dict[str, Any]:
    response = await client.get(f"/change-requests/{request_id}", headers=headers)
    assert response.status_code == 200, response.text
    step = response.json()["current_step"]
    assert step is not None, response.json()
    return step  # type: ignore[no-any-return]


async def decide(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    step_id: int,
    decision: str = "approve",
    reason: str = "",
) -> httpx.Response:
    return await client.post(
        f"/review-steps/{step_id}/decision",
        json={"decision": decision, "reason": reason},
        headers=headers,
    )


async def audit_rows(action: str, entity: str, entity_id: object = None) -> list[dict[str, Any]]:
    where = (AuditLog.action == action) & (AuditLog.entity == entity)
    if entity_id is not None:
        where &= AuditLog.entity_id == str(entity_id)
    rows = await AuditLog.select().where(where).order_by(AuditLog.id)
    sealer = Sealer.of()  # `after` as an investigator reads it: sensitive values opened
    for row in rows:
        row["after"] = sealer.reveal(json.loads(row["after"])) if row["after"] else None
    return rows  # type: ignore[no-any-return]
