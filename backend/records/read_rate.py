"""The read-rate alert: an account reading far more distinct students' records than its work
explains is throttled, and the admins above it are told.

Every staff read that returns a student's personal data (the student list and search, one
record, a value revealed in full) first calls `admit(...)` with the students it is about to
return. Redis keeps, per account and clock hour (UTC), the set of students the account read
this hour; one Lua script counts the new ones and either adds them or, when the set would pass
`student_reads_per_hour`, refuses. From the first refusal the account is throttled until the
hour ends: every read of a student's data answers 429 `student_reads_throttled`, whether or
not it read that student before. The first refusal of the account-hour is audited and tells
the account admins above it (`read_rate_alert`: the account's id and role, never a student's
or a person's name, nor a phone). Reading the same students again costs nothing. A teacher's
reads are not counted at all while the limit is above any class's size (`CLASS_BOUND`): one
class cannot reach it, and the count would cost every page of the class a Redis call.

While Redis is unreachable the reads go on uncounted (logged): PostgreSQL, not Redis, holds
what they read, and a watch must not take the registry down with it.

A set (not a HyperLogLog) because the check is exact and cheap at this size: the set holds at
most the limit's number of ids (a few KB) and lives one hour; a re-read must not count.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from backend.accounts import audit
from backend.accounts.audit import Actor
from backend.accounts.permissions import ACCOUNT_ADMINS, Action, require_over
from backend.accounts.principal import Principal
from backend.accounts.roles import RANK, ROLE_LABEL, Role, ScopeKind
from backend.accounts.scope import get_scoped
from backend.accounts.scope_rules import ancestors
from backend.accounts.tables import Account, AccountStatus
from backend.config import Settings
from backend.db import transaction
from backend.errors import TooManyAttempts
from backend.notify.categories import Category
from backend.notify.inbox import Note, notify
from backend.outbox import Outbox

log = logging.getLogger(__name__)

HOUR = 3600
# A teacher reads one class, and no class holds this many children: under a limit this high a
# teacher's reads cannot reach it, and are not counted (a Redis call per page of the class,
# ≈ 0.45 ms of the API's CPU, `bench/README.md`).
CLASS_BOUND = 150

# KEYS: the account-hour's set of students, its throttle mark. ARGV: the limit, the keys'
# lifetime in seconds, then the student ids. Returns {0, 0} admitted; {1, 1} refused for the
# first time this account-hour (alert); {1, 0} refused again.
_ADMIT = """
if redis.call('EXISTS', KEYS[2]) == 1 then return {1, 0} end
local fresh, seen = {}, {}
for i = 3, #ARGV do
  local id = ARGV[i]
  if not seen[id] then
    seen[id] = true
    if redis.call('SISMEMBER', KEYS[1], id) == 0 then fresh[#fresh + 1] = id end
  end
end
if #fresh == 0 then return {0, 0} end
if redis.call('SCARD', KEYS[1]) + #fresh > tonumber(ARGV[1]) then
  redis.call('SET', KEYS[2], '1', 'EX', ARGV[2])
  return {1, 1}
end
for i = 1, #fresh, 500 do
  redis.call('SADD', KEYS[1], unpack(fresh, i, math.min(i + 499, #fresh)))
end
redis.call('EXPIRE', KEYS[1], ARGV[2])
return {0, 0}
"""

THROTTLED = (
    "您在本小时内查看的学生信息数量远超正常工作所需，已被暂时限制查看，"
    "并已通知上级管理员；如确因工作需要，请联系管理员，或在下一个整点后再试"
)


def hour_of(now: datetime) -> int:
    return int(now.timestamp()) // HOUR


def keys(account_id: int, hour: int) -> tuple[str, str]:
    return f"reads:{account_id}:{hour}", f"reads-throttled:{account_id}:{hour}"


async def admit(
    redis: Redis,
    settings: Settings,
    outbox: Outbox,
    principal: Principal,
    actor: Actor,
    student_ids: Iterable[int],
    *,
    now: datetime | None = None,
) -> None:
    """Count `student_ids` as read by the principal this hour, or refuse (429) when that
    would pass the limit or the account is already throttled this hour."""
    limit = settings.student_reads_per_hour
    if limit <= 0 or principal.role is Role.parent:
        return
    if principal.scope.kind is ScopeKind.school_class and limit >= CLASS_BOUND:
        return
    ids = [str(i) for i in student_ids]
    if not ids:
        return
    now = now or datetime.now(UTC)
    hour = hour_of(now)
    left = HOUR - int(now.timestamp()) % HOUR
    seen, mark = keys(principal.account_id, hour)
    try:
        answer = await redis.eval(_ADMIT, 2, seen, mark, str(limit), str(left + 60), *ids)  # type: ignore[misc]
    except RedisError:
        # Fail open: the registry's reads do not stop with Redis; the throttle is a watch.
        log.warning("read-rate check skipped: Redis unreachable")
        return
    refused, first = (int(x) for x in answer)
    if not refused:
        return
    if first:
        await _alert(outbox, principal, actor, limit, now)
    raise TooManyAttempts(THROTTLED, code="student_reads_throttled", retry_after=max(left, 1))


async def admins_above(principal: Principal) -> list[int]:
    """The active account admins of a higher rank whose scope holds the account: its school's
    registrars (for a teacher) and the county, city and province admins of its region; the
    national sysadmins only for an account no regional admin is above."""
    rank = RANK[principal.role]
    regional = [
        r for r in ACCOUNT_ADMINS if RANK[r] > rank and r not in {Role.sysadmin, Role.registrar}
    ]
    where: Any = Account.id == -1
    region = principal.scope.region_code
    if region is not None and regional:
        where = where | (
            Account.role.is_in([r.value for r in regional])
            & Account.region_code.is_in(ancestors(region))
        )
    school = principal.scope.school_id
    if school is not None and RANK[Role.registrar] > rank:
        where = where | ((Account.role == Role.registrar.value) & (Account.school == school))
    active = Account.status == AccountStatus.active.value
    rows = await Account.select(Account.id).where(where & active)
    if not rows:
        rows = await Account.select(Account.id).where(
            (Account.role == Role.sysadmin.value) & active & (Account.id != principal.account_id)
        )
    return sorted(int(r["id"]) for r in rows)


async def _alert(
    outbox: Outbox, principal: Principal, actor: Actor, limit: int, now: datetime
) -> None:
    recipients = await admins_above(principal)
    hour = now.astimezone(UTC).strftime("%Y-%m-%dT%H:00Z")
    async with transaction():
        await notify(
            outbox,
            recipients,
            Note(
                Category.read_rate_alert,
                "有账号查看学生信息数量异常，已被暂时限制",
                f"{ROLE_LABEL[principal.role]}账号（编号 {principal.account_id}）"
                f"在一小时内查看了超过 {limit} 名学生的信息，请核实其工作需要",
                subject=("account", principal.account_id),
                once=f"read_rate:{principal.account_id}:{hour_of(now)}",
            ),
            now=now,
        )
        await audit.record(
            actor,
            "read_rate_throttled",
            "account",
            principal.account_id,
            after={"limit": limit, "hour": hour, "admins_told": recipients},
        )
    log.warning(
        "student reads throttled",
        extra={"account_id": principal.account_id, "limit": limit, "hour": hour},
    )


async def lift(
    redis: Redis, principal: Principal, actor: Actor, account_id: int, now: datetime | None = None
) -> bool:
    """An admin above the account (who may disable it) lifts this hour's throttle once it has
    checked the work explains the reads: the account starts the hour afresh. Audited.
    Returns whether the account was throttled."""
    target = await get_scoped(
        actor, principal.scope, Account, Account.id == account_id, "account", account_id
    )
    require_over(principal, Action.change_account_status, Role(target["role"]))
    hour = hour_of(now or datetime.now(UTC))
    seen, mark = keys(account_id, hour)
    throttled = bool(await redis.exists(mark))
    await redis.delete(seen, mark)
    async with transaction():
        await audit.record(
            actor, "lift_read_throttle", "account", account_id, after={"was_throttled": throttled}
        )
    return throttled
