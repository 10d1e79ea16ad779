"""Controlled fields (受控字段设置, notice 001 section 四) as configuration: per province, which
fields are key data (a change is reviewed one by one by the administering authority: the
key-data chain), which the school changes itself (the ordinary chain: its registrar enters, a
school leader approves), and which parents may propose.

The national catalog (`catalog.Field.key`; parents may propose every field) is the floor: a
province may add controls, never remove the national ones. A province's rows
(`FieldControl`, one per field it set) are read when a change request is made
(`change_requests.create_request`), through a per-process cache of `TTL` seconds per province
that this process forgets when it writes one; other processes see a change within `TTL`.

    chain = await chain_for(region_code, BY_CODE["health"])
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from backend.accounts import audit
from backend.accounts.audit import Actor
from backend.accounts.permissions import Action, require_over
from backend.accounts.principal import Principal
from backend.accounts.roles import ScopeKind
from backend.accounts.tables import Region
from backend.db import transaction
from backend.errors import BadRequest, NotFound
from backend.records.catalog import BY_CODE, FIELDS, Chain, Field
from backend.records.roll_tables import FieldControl

TTL = 2.0  # seconds


@dataclass(frozen=True, slots=True)
class Control:
    """What applies to one field in one province, beside the national floor."""

    field: Field
    key: bool
    parents_may_propose: bool

    @property
    def chain(self) -> Chain:
        return Chain.key_data if self.key else Chain.ordinary

    @property
    def national_key(self) -> bool:
        return self.field.key

    @property
    def set_by_province(self) -> bool:
        return self.key != self.field.key or not self.parents_may_propose


def national(field: Field) -> Control:
    return Control(field, field.key, True)


def province_of(region_code: str) -> str:
    return region_code[:2] + "0000"


_known: dict[str, tuple[float, dict[str, Control]]] = {}
_asking: dict[str, asyncio.Future[dict[str, Control]]] = {}


async def controls_of(province_code: str) -> dict[str, Control]:
    """Every catalog field's control in the province (cached `TTL` seconds), read by one
    request at a time: every parent's read of a record needs it, and when it expires under
    load the requests in flight wait for that one read instead of each sending its own."""
    known = _known.get(province_code)
    if known is not None and known[0] > time.monotonic():
        return known[1]
    asking = _asking.get(province_code)
    if asking is not None:
        return await asyncio.shield(asking)
    future: asyncio.Future[dict[str, Control]] = asyncio.get_running_loop().create_future()
    _asking[province_code] = future
    try:
        found = await _read(province_code)
        future.set_result(found)
        return found
    except BaseException as exc:
        future.set_exception(exc)
        future.exception()  # retrieved: no "never retrieved" warning when nobody waited
        raise
    finally:
        del _asking[province_code]


async def _read(province_code: str) -> dict[str, Control]:
    started = time.monotonic()
    found = {f.code: national(f) for f in FIELDS}
    for row in await FieldControl.select().where(FieldControl.province_code == province_code):
        field = BY_CODE.get(row["field_code"])
        if field is not None:  # a field the catalog dropped since
            # the floor holds even for a row written before a field became nationally key
            found[field.code] = Control(
                field, row["key"] or field.key, bool(row["parents_may_propose"])
            )
    _known[province_code] = (started + TTL, found)
    return found


def forget() -> None:
    """Read the rows again next time (after one was written)."""
    _known.clear()


async def control_for(region_code: str, field: Field) -> Control:
    return (await controls_of(province_of(region_code)))[field.code]


async def chain_for(region_code: str, field: Field) -> Chain:
    """The review chain a change to `field` of a record in `region_code` takes."""
    return (await control_for(region_code, field)).chain


class NationalControl(BadRequest):
    code = "national_control"
    message = "该字段是国家规定的关键数据，省级只能增加管控，不能取消"


class NotAProvince(BadRequest):
    code = "not_a_province"
    message = "此项按省设置，请使用省级行政区划代码（如 330000）"


def _unknown_field() -> BadRequest:
    return BadRequest(
        "没有这个学籍字段", code="unknown_field", field_errors={"field_code": "没有这个学籍字段"}
    )


def check_readable(principal: Principal, province_code: str) -> None:
    """Staff read the controls of their own province (a national account: any)."""
    scope = principal.reach
    if scope.kind is ScopeKind.national:
        return
    if scope.region_code is None or province_of(scope.region_code) != province_code:
        raise NotFound()


async def read(principal: Principal, province_code: str) -> list[Control]:
    if not province_code.endswith("0000"):
        raise NotAProvince()
    check_readable(principal, province_code)
    found = await controls_of(province_code)
    return [found[f.code] for f in FIELDS]


async def set_control(
    principal: Principal,
    actor: Actor,
    province_code: str,
    field_code: str,
    *,
    key: bool,
    parents_may_propose: bool,
) -> Control:
    """Set one field's controls in the province: a national key field stays key (400
    `national_control`); controls equal to the national ones remove the province's row.
    Audited with before and after."""
    if not province_code.endswith("0000"):
        raise NotAProvince()
    require_over(principal, Action.set_field_controls, province_code)
    if not await Region.exists().where(Region.code == province_code):
        raise NotFound()
    field = BY_CODE.get(field_code)
    if field is None:
        raise _unknown_field()
    if field.key and not key:
        raise NationalControl(
            f"「{field.label}」是国家规定的关键数据，须由教育行政部门逐条审核，省级不能取消",
            field_errors={"key": NationalControl.message},
        )
    wanted = Control(field, key, parents_may_propose)
    now = datetime.now(UTC)
    where = (FieldControl.province_code == province_code) & (FieldControl.field_code == field_code)
    async with transaction():
        before = await FieldControl.select().where(where).first()
        if not wanted.set_by_province:
            await FieldControl.delete().where(where)
        else:  # one statement, so two admins setting it at once both land
            await FieldControl.insert(
                FieldControl(
                    province_code=province_code,
                    field_code=field_code,
                    key=key,
                    parents_may_propose=parents_may_propose,
                    updated_by=principal.account_id,
                    updated_at=now,
                )
            ).on_conflict(
                target=(FieldControl.province_code, FieldControl.field_code),
                action="DO UPDATE",
                values=[
                    FieldControl.key,
                    FieldControl.parents_may_propose,
                    FieldControl.updated_by,
                    FieldControl.updated_at,
                ],
            )
        old = (
            national(field)
            if before is None
            else Control(field, before["key"] or field.key, bool(before["parents_may_propose"]))
        )
        await audit.record(
            actor,
            "set_field_control",
            "field_control",
            f"{province_code}:{field_code}",
            before={"key": old.key, "parents_may_propose": old.parents_may_propose},
            after={"key": key, "parents_may_propose": parents_may_propose},
        )
    forget()
    return wanted
