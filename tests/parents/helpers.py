"""Forms issued for a class, and the registration codes the parents read off them."""

from __future__ import annotations

import re
from typing import Any

import httpx

from backend.accounts.roles import Role
from backend.config import Settings
from backend.records.printing import registration_code
from backend.records.tables import IssuedForm
from tests.factories import World, bearer, login


async def issue_forms(
    client: httpx.AsyncClient, world: World, class_key: str = "A1"
) -> list[dict[str, Any]]:
    registrar = bearer(await login(client, world.phones[Role.registrar]))
    response = await client.post(
        "/form-batches", json={"class_id": world.classes[class_key]}, headers=registrar
    )
    assert response.status_code == 202, response.text
    return response.json()["forms"]  # type: ignore[no-any-return]


async def code_of(settings: Settings, student_id: int) -> str:
    form = (
        await IssuedForm.select(IssuedForm.form_id)
        .where((IssuedForm.student == student_id) & IssuedForm.superseded_at.is_null())
        .first()
    )
    assert form is not None
    return registration_code(form["form_id"], settings.form_token_key.encode())


def otp_from(sms_log: list[tuple[str, str]], phone: str) -> str:
    text = next(text for to, text in reversed(sms_log) if to == phone)
    match = re.search(r"\d{6}", text)
    assert match is not None
    return match.group(0)


def second_fact(value: str) -> dict[str, str]:
    """A second fact about the child as the field it is: 6 characters are an ID number's tail,
    anything longer a birth date."""
    return {"id_last6": value} if len(value) == 6 else {"birth_date": value}
