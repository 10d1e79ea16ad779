"""HTTP for what a province sets about status changes (the documents it asks for, the
senior-high repeat rule), and the school directory a parent searches before applying."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, get, put
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK

from backend.accounts.permissions import Action
from backend.deps import ActorDep, PrincipalDep
from backend.http import allowed
from backend.openapi import BY_ID, JSON_BODY, QUERY, SIGNED_IN, STAFF, errors
from backend.pages import DEFAULT_PAGE_SIZE, Page, PageNumber, PageSize
from backend.transfers import directory, documents, repeats
from backend.transfers.rule_schemas import (
    DirectoryEntryRead,
    DocumentListRead,
    DocumentListWrite,
    RepeatRuleRead,
    RepeatRuleWrite,
    document_list,
    repeat_rule,
)

ProvinceCode = Annotated[str, msgspec.Meta(pattern=r"^\d{6}$")]
SETTERS = {403: "change_rules_province_only change_rules_other_province"}


class ChangeRulesController(Controller):
    path = "/provinces/{province_code:str}"
    tags = ["status-changes"]
    guards = [allowed(Action.use_staff_api)]

    @get(
        "/change-documents",
        summary="List the documents a province asks for with each status change",
        operation_id="listChangeDocuments",
        responses=errors(SIGNED_IN, STAFF, BY_ID, {400: "not_a_province"}),
    )
    async def list_documents(
        self, province_code: FromPath[ProvinceCode], principal: PrincipalDep
    ) -> list[DocumentListRead]:
        """Every kind of status change (a transfer once per span: `county`, `province`,
        `country`) with the documents the province asks for, and whether they are the
        province's own or the defaults (about ten entries, so not paginated).

        **Who may call**: staff of the province (a national account: any province).

        **Errors**: `not_a_province` (400); `not_found` (404) another province."""
        return [document_list(d) for d in await documents.read(principal, province_code)]

    @put(
        "/change-documents",
        status_code=HTTP_200_OK,
        summary="Set the documents a province asks for with a status change",
        operation_id="setChangeDocuments",
        responses=errors(
            SIGNED_IN,
            STAFF,
            JSON_BODY,
            BY_ID,
            SETTERS,
            {400: "span_mismatch not_a_province"},
        ),
    )
    async def set_documents(
        self,
        province_code: FromPath[ProvinceCode],
        data: JSONBody[DocumentListWrite],
        principal: PrincipalDep,
        actor: ActorDep,
    ) -> DocumentListRead:
        """Set the documents asked for with one `kind` of change (a transfer: of one `span`):
        `documents` (possibly empty) from `residence`, `transfer_application`,
        `enrolment_proof`, `id_document`, `medical_certificate`. A parent's application and
        a registrar's start from then on need each of them; those already made keep theirs.
        Setting the defaults again removes the province's own list. Audited.

        **Who may call**: the province admin of that province; a national account.

        **Errors**: `span_mismatch` (400) a transfer without `span`, or another kind with
        one; `not_a_province` (400); `change_rules_province_only` (403) another role;
        `change_rules_other_province` (403) another province; `not_found` (404) a
        province the registry does not know."""
        found = await documents.set_documents(
            principal,
            actor,
            province_code,
            kind=data.kind,
            span=data.span,
            documents=data.documents,
        )
        return document_list(found)

    @get(
        "/repeat-rule",
        summary="Read a province's senior-high repeat rule",
        operation_id="getRepeatRule",
        responses=errors(SIGNED_IN, STAFF, BY_ID, {400: "not_a_province"}),
    )
    async def get_repeat_rule(
        self, province_code: FromPath[ProvinceCode], principal: PrincipalDep
    ) -> RepeatRuleRead:
        """Whether any senior-high student may repeat a grade (`allowed`, the default) or
        only special-education students (`special_only`). In compulsory education only
        special-education students may, whatever the province.

        **Who may call**: staff of the province (a national account: any province).

        **Errors**: `not_a_province` (400); `not_found` (404) another province."""
        return repeat_rule(await repeats.read(principal, province_code))

    @put(
        "/repeat-rule",
        status_code=HTTP_200_OK,
        summary="Set a province's senior-high repeat rule",
        operation_id="setRepeatRule",
        responses=errors(SIGNED_IN, STAFF, JSON_BODY, BY_ID, SETTERS, {400: "not_a_province"}),
    )
    async def set_repeat_rule(
        self,
        province_code: FromPath[ProvinceCode],
        data: JSONBody[RepeatRuleWrite],
        principal: PrincipalDep,
        actor: ActorDep,
    ) -> RepeatRuleRead:
        """Set the senior-high rule; repeats entered or applied for from then on follow it.
        Audited.

        **Who may call**: the province admin of that province; a national account.

        **Errors**: `not_a_province` (400); `change_rules_province_only`,
        `change_rules_other_province` (403); `not_found` (404)."""
        found = await repeats.set_rule(principal, actor, province_code, data.senior_high)
        return repeat_rule(found)


class SchoolDirectoryController(Controller):
    path = "/school-directory"
    tags = ["parents"]
    guards = [allowed(Action.search_school_directory)]

    @get(
        "/",
        summary="Find a school to apply to",
        operation_id="searchSchoolDirectory",
        responses=errors(
            SIGNED_IN, QUERY, {400: "search_too_broad name_too_short", 403: "parents_only"}
        ),
    )
    async def search(
        self,
        principal: PrincipalDep,
        region_code: Annotated[
            str | None, QueryParameter(pattern=r"^\d{6}$", description="省、市或区县代码")
        ] = None,
        name: Annotated[
            str | None, QueryParameter(max_length=50, description="学校名称中的字，至少两个")
        ] = None,
        page: PageNumber = 1,
        page_size: PageSize = DEFAULT_PAGE_SIZE,
    ) -> Page[DirectoryEntryRead]:
        """Schools under a region (a province's, city's or county's code) and/or whose name
        holds `name` (at least 2 characters), by region then name: the id to apply with
        (`to_school_id`), the name, where (`region_name`), what kind of school and who runs
        it. Nothing of its students or staff.

        **Who may call**: a parent.

        **Errors**: `search_too_broad` (400) neither a region nor a name; `name_too_short`
        (400); `validation_error` (400) a malformed code or page; `parents_only` (403)."""
        found = await directory.search(
            principal, region_code=region_code, name=name, page=page, page_size=page_size
        )
        return Page([_entry(e) for e in found.items], found.page, found.page_size, found.total)


def _entry(entry: directory.DirectoryEntry) -> DirectoryEntryRead:
    return DirectoryEntryRead(
        school_id=entry.school_id,
        name=entry.name,
        region_code=entry.region_code,
        region_name=entry.region_name,
        kind=entry.kind,
        kind_label=entry.kind_label,
        administered_by=entry.administered_by,
        administered_by_label=entry.administered_by_label,
    )


ROUTES: list[Any] = [ChangeRulesController, SchoolDirectoryController]
