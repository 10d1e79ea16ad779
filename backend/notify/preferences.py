"""A user's notification settings: the categories whose pushes they turned off (the inbox
still gets them; a notice about one's own overdue step cannot be turned off) and their quiet
hours, when non-urgent pushes wait (`notify.inbox` reads both as it writes)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from backend.accounts.principal import Principal
from backend.db import transaction
from backend.errors import BadRequest
from backend.notify.categories import BEHAVIOUR
from backend.notify.quiet import DEFAULT_QUIET
from backend.notify.schemas import CategorySetting, QuietHoursSetting, SettingsRead, SettingsWrite
from backend.notify.tables import Preference


def _clock(value: Any) -> str:
    return f"{value.hour:02d}:{value.minute:02d}"


def settings_read(row: dict[str, Any] | None) -> SettingsRead:
    muted: Any = row["muted"] if row else []
    if isinstance(muted, str):
        muted = json.loads(muted)
    quiet = QuietHoursSetting(
        enabled=bool(row["quiet_enabled"]) if row else True,
        start=(row and row["quiet_start"]) or _clock(DEFAULT_QUIET.start),
        end=(row and row["quiet_end"]) or _clock(DEFAULT_QUIET.end),
    )
    return SettingsRead(
        categories=[
            CategorySetting(
                category=category,
                label=behaviour.label,
                muted=category.value in muted,
                may_turn_off=behaviour.may_turn_off,
                urgent=behaviour.urgent,
            )
            for category, behaviour in BEHAVIOUR.items()
        ],
        quiet_hours=quiet,
    )


async def read(principal: Principal) -> SettingsRead:
    row = await Preference.select().where(Preference.account == principal.account_id).first()
    return settings_read(row)


async def write(principal: Principal, data: SettingsWrite) -> SettingsRead:
    """Replace the caller's settings (every muted category named, the quiet hours whole)."""
    fixed = [category for category in data.muted if not BEHAVIOUR[category].may_turn_off]
    if fixed:
        labels = "、".join(f"「{BEHAVIOUR[category].label}」" for category in fixed)
        raise BadRequest(
            f"{labels}不能关闭（例如本人已逾期待办的通知）",
            code="category_cannot_be_muted",
            field_errors={"muted": f"{labels}不能关闭"},
        )
    if data.quiet_hours.start == data.quiet_hours.end:
        raise BadRequest(
            "免打扰的开始时间和结束时间不能相同",
            code="invalid_quiet_hours",
            field_errors={"quiet_hours": "开始时间和结束时间不能相同"},
        )
    values = {
        Preference.muted: sorted({category.value for category in data.muted}),
        Preference.quiet_enabled: data.quiet_hours.enabled,
        Preference.quiet_start: data.quiet_hours.start,
        Preference.quiet_end: data.quiet_hours.end,
        Preference.updated_at: datetime.now(UTC),
    }
    async with transaction():
        await Preference.insert(
            Preference(account=principal.account_id, **_by_name(values))
        ).on_conflict(
            target=Preference.account,
            action="DO UPDATE",
            values=list(values),
        )
    return await read(principal)


def _by_name(values: dict[Any, Any]) -> dict[str, Any]:
    return {column._meta.name: value for column, value in values.items()}
