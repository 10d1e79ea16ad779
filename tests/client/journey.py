"""The parent's journey, written as a phone developer would write it: against the client that
openapi-python-client generates from `/schema/openapi.json`, and nothing else of this project.

`tests/client/test_generated_client.py` generates the `registry_client` package beside a copy
of this file, type-checks both with `mypy --strict`, then runs `journey` over real HTTP. It is
not imported by the suite itself (the package exists only in that temporary directory).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from io import BytesIO
from typing import TypeVar

from registry_client import AuthenticatedClient, Client
from registry_client.api.auth import login
from registry_client.api.parents import (
    confirm_signup,
    create_upload,
    get_my_child,
    get_upload,
    list_my_children,
    start_signup,
)
from registry_client.models import (
    ChildStatus,
    Error,
    LoginRequest,
    PhotoUpload,
    ServerVerdict,
    SignupConfirm,
    SignupStart,
    SignupTicket,
    StudentDetail,
    TokenPair,
    UploadDetail,
    UploadRead,
)
from registry_client.types import File

T = TypeVar("T")
POLLS = 300  # a verdict usually comes within a second; the worker may be loading Tesseract


class JourneyFailed(Exception):
    """An answer that was not the one expected: carries the API's error."""


@dataclass
class Outcome:
    student_id: int
    upload_id: int
    verdict: ServerVerdict
    message: str
    form_status: str
    record: StudentDetail


def expect(answer: object, kind: type[T]) -> T:
    if isinstance(answer, kind):
        return answer
    if isinstance(answer, Error):
        raise JourneyFailed(f"{answer.code}: {answer.message}")
    raise JourneyFailed(f"unexpected answer {answer!r}")


async def journey(
    base_url: str,
    registration_code: str,
    birth_date: str,
    phone: str,
    password: str,
    photo: bytes,
    sms_code_for: Callable[[str], Awaitable[str]],
    poll_every: float = 0.1,
) -> Outcome:
    async with Client(base_url=base_url) as public:
        started = await start_signup.asyncio(
            client=public,
            body=SignupStart(
                registration_code=registration_code, birth_date=birth_date, phone=phone
            ),
        )
        ticket = expect(started, SignupTicket)
        code = await sms_code_for(phone)
        confirmed = await confirm_signup.asyncio(
            client=public,
            body=SignupConfirm(ticket=ticket.ticket, sms_code=code, password=password),
        )
        expect(confirmed, TokenPair)
        tokens = expect(
            await login.asyncio(client=public, body=LoginRequest(phone=phone, password=password)),
            TokenPair,
        )

    async with AuthenticatedClient(base_url=base_url, token=tokens.access_token) as client:
        children = await list_my_children.asyncio(client=client)
        if not isinstance(children, list) or len(children) != 1:
            raise JourneyFailed(f"expected one child, got {children!r}")
        child = children[0]

        upload = expect(
            await create_upload.asyncio(
                child.id,
                client=client,
                body=PhotoUpload(
                    file=File(payload=BytesIO(photo), file_name="form.jpg", mime_type="image/jpeg")
                ),
            ),
            UploadRead,
        )

        for _ in range(POLLS):
            detail = expect(await get_upload.asyncio(upload.id, client=client), UploadDetail)
            if isinstance(detail.verdict, ServerVerdict):
                break
            await asyncio.sleep(poll_every)
        else:
            raise JourneyFailed(f"upload {upload.id} got no verdict")
        message = detail.message if isinstance(detail.message, str) else ""

        record = expect(await get_my_child.asyncio(child.id, client=client), StudentDetail)
        again = await list_my_children.asyncio(client=client)
        if not isinstance(again, list) or not isinstance(again[0], ChildStatus):
            raise JourneyFailed(f"unexpected children {again!r}")
        form = again[0].form
        form_status = form.status.value if form is not None else ""

    return Outcome(child.id, upload.id, detail.verdict, message, form_status, record)
