"""How often transfers may be started. A start holds a record of another school (no
correction there until the sending school releases or refuses it) and finds the student by
registry number and name; unbounded, one receiving registrar could hold records in bulk, or
use the start to learn which pairs exist. Every try counts, found or not: against the
registrar's hour and the receiving school's day (`backend.quota`, all or nothing). Without
Redis no transfer starts (503, as every Redis error answers): a start can wait."""

from __future__ import annotations

from redis.asyncio import Redis

from backend import quota
from backend.accounts.principal import Principal
from backend.config import Settings
from backend.errors import TooManyAttempts

HOUR, DAY = 3600, 86400


async def take_start_try(redis: Redis, settings: Settings, principal: Principal) -> None:
    """One try at starting a transfer by `principal` (a registrar), or 429 with the wait."""
    school = principal.reach.school_id
    per_registrar = quota.Quota(
        f"transfer-start:account:{principal.account_id}:hour",
        settings.transfer_start_tries_per_hour,
        HOUR,
    )
    per_school = quota.Quota(
        f"transfer-start:school:{school}:day", settings.transfer_starts_per_school_per_day, DAY
    )
    refused = await quota.take(redis, [per_registrar, per_school])
    if refused is None:
        return
    wait = f"请 {max(refused.retry_after // 60, 1)} 分钟后再试"
    if refused.quota is per_registrar:
        message = f"您一小时内最多发起 {per_registrar.limit} 次转学（含未找到学生的），{wait}"
    else:
        message = f"本校今天发起转学已达 {per_school.limit} 次上限，{wait}"
    raise TooManyAttempts(message, code="too_many_transfer_starts", retry_after=refused.retry_after)
