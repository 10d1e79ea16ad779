"""HTTP for controlled fields (受控字段): a province's controls over the national catalog's,
read by its staff and set by its province admin."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, get, put
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_200_OK

from backend.accounts.permissions import Action
from backend.deps import ActorDep, PrincipalDep
from backend.http import allowed
from backend.openapi import BY_ID, JSON_BODY, SIGNED_IN, STAFF, errors
from backend.records import controls
from backend.records.catalog import Chain

ProvinceCode = Annotated[str, msgspec.Meta(pattern=r"^\d{6}$")]
CHAIN_LABEL = {Chain.key_data: "关键数据变更（教育行政部门逐条审核）", Chain.ordinary: "学校审核"}


class FieldControlRead(msgspec.Struct):
    field_code: str
    field_label: str
    key: bool  # a change is key data: reviewed one by one by the administering authority
    chain: Chain  # key_data, or ordinary: the school changes it (registrar, then a leader)
    chain_label: str
    parents_may_propose: bool
    national_key: bool  # key by the national catalog: a province cannot release it
    set_by_province: bool  # the province's controls differ from the national ones


class FieldControlWrite(msgspec.Struct, forbid_unknown_fields=True):
    key: bool
    parents_may_propose: bool = True


def _read(control: controls.Control) -> FieldControlRead:
    return FieldControlRead(
        field_code=control.field.code,
        field_label=control.field.label,
        key=control.key,
        chain=control.chain,
        chain_label=CHAIN_LABEL[control.chain],
        parents_may_propose=control.parents_may_propose,
        national_key=control.national_key,
        set_by_province=control.set_by_province,
    )


class FieldControlController(Controller):
    path = "/provinces/{province_code:str}/field-controls"
    tags = ["records"]
    guards = [allowed(Action.use_staff_api)]

    @get(
        "/",
        summary="List a province's controlled fields",
        operation_id="listFieldControls",
        responses=errors(SIGNED_IN, STAFF, BY_ID, {400: "not_a_province"}),
    )
    async def list_controls(
        self, province_code: FromPath[ProvinceCode], principal: PrincipalDep
    ) -> list[FieldControlRead]:
        """Every field of the catalog (about 40, in the form's order, so not paginated) with
        the controls that apply in the province: key data or the school's own change, and
        whether parents may propose a change; the national floor beside them.

        **Who may call**: staff of the province (a national account: any province).

        **Errors**: `not_a_province` (400) for a code that is not a province's;
        `not_found` (404) for another province."""
        return [_read(c) for c in await controls.read(principal, province_code)]

    @put(
        "/{field_code:str}",
        status_code=HTTP_200_OK,
        summary="Set a field's controls in a province",
        operation_id="setFieldControl",
        responses=errors(
            SIGNED_IN,
            STAFF,
            JSON_BODY,
            BY_ID,
            {
                400: "national_control unknown_field not_a_province",
                403: "controls_province_only controls_other_province",
            },
        ),
    )
    async def set_control(
        self,
        province_code: FromPath[ProvinceCode],
        field_code: FromPath[Annotated[str, msgspec.Meta(max_length=40)]],
        data: JSONBody[FieldControlWrite],
        principal: PrincipalDep,
        actor: ActorDep,
    ) -> FieldControlRead:
        """Set one field's controls in the province, above the national catalog's: make it
        key data (its changes then go to the administering authority, one by one, with the
        ID document), or give it back to the school (`key: false`, only for a field the
        nation does not make key), and whether parents may propose a change. Change
        requests made from then on follow it (each process reads it again within 2 s);
        requests already made keep their chain. Audited with before and after.

        **Who may call**: the province admin of that province; a national account.

        **Errors**: `national_control` (400) to release a field the national catalog makes
        key; `unknown_field` (400); `not_a_province` (400); `controls_province_only` (403)
        any other role; `controls_other_province` (403) another province's admin;
        `not_found` (404) for a province the registry does not know."""
        found = await controls.set_control(
            principal,
            actor,
            province_code,
            field_code,
            key=data.key,
            parents_may_propose=data.parents_may_propose,
        )
        return _read(found)


ROUTES: list[Any] = [FieldControlController]
