"""An upload of a form another system printed (no token of ours) is checked by its labels
against the child it was uploaded for, end to end through the worker."""

from __future__ import annotations

import httpx
import numpy as np
from litestar import Litestar

from backend.accounts.tables import AuditLog
from backend.config import Settings
from backend.ocr.synth import photograph, print_page
from backend.ocr.synth_foreign import BY_NAME, render, signature, write
from backend.records.printing import printed_values
from backend.records.service import load_fields
from backend.records.tables import Student
from tests.factories import World
from tests.parents.test_checks import parent, upload_and_check, world

__all__ = ["parent", "world"]  # fixtures


async def record_of(student_id: int) -> dict[str, str]:
    row = await Student.select(Student.fields).where(Student.id == student_id).first()
    assert row is not None
    return printed_values(load_fields(row["fields"]))


def foreign_photo(values: dict[str, str], layout: str, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    page, drawn = render(BY_NAME[layout], values, "杭州市文三路小学")
    sheet = page.convert("RGB")
    signature(sheet, drawn.signature, rng, "blue")
    write(sheet, drawn.date, rng, "blue", 6)
    return photograph(print_page(sheet), rng, size=(2400, 3200), blur=0.8)


async def test_another_systems_form_of_this_child_is_checked_by_its_labels(
    client: httpx.AsyncClient,
    app: Litestar,
    settings: Settings,
    world: World,
    parent: dict[str, str],
) -> None:
    child = world.students[0]
    photo = foreign_photo(await record_of(child), "two_per_row", 1)

    result = await upload_and_check(client, app, settings, parent, child, photo)

    assert result["verdict"] == "matches", result
    assert result["signed"] is True
    audit = await AuditLog.select(AuditLog.after).where(AuditLog.action == "check").first()
    assert audit is not None
    assert "read_by_labels" in str(audit["after"])


async def test_another_systems_form_of_another_child_is_not_this_form(
    client: httpx.AsyncClient,
    app: Litestar,
    settings: Settings,
    world: World,
    parent: dict[str, str],
) -> None:
    other = await record_of(world.students[1])
    result = await upload_and_check(
        client, app, settings, parent, world.students[0], foreign_photo(other, "school", 2)
    )
    assert result["verdict"] == "not_this_form", result
