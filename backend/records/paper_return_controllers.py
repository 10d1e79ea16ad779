"""HTTP for 回收: the class's checklist of paper forms, and the tick and untick of one."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
from litestar import Controller, get, post
from litestar.params import FromPath
from litestar.status_codes import HTTP_200_OK

from backend.accounts.permissions import Action
from backend.deps import ActorDep, PrincipalDep
from backend.http import allowed
from backend.openapi import BY_ID, QUERY, SIGNED_IN, ErrorCodes, errors
from backend.pages import DEFAULT_PAGE_SIZE, Page, PageNumber, PageSize, window
from backend.records import paper_returns
from backend.records.paper_returns import PaperReturn

DESK: ErrorCodes = {403: "paper_return_desk_only"}


class PaperReturnRead(msgspec.Struct):
    form_id: str
    campaign_id: int
    student_id: int
    class_id: int
    paper_returned: bool
    paper_returned_at: datetime | None
    paper_returned_by: int | None  # the account that ticked it


class ClassPaperReturnRead(msgspec.Struct):
    student_id: int
    name: str
    form: PaperReturnRead | None  # None: no form of the campaign printed for the child yet


def _read(found: PaperReturn) -> PaperReturnRead:
    return PaperReturnRead(
        found.form_id,
        found.campaign_id,
        found.student_id,
        found.class_id,
        found.returned_at is not None,
        found.returned_at,
        found.returned_by,
    )


class PaperReturnController(Controller):
    path = "/forms/{form_id:str}"
    tags = ["forms"]
    guards = [allowed(Action.tick_paper_return)]

    @post(
        "/paper-returned",
        summary="Tick a paper form as returned",
        operation_id="tickPaperReturned",
        status_code=HTTP_200_OK,
        responses=errors(SIGNED_IN, BY_ID, DESK, {409: "form_superseded"}),
    )
    async def tick(
        self, form_id: FromPath[str], principal: PrincipalDep, actor: ActorDep
    ) -> PaperReturnRead:
        """The signed paper form (`form_id`, as printed in its QR code) came back to school:
        ticked with the time and who ticked it, audited. Ticking it again changes nothing.

        **Who may call**: the class's teacher, the school's registrar.

        **Errors**: `paper_return_desk_only` (403) anyone else; `not_found` (404) no such
        form in the caller's class or school (audited); `form_superseded` (409) the class
        was printed again since: tick the new form."""
        return _read(await paper_returns.set_returned(principal, actor, form_id, True))

    @post(
        "/paper-not-returned",
        summary="Take back a paper form's return tick",
        operation_id="untickPaperReturned",
        status_code=HTTP_200_OK,
        responses=errors(SIGNED_IN, BY_ID, DESK, {409: "form_superseded"}),
    )
    async def untick(
        self, form_id: FromPath[str], principal: PrincipalDep, actor: ActorDep
    ) -> PaperReturnRead:
        """A tick made by mistake: the form counts as not returned again, audited. A form
        not ticked stays as it is.

        **Who may call**: the class's teacher, the school's registrar.

        **Errors**: `paper_return_desk_only` (403) anyone else; `not_found` (404) no such
        form in the caller's class or school (audited); `form_superseded` (409) the class
        was printed again since."""
        return _read(await paper_returns.set_returned(principal, actor, form_id, False))


class ClassPaperReturnController(Controller):
    path = "/campaigns/{campaign_id:int}/classes/{class_id:int}/paper-returns"
    tags = ["forms"]
    guards = [allowed(Action.tick_paper_return)]

    @get(
        "/",
        summary="List a class's paper forms and which came back",
        operation_id="listClassPaperReturns",
        responses=errors(SIGNED_IN, QUERY, BY_ID, DESK),
    )
    async def list_class(
        self,
        campaign_id: FromPath[int],
        class_id: FromPath[int],
        principal: PrincipalDep,
        actor: ActorDep,
        page: PageNumber = 1,
        page_size: PageSize = DEFAULT_PAGE_SIZE,
    ) -> Page[ClassPaperReturnRead]:
        """The class's enrolled children by name, each with its live form of the campaign
        (none if not printed yet) and whether the signed paper came back: the teacher's
        checklist.

        **Who may call**: the class's teacher, the school's registrar.

        **Errors**: `paper_return_desk_only` (403) anyone else; `not_found` (404) a campaign
        or class outside the caller's scope (audited); `validation_error` (400) a page out of
        range."""
        w = window(page, page_size)
        rows, total = await paper_returns.class_returns(
            principal, actor, campaign_id, class_id, w.size, w.offset
        )
        items = [
            ClassPaperReturnRead(r.student_id, r.name, _read(r.form) if r.form else None)
            for r in rows
        ]
        return w.page(items, total)


ROUTES: list[Any] = [PaperReturnController, ClassPaperReturnController]
